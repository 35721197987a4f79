/**
 * Builders for every demo image: imager, installer-base / legacy installer, system extensions, catalogs,
 * the overlay (SBC) image and talosctl-all. All paths, media types and metadata formats follow talos-formats.md.
 */
import fs from 'node:fs';
import { KernelKit } from './debian';
import { Arch, BlobStore, buildImage, buildIndex, Descriptor, gzipLayer, ImageConfigSection, ImageFormat, Repository } from './oci';
import { createTar, TarEntry, withParentDirs } from './tar';
import { firmwareDir, modulesDir, OVERLAY_IMAGE, OVERLAY_NAME, OVERLAY_TAG, quirks } from './versions';
import { block, quoted, scalar } from './yaml';

export const TALOS_SOURCE_LABEL = 'https://github.com/siderolabs/talos';
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ArchAssets {
  kit: KernelKit;
  /** compressed initramfs.xz for this arch and Talos version */
  initramfs: Buffer;
}

function talosConfig(version: string, arch: Arch, entrypoint: string): ImageConfigSection {
  return {
    Entrypoint: [entrypoint],
    Env: [PATH_ENV, `VERSION=${version}`, `TARGETARCH=${arch}`],
    Labels: { 'alpha.talos.dev/version': version, 'org.opencontainers.image.source': TALOS_SOURCE_LABEL },
  };
}

/** usr/bin/installer (+ usr/bin/imager symlink and bin -> usr/bin) for >= 1.10; bin/installer + hard link before. */
function installerEntries(version: string, kit: KernelKit): TarEntry[] {
  const busybox = fs.readFileSync(kit.busybox);
  if (quirks(version).usrMerge) {
    return [
      { type: 'symlink', path: 'bin', target: 'usr/bin' },
      { type: 'file', path: 'usr/bin/installer', data: busybox, mode: 0o755 },
      { type: 'symlink', path: 'usr/bin/imager', target: 'installer' },
    ];
  }
  return [
    { type: 'file', path: 'bin/installer', data: busybox, mode: 0o755 },
    { type: 'hardlink', path: 'bin/imager', target: 'bin/installer', mode: 0o755 },
  ];
}

function bootAssetEntries(version: string, a: ArchAssets, withEfi: boolean): TarEntry[] {
  const arch = a.kit.arch;
  const dir = `usr/install/${arch}`;
  const out: TarEntry[] = [
    { type: 'file', path: `${dir}/vmlinuz`, data: fs.readFileSync(a.kit.vmlinuz), mode: 0o644 },
    { type: 'file', path: `${dir}/initramfs.xz`, data: a.initramfs, mode: 0o644 },
  ];
  if (withEfi) {
    out.push(
      { type: 'file', path: `${dir}/systemd-stub.efi`, data: fs.readFileSync(a.kit.systemdStub), mode: 0o644 },
      { type: 'file', path: `${dir}/systemd-boot.efi`, data: fs.readFileSync(a.kit.systemdBoot), mode: 0o644 },
    );
    if (quirks(version).spdx) out.push({ type: 'file', path: `${dir}/talos.spdx.json`, data: '{}', mode: 0o644 });
  }
  return out;
}

/** ghcr.io/siderolabs/imager:<version>: OCI index, one layer per platform, both arches' boot assets in each. */
export async function buildImagerImage(repo: Repository, version: string, assets: ArchAssets[]): Promise<Descriptor> {
  const shared: TarEntry[] = [
    ...assets.flatMap((a) => bootAssetEntries(version, a, true)),
    { type: 'file', path: 'etc/modules.d/10-extra-modules.conf', data: 'search extras built-in\n', mode: 0o644 },
  ];
  const manifests = await Promise.all(
    assets.map(async (a) => {
      const tar = createTar(withParentDirs([...shared, ...installerEntries(version, a.kit)]));
      return buildImage(repo.store, {
        format: 'oci',
        arch: a.kit.arch,
        layers: [tar],
        config: talosConfig(version, a.kit.arch, '/bin/imager'),
        history: [`demo imager ${version}`],
      });
    }),
  );
  return buildIndex(repo.store, 'oci', manifests);
}

