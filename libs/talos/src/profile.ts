/**
 * Asset path grammar of `/image/:schematic/:version/:path` and `/pxe/...` (anchor §3.1–3.2): turns the last path
 * segment into the output kind, platform, architecture, secure boot flag, output compression and disk settings.
 */
import { goQuote } from '@factory/gocompat';
import { DEFAULT_RAW_DISK_SIZE_MIB, isKnownPlatform, PLATFORM_DISK_DEFAULTS } from './platforms';

export type Arch = 'amd64' | 'arm64';
export type OutputKind = 'kernel' | 'cmdline' | 'initramfs' | 'iso' | 'uki' | 'installer' | 'image';
/** Output compression; `.tar.gz` is the anchor's "tar" format (a tarball holding `disk.raw`, gzipped). */
export type OutFormat = 'raw' | '.tar.gz' | '.xz' | '.gz' | '.zst';
/** Disk image container format; `vhd` is qemu-img's VPC. */
export type DiskFormat = 'raw' | 'qcow2' | 'vhd' | 'ova';

export interface DiskOptions {
  format: DiskFormat;
  /** Requested disk size in MiB, before the imager's bootloader-dependent growth (see `adjustedDiskSizeMiB`). */
  sizeMiB: number;
  /** qemu-img `-o` options; empty when none. */
  formatOptions: string;
}

export interface AssetRequest {
  kind: OutputKind;
  platform: string;
  arch: Arch;
  secureboot: boolean;
  outFormat: OutFormat;
  /** Present only for kind `image`. */
  disk?: DiskOptions;
}

/**
 * A path that doesn't parse. The message is the anchor's inner text (`invalid profile path: "…"`,
 * `invalid architecture: "…"`, `invalid platform-arch: "…"`, `unknown platform: "…"`); HTTP callers answer 400 with
 * `error parsing profile from path: <message>`.
 */
export class ProfilePathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProfilePathError';
  }
}

const q = goQuote;

function parseArch(s: string): Arch {
  switch (s) {
    case 'amd64':
    case 'arm64':
      return s;
    // iPXE `${buildarch}` names
    case 'x86_64':
    case 'i386':
      return 'amd64';
    default:
      throw new ProfilePathError(`invalid architecture: ${q(s)}`);
  }
}

function parsePlatformArch(s: string): { platform: string; arch: Arch; secureboot: boolean } {
  let secureboot = false;
  if (s.endsWith('-secureboot')) {
    s = s.slice(0, -'-secureboot'.length);
    secureboot = true;
  }
  const dash = s.indexOf('-');
  if (dash < 0) throw new ProfilePathError(`invalid platform-arch: ${q(s)}`);
  let platform = s.slice(0, dash);
  let rest = s.slice(dash + 1);
  // `digital-ocean` is the only platform name containing a dash
  if (platform === 'digital' && rest.startsWith('ocean-')) {
    platform = 'digital-ocean';
    rest = rest.slice('ocean-'.length);
  }
  return { platform, arch: parseArch(rest), secureboot };
}

function cutPrefix(s: string, prefix: string): string | undefined {
  return s.startsWith(prefix) ? s.slice(prefix.length) : undefined;
}

function cutSuffix(s: string, suffix: string): string | undefined {
  return s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : undefined;
}

const OUT_FORMAT_SUFFIXES: ReadonlyArray<Exclude<OutFormat, 'raw'>> = ['.tar.gz', '.gz', '.xz', '.zst'];
const DISK_FORMATS: readonly DiskFormat[] = ['raw', 'qcow2', 'vhd', 'ova'];

