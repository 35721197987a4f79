/**
 * UKI (Unified Kernel Image) writer: systemd-stub + `.osrel .cmdline [.uname] .splash [.pcrpkey] .linux .initrd [.profile...]`,
 * with a `.pcrsig` per profile and an Authenticode signature when signed (Secure Boot)
 * as a native PE/COFF image, no objcopy (talos-formats.md §6.1 / §6.2).
 */
import fsp from 'node:fs/promises';
import { digestSection, isMeasuredSection, profileSections, SectionDigest } from '@factory/pcr';
import { resetCmdline } from '@factory/talos';
import { assemblePe, UkiSection, WrittenSection } from './assemble';
import { parsePe, peSectionData } from './pe';
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
  /** Secure Boot: `.pcrpkey` and one `.pcrsig` per profile (talos-formats §6.2/§6.3); absent for unsigned UKIs */
  pcr?: UkiPcrSigning;
  /** Authenticode seam: called on the finished unsigned file before it is moved to `out` (rewrites it in place) */
  sign?: (unsignedPath: string) => Promise<void>;
}

/**
 * The PCR policy side of a signed UKI: the PCR public key (PEM `PUBLIC KEY`, the `.pcrpkey` section) and the signer of
 * one profile's policy, given the digests of the sections the stub measures when it boots that profile (in its
 * order), returning the `.pcrsig` JSON. The key stays with the signer (the signing service).
 */
export interface UkiPcrSigning {
  publicKeyPem: string;
  signPolicy: (measured: SectionDigest[]) => Promise<string>;
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
  if (o.pcr) sections.push({ name: '.pcrpkey', data: Buffer.from(o.pcr.publicKeyPem, 'utf8') });
  sections.push({ name: '.linux', data: { path: o.kernel } });
  sections.push({ name: '.initrd', data: { path: o.initrd } });
  const profiles = (o.profiles ?? []).map((p) => {
    const own: UkiSection[] = [{ name: '.profile', data: Buffer.from(p.profile, 'utf8') }];
    if (p.cmdline !== undefined) own.push({ name: '.cmdline', data: Buffer.from(p.cmdline, 'utf8') });
    return own;
  });
  if (!o.pcr) return { sections: [...sections, ...profiles.flat()], uname };
  return { sections: await withPcrSignatures(o.stub, sections, profiles, o.pcr), uname };
}

const digestUkiSection = (s: UkiSection) => digestSection({ name: s.name, content: Buffer.isBuffer(s.data) ? s.data : { file: s.data.path } });

/**
 * The appended sections with a `.pcrsig` after each profile (or, without profiles, one at the end), each signing what
 * the stub measures for that profile: the stub's own measured sections (its `.sbat`, as loaded: VirtualSize bytes),
 * the base sections, and the profile's own sections in place of base ones of the same name (§6.3).
 */
async function withPcrSignatures(stub: string, base: UkiSection[], profiles: UkiSection[][], pcr: UkiPcrSigning): Promise<UkiSection[]> {
  const stubBytes = await fsp.readFile(stub);
  const fromStub = parsePe(stubBytes).sections.filter((s) => isMeasuredSection(s.name)).map((s) => ({ name: s.name, data: Buffer.from(peSectionData(stubBytes, s)) }));
  const clash = fromStub.find((s) => base.some((b) => b.name === s.name));
  if (clash) throw new Error(`${stub}: the stub already has a ${clash.name} section`);
  const measuredBase: SectionDigest[] = [];
  for (const s of [...fromStub, ...base]) if (isMeasuredSection(s.name)) measuredBase.push(await digestUkiSection(s));
  if (!profiles.length) return [...base, { name: '.pcrsig', data: Buffer.from(await pcr.signPolicy(profileSections(measuredBase, [])), 'utf8') }];
  const out = [...base];
  for (const own of profiles) {
    const ownDigests = await Promise.all(own.map(digestUkiSection));
    out.push(...own, { name: '.pcrsig', data: Buffer.from(await pcr.signPolicy(profileSections(measuredBase, ownDigests)), 'utf8') });
  }
  return out;
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