/** ghcr.io/siderolabs/installer-base:<version> (>= 1.10): single layer with the installer binary. */
export async function buildInstallerBaseImage(repo: Repository, version: string, assets: ArchAssets[]): Promise<Descriptor> {
  const manifests = await Promise.all(
    assets.map((a) =>
      buildImage(repo.store, {
        format: 'oci',
        arch: a.kit.arch,
        layers: [createTar(withParentDirs(installerEntries(version, a.kit)))],
        config: talosConfig(version, a.kit.arch, '/bin/installer'),
        history: [`demo installer-base ${version}`],
      }),
    ),
  );
  return buildIndex(repo.store, 'oci', manifests);
}

/** Legacy ghcr.io/siderolabs/installer:<version> (< 1.10): exactly two layers, tools+installer, then boot assets. */
export async function buildLegacyInstallerImage(repo: Repository, version: string, assets: ArchAssets[]): Promise<Descriptor> {
  const manifests = await Promise.all(
    assets.map((a) =>
      buildImage(repo.store, {
        format: 'oci',
        arch: a.kit.arch,
        layers: [
          createTar(withParentDirs(installerEntries(version, a.kit))),
          createTar(withParentDirs(bootAssetEntries(version, a, false))),
        ],
        config: talosConfig(version, a.kit.arch, '/bin/installer'),
        history: [`demo installer ${version} (tools)`, `demo installer ${version} (artifacts)`],
      }),
    ),
  );
  return buildIndex(repo.store, 'oci', manifests);
}

export interface ExtensionFile {
  /** path below rootfs/, e.g. usr/local/etc/fixture-ext/hello */
  path: string;
  data?: Buffer | string;
  /** symlink target instead of data */
  symlink?: string;
  mode?: number;
  /** PAX records, e.g. { 'SCHILY.xattr.security.selinux': 'system_u:object_r:system_t:s0' } */
  pax?: Record<string, string>;
}

export interface ExtensionImageOptions {
  /** manifest name (the real convention is the last path segment of the image name) */
  name: string;
  version: string;
  /** blang/semver range, e.g. ">= v1.7.0"; "" for none */
  constraint: string;
  author?: string;
  description?: string;
  extraInfo?: string;
  /** files per architecture (or the same for every arch) */
  files: ExtensionFile[] | ((arch: Arch) => ExtensionFile[]);
  arches?: Arch[];
  /** docker (v2s2 manifest list, like the real ones; default) or oci */
  format?: ImageFormat;
  /** override the complete manifest.yaml text */
  manifestYaml?: string;
}

/** manifest.yaml of a system extension (talos-formats §3.2), in the style of siderolabs/extensions. */
export function extensionManifestYaml(o: { name: string; version: string; constraint: string; author?: string; description?: string; extraInfo?: string }): string {
  let y = 'version: v1alpha1\nmetadata:\n';
  y += `  name: ${scalar(o.name)}\n`;
  y += `  version: ${quoted(o.version)}\n`;
  y += `  author: ${scalar(o.author ?? 'Sidero Labs (demo)')}\n`;
  y += `  description: ${block(o.description ?? `[demo] ${o.name} demo extension.\n`, 4)}`;
  y += `  compatibility:\n    talos:\n      version: ${quoted(o.constraint)}\n`;
  if (o.extraInfo !== undefined) y += `  extraInfo: ${o.extraInfo.includes('\n') ? block(o.extraInfo, 4) : `${quoted(o.extraInfo)}\n`}`;
  return y;
}

/**
 * Build one system extension image (two layers: rootfs, then manifest.yaml; multi-arch) into `repo`.
 * Returns the index (manifest list) descriptor; tag it yourself (repo.tag(version, desc)).
 */
export async function buildExtensionImage(repo: Repository, opts: ExtensionImageOptions): Promise<Descriptor> {
  const arches = opts.arches ?? ['amd64', 'arm64'];
  const format = opts.format ?? 'docker';
  const manifestYaml = opts.manifestYaml ?? extensionManifestYaml(opts);
  const manifestTar = createTar([{ type: 'file', path: 'manifest.yaml', data: manifestYaml, mode: 0o644 }]);
  const manifestGz = await gzipLayer(manifestTar);
  const manifests = await Promise.all(
    arches.map(async (arch) => {
      const files = typeof opts.files === 'function' ? opts.files(arch) : opts.files;
      const entries: TarEntry[] = [{ type: 'dir', path: 'rootfs', mode: 0o755 }];
      for (const f of files) {
        const p = `rootfs/${f.path.replace(/^\/+/, '')}`;
        if (f.symlink !== undefined) entries.push({ type: 'symlink', path: p, target: f.symlink, pax: f.pax });
        else entries.push({ type: 'file', path: p, data: f.data ?? '', mode: f.mode ?? 0o644, pax: f.pax });
      }
      const rootfsTar = createTar(withParentDirs(entries));
      return buildImage(repo.store, {
        format,
        arch,
        layers: [rootfsTar, manifestTar],
        gzipped: [await gzipLayer(rootfsTar), manifestGz],
        history: ['COPY rootfs /rootfs', 'COPY manifest.yaml /manifest.yaml'],
      });
    }),
  );
  return buildIndex(repo.store, format, manifests);
}