function parseUnchecked(path: string): AssetRequest {
  const simple = (kind: OutputKind, pa: { platform: string; arch: Arch; secureboot: boolean }): AssetRequest => ({
    kind,
    platform: pa.platform,
    arch: pa.arch,
    secureboot: pa.secureboot,
    outFormat: 'raw',
  });

  // 1. kernel-<arch>
  let rest = cutPrefix(path, 'kernel-');
  if (rest !== undefined) return simple('kernel', { platform: 'metal', arch: parseArch(rest), secureboot: false });

  // 2. cmdline-<platform>-<arch>[-secureboot]
  rest = cutPrefix(path, 'cmdline-');
  if (rest !== undefined) return simple('cmdline', parsePlatformArch(rest));

  // 3. initramfs-<arch>.xz (no -secureboot form: it would be an invalid arch)
  rest = cutPrefix(path, 'initramfs-');
  if (rest !== undefined) {
    const arch = cutSuffix(rest, '.xz');
    if (arch !== undefined) return simple('initramfs', { platform: 'metal', arch: parseArch(arch), secureboot: false });
  }

  // 4. <platform>-<arch>[-secureboot].iso
  rest = cutSuffix(path, '.iso');
  if (rest !== undefined) return simple('iso', parsePlatformArch(rest));

  // 5. <platform>-<arch>[-secureboot]-uki.efi
  rest = cutSuffix(path, '-uki.efi');
  if (rest !== undefined) return simple('uki', parsePlatformArch(rest));

  // 6. installer-<arch>[-secureboot].tar (legacy, platform metal)
  rest = cutPrefix(path, 'installer-');
  if (rest !== undefined) {
    let arch = cutSuffix(rest, '.tar');
    if (arch !== undefined) {
      const sb = cutSuffix(arch, '-secureboot');
      if (sb !== undefined) arch = sb;
      return simple('installer', { platform: 'metal', arch: parseArch(arch), secureboot: sb !== undefined });
    }
  }

  // 7. <platform>-installer-<arch>[-secureboot].tar (split on the first `-installer-`)
  const at = path.indexOf('-installer-');
  if (at >= 0) {
    const tail = cutSuffix(path.slice(at + '-installer-'.length), '.tar');
    if (tail !== undefined) return simple('installer', parsePlatformArch(`${path.slice(0, at)}-${tail}`));
  }

  // 8. disk image: <platform>-<arch>[-secureboot].<disk format>[.<compression>]
  let outFormat: OutFormat = 'raw';
  for (const suffix of OUT_FORMAT_SUFFIXES) {
    const cut = cutSuffix(path, suffix);
    if (cut !== undefined) {
      path = cut;
      outFormat = suffix;
      break;
    }
  }
  let format: DiskFormat | undefined;
  let formatOptions = '';
  for (const f of DISK_FORMATS) {
    const cut = cutSuffix(path, `.${f}`);
    if (cut !== undefined) {
      path = cut;
      format = f;
      if (f === 'qcow2') formatOptions = 'cluster_size=8k';
      break;
    }
  }
  if (format === undefined) throw new ProfilePathError(`invalid profile path: ${q(path)}`);
  const pa = parsePlatformArch(path);
  let sizeMiB = DEFAULT_RAW_DISK_SIZE_MIB;
  const defaults = Object.prototype.hasOwnProperty.call(PLATFORM_DISK_DEFAULTS, pa.platform) ? PLATFORM_DISK_DEFAULTS[pa.platform] : undefined;
  if (defaults) {
    if (defaults.sizeMiB) sizeMiB = defaults.sizeMiB;
    // The built-in profile's options win whatever the requested disk format (e.g. azure's VPC options on `.raw`).
    if (defaults.formatOptions) formatOptions = defaults.formatOptions;
  }
  return { ...simple('image', pa), outFormat, disk: { format, sizeMiB, formatOptions } };
}

/**
 * Parse the `:path` of `/image/:schematic/:version/:path` (suffixes `.sha256`/`.sha512`/`.sigstore.json` already
 * stripped). Rules are tried in the anchor's order, first match wins.
 *
 * Deliberate deviation: the anchor accepts any platform name here and fails later inside the imager with a 500; we
 * reject names the imager doesn't know with a `ProfilePathError` (`unknown platform: "<name>"`, i.e. a 400) after the
 * rest of the path has parsed, so every path that parses upstream with a known platform parses identically here.
 */
export function parseAssetPath(path: string): AssetRequest {
  const req = parseUnchecked(path);
  if (!isKnownPlatform(req.platform)) throw new ProfilePathError(`unknown platform: ${q(req.platform)}`);
  return req;
}

/** Parse the `:path` of `/pxe/:schematic/:version/:path` (`<platform>-<arch>[-secureboot]`), as `cmdline-<path>`. */
export function parsePxePath(path: string): AssetRequest {
  return parseAssetPath(`cmdline-${path}`);
}

function platformArch(req: Pick<AssetRequest, 'platform' | 'arch' | 'secureboot'>): string {
  return `${req.platform}-${req.arch}${req.secureboot ? '-secureboot' : ''}`;
}

/**
 * The canonical asset path for a request (inverse of `parseAssetPath` up to arch aliases and disk defaults):
 * `kernel-amd64`, `cmdline-metal-amd64-secureboot`, `initramfs-arm64.xz`, `metal-amd64.iso`, `metal-amd64-uki.efi`,
 * `installer-amd64.tar` (metal) / `aws-installer-arm64.tar`, `metal-amd64.raw.zst`, …
 */
export function formatAssetPath(req: AssetRequest): string {
  switch (req.kind) {
    case 'kernel':
      return `kernel-${req.arch}`;
    case 'initramfs':
      return `initramfs-${req.arch}.xz`;
    case 'cmdline':
      return `cmdline-${platformArch(req)}`;
    case 'iso':
      return `${platformArch(req)}.iso`;
    case 'uki':
      return `${platformArch(req)}-uki.efi`;
    case 'installer':
      return req.platform === 'metal'
        ? `installer-${req.arch}${req.secureboot ? '-secureboot' : ''}.tar`
        : `${req.platform}-installer-${req.arch}${req.secureboot ? '-secureboot' : ''}.tar`;
    case 'image': {
      const format = req.disk?.format ?? 'raw';
      return `${platformArch(req)}.${format}${req.outFormat === 'raw' ? '' : req.outFormat}`;
    }
  }
}
