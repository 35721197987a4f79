/**
 * What systemd-stub measures into PCR 11 when it boots a UKI, and the PCR 11 values that follow, per bank and boot
 * phase (talos-formats §6.3, as `systemd-measure calculate` computes them).
 *
 * The stub walks a fixed list of section names; for each one present it extends PCR 11 with H(name + NUL) and then
 * with H(section bytes). systemd-pcrphase later extends H(phase word) (no NUL) at each boot phase. extend(x) sets
 * PCR = H(PCR || x), starting from all zeros.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** The TPM banks Talos signs for (SHA-1 is left out, as Talos does). */
export const PCR_BANKS = ['sha256', 'sha384', 'sha512'] as const;
export type PcrBank = (typeof PCR_BANKS)[number];

/** Bytes of a digest per bank. */
export const BANK_DIGEST_SIZE: Record<PcrBank, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** The PCR the stub measures the UKI into. */
export const UKI_PCR = 11;

/**
 * The stub's measurement order (systemd ≥ 257's `unified_sections`; 252 knows the subset .linux .osrel .cmdline
 * .initrd .splash .dtb .pcrpkey in the same relative order). Sections not in this list are not measured.
 */
export const MEASURED_SECTIONS = ['.linux', '.osrel', '.cmdline', '.initrd', '.ucode', '.splash', '.dtb', '.uname', '.sbat', '.pcrpkey', '.profile', '.dtbauto', '.hwids'] as const;
export type MeasuredSection = (typeof MEASURED_SECTIONS)[number];

/**
 * The boot phase words systemd-pcrphase extends into PCR 11 for a Talos boot, in order; Talos signs the policy of the
 * value after the last one only (talos-formats §6.3).
 */
export const BOOT_PHASES = ['enter-initrd', 'leave-initrd', 'enter-machined'] as const;
export type BootPhase = (typeof BOOT_PHASES)[number];
export const SIGNED_PHASE: BootPhase = 'enter-machined';

/** A section's content: bytes in memory, or a file read as a stream (the kernel and the initramfs are large). */
export type SectionContent = Buffer | string | { file: string };

export interface UkiSection {
  name: string;
  content: SectionContent;
}

/** A section as measured: its name, size and its content's digest in every bank (lowercase hex). */
export interface SectionDigest {
  name: string;
  size: number;
  digests: Record<PcrBank, string>;
}

export function isMeasuredSection(name: string): name is MeasuredSection {
  return (MEASURED_SECTIONS as readonly string[]).includes(name);
}

/** The digests of one section's content in all banks, in one pass over it (a file is streamed: bounded memory). */
export async function digestSection(section: UkiSection): Promise<SectionDigest> {
  const hashes = PCR_BANKS.map((bank) => createHash(bank));
  let size = 0;
  const feed = (chunk: Buffer) => {
    size += chunk.length;
    for (const h of hashes) h.update(chunk);
  };
  const { content } = section;
  if (Buffer.isBuffer(content)) feed(content);
  else if (typeof content === 'string') feed(Buffer.from(content, 'utf8'));
  else for await (const chunk of createReadStream(content.file, { highWaterMark: 1 << 20 })) feed(chunk as Buffer);
  const digests = Object.fromEntries(PCR_BANKS.map((bank, i) => [bank, hashes[i].digest('hex')])) as Record<PcrBank, string>;
  return { name: section.name, size, digests };
}

/** The measured sections of a UKI (or of one profile, see `profileSections`), digested, in the stub's order. */
export async function digestSections(sections: UkiSection[]): Promise<SectionDigest[]> {
  const digested: SectionDigest[] = [];
  for (const s of sections) digested.push(await digestSection(s));
  return measurementOrder(digested);
}

/**
 * The sections the stub measures, in its order. Unknown names are refused (a caller asking for a policy over a section
 * the stub would not measure has built something else than it thinks), and so are duplicates and malformed digests.
 */
export function measurementOrder(sections: SectionDigest[]): SectionDigest[] {
  const seen = new Set<string>();
  for (const s of sections) {
    if (!isMeasuredSection(s.name)) throw new Error(`section ${JSON.stringify(s.name)} is not one systemd-stub measures into PCR ${UKI_PCR}`);
    if (seen.has(s.name)) throw new Error(`section ${s.name} is listed twice`);
    seen.add(s.name);
    for (const bank of PCR_BANKS) {
      const hex = s.digests?.[bank];
      if (typeof hex !== 'string' || hex.length !== BANK_DIGEST_SIZE[bank] * 2 || !/^[0-9a-f]+$/.test(hex)) {
        throw new Error(`section ${s.name}: ${bank} digest must be ${BANK_DIGEST_SIZE[bank] * 2} lowercase hex digits`);
      }
    }
  }
  const rank = (name: string) => (MEASURED_SECTIONS as readonly string[]).indexOf(name);
  return [...sections].sort((a, b) => rank(a.name) - rank(b.name));
}

/**
 * What the stub measures when it boots one profile of a multi-profile UKI: the base sections (everything before the
 * first `.profile`) with the profile's own sections in place of the base ones of the same name (a profile `.cmdline`
 * replaces the base one), in the stub's order.
 */
export function profileSections(base: SectionDigest[], profile: SectionDigest[]): SectionDigest[] {
  const own = new Set(profile.map((s) => s.name));
  return measurementOrder([...base.filter((s) => !own.has(s.name)), ...profile]);
}

/** PCR = H(PCR || data). */
function extend(bank: PcrBank, pcr: Buffer, data: Buffer): Buffer {
  return createHash(bank).update(pcr).update(data).digest();
}

export interface PhaseValue {
  /** the phase word extended last */
  phase: BootPhase;
  /** every phase word extended so far, `:`-joined, as `systemd-measure --phase=` names it (e.g. `enter-initrd:leave-initrd`) */
  phasePath: string;
  /** PCR 11 in this bank after that phase */
  pcr: Buffer;
}

/** PCR 11 after the stub measured `sections`, then after each boot phase, in every bank. */
export function pcr11Values(sections: SectionDigest[]): Record<PcrBank, PhaseValue[]> {
  const ordered = measurementOrder(sections);
  const out = {} as Record<PcrBank, PhaseValue[]>;
  for (const bank of PCR_BANKS) {
    let pcr: Buffer = Buffer.alloc(BANK_DIGEST_SIZE[bank]);
    for (const s of ordered) {
      pcr = extend(bank, pcr, createHash(bank).update(s.name).update(Buffer.of(0)).digest());
      pcr = extend(bank, pcr, Buffer.from(s.digests[bank], 'hex'));
    }
    const phases: PhaseValue[] = [];
    BOOT_PHASES.forEach((phase, i) => {
      pcr = extend(bank, pcr, createHash(bank).update(phase).digest());
      phases.push({ phase, phasePath: BOOT_PHASES.slice(0, i + 1).join(':'), pcr });
    });
    out[bank] = phases;
  }
  return out;
}