/** Files of the built-in demo extensions for one Talos version. */
export function demoExtensionFiles(kind: string, name: string, extVersion: string, talosVersion: string, kits: Map<Arch, KernelKit>) {
  const fw = firmwareDir(talosVersion);
  return (arch: Arch): ExtensionFile[] => {
    switch (kind) {
      case 'hello':
      case 'marker':
        return [{ path: `usr/local/etc/fixture-ext/${name}`, data: `${name} ${extVersion}\n` }];
      case 'intel-ucode': {
        const ucode = Buffer.alloc(64, 0);
        ucode.write(`DEMO-INTEL-UCODE 06-55-04 ${extVersion}\n`);
        return [
          { path: `${fw}/intel-ucode/06-55-04`, data: ucode },
          { path: `${fw}/fixture/fw.bin`, data: `demo firmware from ${name} ${extVersion}\n` },
        ];
      }
      case 'dummy-module': {
        const kit = kits.get(arch);
        if (!kit) throw new Error(`no kernel kit for ${arch}`);
        return [{ path: `${modulesDir(talosVersion)}/${kit.kver}/extras/dummy.ko`, data: fs.readFileSync(kit.dummy.file) }];
      }
      default:
        throw new Error(`unknown demo extension kind ${kind}`);
    }
  };
}

/** Single-layer FROM-scratch style image with the given root files, as an index over `arches`. */
export async function buildFilesImage(
  repo: Repository,
  files: TarEntry[],
  arches: Arch[],
  history: string,
  config: ImageConfigSection = {},
): Promise<Descriptor> {
  const tar = createTar(withParentDirs(files));
  const gz = await gzipLayer(tar);
  const manifests = await Promise.all(
    arches.map((arch) => buildImage(repo.store, { format: 'oci', arch, layers: [tar], gzipped: [gz], config, history: [history] })),
  );
  return buildIndex(repo.store, 'oci', manifests);
}

export interface CatalogExtension {
  name: string;
  tag: string;
  digest: string;
  author: string;
  description: string;
}

/**
 * ghcr.io/siderolabs/extensions:<version>: `image-digests` + `descriptions.yaml` (keyed by the full lines;
 * the entry at index quoteIndex uses a quoted key, the one at skipIndex is left out).
 */
export function extensionsCatalogFiles(exts: CatalogExtension[], quoteIndex: number, skipIndex: number): TarEntry[] {
  const lines = exts.map((e) => `ghcr.io/siderolabs/${e.name}:${e.tag}@${e.digest}`);
  let desc = '';
  exts.forEach((e, i) => {
    if (i === skipIndex) return;
    const key = i === quoteIndex ? JSON.stringify(lines[i]) : lines[i];
    desc += `${key}:\n  author: ${scalar(e.author)}\n  description: ${block(e.description, 4)}`;
  });
  return [
    { type: 'file', path: 'image-digests', data: lines.join('\n') + '\n', mode: 0o644 },
    { type: 'file', path: 'descriptions.yaml', data: desc, mode: 0o644 },
  ];
}

export function overlaysCatalogFiles(overlays: Array<{ name: string; image: string; digest: string }>): TarEntry[] {
  let y = 'overlays:\n';
  for (const o of overlays) y += `  - name: ${scalar(o.name)}\n    image: ${o.image}\n    digest: ${o.digest}\n`;
  return [{ type: 'file', path: 'overlays.yaml', data: y, mode: 0o644 }];
}

