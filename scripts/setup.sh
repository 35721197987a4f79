#!/usr/bin/env bash
# Makes a fresh clone runnable: Debian packages the factory and its tests use, pnpm, workspace dependencies, and
# the TypeScript build. Every step is skipped when already satisfied, so a warm run takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  redis-server docker-registry skopeo                        # queue, upstream registry (demo + tests), OCI checks
  busybox-static systemd-boot-efi squashfs-tools cpio zstd xz-utils kmod   # demo releases and initramfs assembly
  qemu-system-x86 qemu-utils ovmf ipxe-qemu                  # boot proofs
  xorriso grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools gdisk xfsprogs   # ISO and disk images
  openssl curl ca-certificates wrk                          # wrk: benchmarks
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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

echo "[setup] building TypeScript"
pnpm exec tsc -b
