/**
 * UKI (Unified Kernel Image) writer: systemd-stub + `.osrel .cmdline [.uname] .splash .linux .initrd [.profile...]`
 * as a native PE/COFF image, no objcopy (talos-formats.md §6.1 / §6.2).
 */
import { resetCmdline } from '@factory/talos';
import { assemblePe, UkiSection, WrittenSection } from './assemble';
import { kernelVersionFromFile } from './kernel';
import { defaultSplashBmp } from './splash';
import { SOURCE_DATE_EPOCH } from '../reproducible';

export { assemblePe, checkStub } from './assemble';
export type { AssemblePeOptions, AssemblePeResult, UkiSection, WrittenSection } from './assemble';
export { kernelVersionFromBzImage, kernelVersionFromFile, BZIMAGE_HEADER_PROBE_BYTES } from './kernel';
export { defaultSplashBmp, encodeBmp24 } from './splash';
export {
  parsePe,
  peSectionData,
  peSectionsNamed,
  UKI_SECTION_CHARACTERISTICS,
  UKI_PE_OFFSET,
  IMAGE_SCN_CNT_CODE,
  IMAGE_SCN_CNT_INITIALIZED_DATA,
  IMAGE_SCN_MEM_READ,
  MACHINE_AMD64,
  MACHINE_ARM64,
} from './pe';
export type { PeInfo, PeSection, PeDataDirectory } from './pe';


export interface UkiProfile {
  /** `.profile` contents, e.g. `ID=main` or `ID=reset\nTITLE=Reset system disk` */
  profile: string;
  /** optional `.cmdline` following the profile (replaces the base one when the profile is selected) */
  cmdline?: string;
}

/** The output a UKI goes into, which decides its reset profile (§6.2); `undefined`: a plain UKI output (main only). */
export type UkiResetFor = 'iso' | 'image' | 'installer' | undefined;

/**
 * The `.profile` sections of a Talos >= 1.10 UKI (talos-formats.md §6.2): `ID=main` first — it has no sections of
 * its own, so it boots the base `.cmdline` and is systemd-boot's default entry — then, for ISOs, disk images and
 * installers, a reset profile whose own `.cmdline` (the base one plus the wipe argument) replaces the base one when
 * that entry ("Reset system disk" / "Reset to maintenance mode") is chosen. A profile-aware stub (systemd >= 257)
 * boots profile 0 when nothing selects another; older stubs ignore `.profile` and take the last `.cmdline`.
 */
export function talosUkiProfiles(cmdline: string, resetFor: UkiResetFor): UkiProfile[] {
  const main: UkiProfile = { profile: 'ID=main' };
  if (resetFor === undefined) return [main];
  const reset: UkiProfile =
    resetFor === 'iso'
      ? { profile: 'ID=reset\nTITLE=Reset system disk', cmdline: resetCmdline(cmdline, 'iso') }
      : { profile: 'ID=reset-maintenance\nTITLE=Reset to maintenance mode', cmdline: resetCmdline(cmdline, resetFor) };
  return [main, reset];
}

export interface UkiOptions {
  /** systemd-stub.efi */
  stub: string;
  /** kernel file (bzImage or arm64 Image), embedded as-is */
  kernel: string;
  /** initramfs file, embedded as-is */
  initrd: string;
  /** exact `.cmdline` text (no trailing newline is added) */
  cmdline: string;
  /** exact `.osrel` text (see talosOsRelease) */
  osRelease: string;
  /** `.splash` BMP; default (undefined or null): defaultSplashBmp() */
  splash?: Buffer | null;
  /** `.uname`; undefined: detected from an x86 bzImage (arm64: none); null: no `.uname`; string: used as-is */
  uname?: string | null;
  /** `.profile` sections (Talos >= 1.10), each optionally followed by its own `.cmdline` */
  profiles?: UkiProfile[];
  out: string;
  /** COFF TimeDateStamp; default SOURCE_DATE_EPOCH (reproducible.ts) */
  sourceDateEpoch?: number;
  /** signing seam (Authenticode, later): called on the finished unsigned file before it is moved to `out` */
  sign?: (unsignedPath: string) => Promise<void>;
}

export interface UkiResult {
  /** all sections in table order (stub sections first); size = VirtualSize */
  sections: Array<{ name: string; virtualAddress: number; size: number }>;
  /** the detailed layout */
  layout: WrittenSection[];
  uname?: string;
  fileSize: number;
  /** bytes of the stub's COFF symbol/string table that were left out */
  strippedSymbolBytes: number;
}

/** `.osrel` text as the Talos imager writes it (name `Talos`, version with leading `v`), ending with a newline. */
export function talosOsRelease(version: string, name = 'Talos'): string {
  const id = name.toLowerCase().replace(/ /g, '_');
  return [
    `NAME="${name}"`,
    `ID=${id}`,
    `VERSION_ID=${version}`,
    `PRETTY_NAME="${name} (${version})"`,
    'HOME_URL="https://www.talos.dev/"',
    'BUG_REPORT_URL="https://github.com/siderolabs/talos/issues"',
    'VENDOR_NAME="Sidero Labs"',
    'VENDOR_URL="https://www.siderolabs.com/"',
    '',
  ].join('\n');
}

/** The section list buildUki appends to the stub (exported for inspection and for later signed layouts). */
export async function ukiSections(o: UkiOptions): Promise<{ sections: UkiSection[]; uname?: string }> {
  const uname = o.uname === undefined ? await kernelVersionFromFile(o.kernel) : o.uname ?? undefined;
  const sections: UkiSection[] = [
    { name: '.osrel', data: Buffer.from(o.osRelease, 'utf8') },
    { name: '.cmdline', data: Buffer.from(o.cmdline, 'utf8') },
  ];
  if (uname) sections.push({ name: '.uname', data: Buffer.from(uname, 'utf8') });
  sections.push({ name: '.splash', data: o.splash ?? defaultSplashBmp() });
  sections.push({ name: '.linux', data: { path: o.kernel } });
  sections.push({ name: '.initrd', data: { path: o.initrd } });
  for (const p of o.profiles ?? []) {
    sections.push({ name: '.profile', data: Buffer.from(p.profile, 'utf8') });
    if (p.cmdline !== undefined) sections.push({ name: '.cmdline', data: Buffer.from(p.cmdline, 'utf8') });
  }
  return { sections, uname };
}

/** Build a UKI at `o.out` (written to a temporary file next to it, then renamed). */
export async function buildUki(o: UkiOptions): Promise<UkiResult> {
  const { sections, uname } = await ukiSections(o);
  const r = await assemblePe({
    stub: o.stub,
    sections,
    out: o.out,
    timeDateStamp: o.sourceDateEpoch ?? SOURCE_DATE_EPOCH,
    sign: o.sign,
  });
  return {
    sections: r.sections.map((s) => ({ name: s.name, virtualAddress: s.virtualAddress, size: s.size })),
    layout: r.sections,
    uname,
    fileSize: r.fileSize,
    strippedSymbolBytes: r.strippedSymbolBytes,
  };
}