/** The overlay installer (talos-formats §10.2) as a POSIX shell script. */
export function overlayInstallerScript(): string {
  return `#!/bin/sh
# Demo overlay installer for ${OVERLAY_NAME} (stand-in for a Go overlay installer; protocol: talos-formats 10.2).
#   get-options: stdin = YAML of the schematic's overlay.options; stdout = YAML {name, kernelArgs, partitionOptions}
#                option "fixtureValue: <v>" sets the kernel argument fixture.overlay=<v> (default 1)
#   install:     stdin = YAML {installDisk, mountPrefix, artifactsPath, extraOptions}; copies
#                <artifactsPath>/amd64/fixture/blob.bin to <mountPrefix>/boot/EFI/fixture-blob.bin, records the
#                input as <mountPrefix>/boot/EFI/fixture-install.yaml and writes blob.bin at LBA 64 of installDisk
#                (inside the space reserved by partitionOptions.offset, like Rockchip boot blobs).
set -e
cmd="$1"
input=$(cat)
val() {
  printf '%s\\n' "$input" | sed -n "s/^$1:[[:space:]]*//p" | head -n 1 | sed -e "s/^'\\(.*\\)'\\$/\\1/" -e 's/^"\\(.*\\)"$/\\1/'
}
case "$cmd" in
  get-options)
    v=$(val fixtureValue)
    [ -n "$v" ] || v=1
    printf 'name: ${OVERLAY_NAME}\\nkernelArgs:\\n    - console=ttyS0\\n    - fixture.overlay=%s\\npartitionOptions:\\n    offset: 2048\\n' "$v"
    ;;
  install)
    disk=$(val installDisk)
    prefix=$(val mountPrefix)
    artifacts=$(val artifactsPath)
    mkdir -p "$prefix/boot/EFI"
    cp "$artifacts/amd64/fixture/blob.bin" "$prefix/boot/EFI/fixture-blob.bin"
    printf '%s\\n' "$input" > "$prefix/boot/EFI/fixture-install.yaml"
    if [ -n "$disk" ] && { [ -f "$disk" ] || [ -b "$disk" ]; }; then
      dd if="$artifacts/amd64/fixture/blob.bin" of="$disk" bs=512 seek=64 conv=notrunc 2>/dev/null
    fi
    ;;
  *)
    echo "unknown command: $cmd" >&2
    exit 1
    ;;
esac
`;
}

export const OVERLAY_BLOB = `FIXTURE-OVERLAY-BLOB ${OVERLAY_IMAGE} ${OVERLAY_TAG}\n`;

/** ghcr.io/siderolabs/sbc-fixture:v0.1.0 (talos-formats §10.1 / §12.5). */
export async function buildOverlayImage(repo: Repository, arches: Arch[]): Promise<Descriptor> {
  const profile =
    'arch: amd64\nplatform: metal\nsecureboot: false\noutput:\n  kind: image\n  outFormat: .xz\n  imageOptions:\n    diskSize: 1306525696\n    diskFormat: raw\n    bootloader: grub\n';
  const files: TarEntry[] = [
    { type: 'file', path: `profiles/${OVERLAY_NAME}.yaml`, data: profile, mode: 0o644 },
    { type: 'file', path: 'artifacts/amd64/fixture/blob.bin', data: OVERLAY_BLOB, mode: 0o644 },
    { type: 'file', path: `installers/${OVERLAY_NAME}`, data: overlayInstallerScript(), mode: 0o755 },
  ];
  return buildFilesImage(repo, files, arches, `demo overlay ${OVERLAY_IMAGE} ${OVERLAY_TAG}`);
}

export const TALOSCTL_FILES = ['talosctl-darwin-arm64', 'talosctl-linux-amd64', 'talosctl-linux-arm64', 'talosctl-windows-amd64.exe'];

/** ghcr.io/siderolabs/talosctl-all:<version> (>= 1.11): tiny stand-in "binaries". */
export async function buildTalosctlImage(repo: Repository, version: string, arches: Arch[]): Promise<Descriptor> {
  const files: TarEntry[] = TALOSCTL_FILES.map((f) => ({
    type: 'file',
    path: f,
    data: `#!/bin/sh\necho "${f} ${version} (demo stand-in)"\n`,
    mode: 0o755,
  }));
  return buildFilesImage(repo, files, arches, `demo talosctl-all ${version}`);
}

export function newRepository(name: string): Repository {
  return new Repository(`siderolabs/${name}`);
}

export { BlobStore };
