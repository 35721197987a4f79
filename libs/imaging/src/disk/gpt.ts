/**
 * GPT writer and reader (talos-formats.md §8.2): protective MBR (type 0xEE, start LBA 1, not bootable), primary
 * header at LBA 1, 128 entries of 128 bytes at `plan.partitionEntriesLba`, backup entries + header at the end of the
 * disk, CRC32s, partition names = labels (UTF-16LE). Works for 512- and 4096-byte logical sectors.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { GPT_ENTRIES, GPT_ENTRY_SIZE, DiskPlan } from './plan';
import { gptBytesToUuid, uuidToGptBytes } from './guid';
import { crc32 } from '../checksum';

const SIGNATURE = Buffer.from('EFI PART', 'latin1');
const HEADER_SIZE = 92;
const REVISION = 0x00010000;

function entriesLbaCount(sectorSize: number): bigint {
  return BigInt(Math.ceil((GPT_ENTRIES * GPT_ENTRY_SIZE) / sectorSize));
}

/** The 128 × 128-byte partition entry array of a plan. */
export function gptEntries(plan: DiskPlan): Buffer {
  if (plan.partitions.length > GPT_ENTRIES) throw new Error('too many partitions');
  const buf = Buffer.alloc(GPT_ENTRIES * GPT_ENTRY_SIZE);
  plan.partitions.forEach((p, i) => {
    const e = buf.subarray(i * GPT_ENTRY_SIZE, (i + 1) * GPT_ENTRY_SIZE);
    uuidToGptBytes(p.typeGuid).copy(e, 0);
    uuidToGptBytes(p.guid).copy(e, 16);
    e.writeBigUInt64LE(p.firstLba, 32);
    e.writeBigUInt64LE(p.lastLba, 40);
    e.writeBigUInt64LE(p.attributes, 48);
    const name = Buffer.from(p.label, 'utf16le');
    if (name.length > 72) throw new Error(`partition name ${p.label} too long`);
    name.copy(e, 56);
  });
  return buf;
}

function header(plan: DiskPlan, myLba: bigint, altLba: bigint, entriesLba: bigint, entriesCrc: number): Buffer {
  const h = Buffer.alloc(plan.sectorSize);
  SIGNATURE.copy(h, 0);
  h.writeUInt32LE(REVISION, 8);
  h.writeUInt32LE(HEADER_SIZE, 12);
  h.writeBigUInt64LE(myLba, 24);
  h.writeBigUInt64LE(altLba, 32);
  h.writeBigUInt64LE(plan.firstUsableLba, 40);
  h.writeBigUInt64LE(plan.lastUsableLba, 48);
  uuidToGptBytes(plan.diskGuid).copy(h, 56);
  h.writeBigUInt64LE(entriesLba, 72);
  h.writeUInt32LE(GPT_ENTRIES, 80);
  h.writeUInt32LE(GPT_ENTRY_SIZE, 84);
  h.writeUInt32LE(entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, HEADER_SIZE)), 16);
  return h;
}

/** The protective MBR partition entry + boot signature, applied over `mbr` (boot code bytes 0..445 are kept). */
export function applyProtectiveMbr(mbr: Buffer, lastLba: bigint): void {
  const e = mbr.subarray(446, 462);
  e.fill(0);
  e[0] = 0x00; // not bootable
  e[1] = 0x00;
  e[2] = 0x02;
  e[3] = 0x00;
  e[4] = 0xee;
  e[5] = 0xff;
  e[6] = 0xff;
  e[7] = 0xff;
  e.writeUInt32LE(1, 8);
  e.writeUInt32LE(lastLba > 0xffffffffn ? 0xffffffff : Number(lastLba), 12);
  mbr.fill(0, 462, 510);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
}

/**
 * Write the protective MBR and both GPT copies into `file` (created, or grown sparsely, to `plan.sizeBytes`; a
 * larger file is rejected). Bytes 0..445 of an existing MBR (boot code) are preserved.
 */
export async function writeGpt(file: string, plan: DiskPlan): Promise<void> {
  const ss = BigInt(plan.sectorSize);
  if (plan.sizeBytes % ss !== 0n) throw new Error('disk size is not a multiple of the sector size');
  const lastLba = plan.sizeBytes / ss - 1n;
  const n = entriesLbaCount(plan.sectorSize);
  const backupEntriesLba = lastLba - n;
  for (const p of plan.partitions) {
    if (p.firstLba < plan.firstUsableLba || p.lastLba > plan.lastUsableLba || p.lastLba < p.firstLba) {
      throw new Error(`partition ${p.label} [${p.firstLba}, ${p.lastLba}] is outside the usable range`);
    }
  }
  if (plan.lastUsableLba >= backupEntriesLba) throw new Error('last usable LBA overlaps the backup partition entries');
  const entries = gptEntries(plan);
  const entriesCrc = crc32(entries);
  const primary = header(plan, 1n, lastLba, plan.partitionEntriesLba, entriesCrc);
  const backup = header(plan, lastLba, 1n, backupEntriesLba, entriesCrc);

  const fh = await fsp.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  try {
    const size = BigInt((await fh.stat()).size);
    if (size > plan.sizeBytes) throw new Error(`${file} is larger (${size}) than the planned disk (${plan.sizeBytes})`);
    if (size < plan.sizeBytes) await fh.truncate(Number(plan.sizeBytes));
    const mbr = Buffer.alloc(512);
    await fh.read(mbr, 0, 512, 0);
    applyProtectiveMbr(mbr, lastLba);
    await fh.write(mbr, 0, 512, 0);
    await fh.write(primary, 0, primary.length, Number(ss));
    await fh.write(entries, 0, entries.length, Number(plan.partitionEntriesLba * ss));
    await fh.write(entries, 0, entries.length, Number(backupEntriesLba * ss));
    await fh.write(backup, 0, backup.length, Number(lastLba * ss));
  } finally {
    await fh.close();
  }
}

export interface GptPartitionInfo {
  /** 1-based partition number (entry index + 1) */
  number: number;
  name: string;
  typeGuid: string;
  guid: string;
  firstLba: bigint;
  lastLba: bigint;
  attributes: bigint;
}

export interface GptHeaderInfo {
  myLba: bigint;
  alternateLba: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
  diskGuid: string;
  entriesLba: bigint;
  entryCount: number;
  entrySize: number;
  headerCrcOk: boolean;
  entriesCrcOk: boolean;
}

export interface GptInfo {
  sectorSize: number;
  sizeBytes: bigint;
  primary: GptHeaderInfo;
  backup: GptHeaderInfo;
  /** primary and backup entry arrays are byte-identical */
  entriesMatch: boolean;
  partitions: GptPartitionInfo[];
  /** the protective MBR's first partition entry */
  pmbr: { status: number; type: number; startLba: number; sizeLba: number; signatureOk: boolean };
  /** MBR bytes 0..445 (boot code area) */
  bootCode: Buffer;
}

async function readAt(fh: fsp.FileHandle, len: number, pos: bigint): Promise<Buffer> {
  const b = Buffer.alloc(len);
  const { bytesRead } = await fh.read(b, 0, len, Number(pos));
  if (bytesRead !== len) throw new Error(`short read at ${pos}`);
  return b;
}

async function readHeader(fh: fsp.FileHandle, lba: bigint, ss: number): Promise<{ info: GptHeaderInfo; entries: Buffer }> {
  const h = await readAt(fh, ss, lba * BigInt(ss));
  if (!h.subarray(0, 8).equals(SIGNATURE)) throw new Error(`no GPT header at LBA ${lba} (sector size ${ss})`);
  const hsize = h.readUInt32LE(12);
  const check = Buffer.from(h.subarray(0, hsize));
  const want = check.readUInt32LE(16);
  check.writeUInt32LE(0, 16);
  const entriesLba = h.readBigUInt64LE(72);
  const count = h.readUInt32LE(80);
  const esize = h.readUInt32LE(84);
  const entries = await readAt(fh, count * esize, entriesLba * BigInt(ss));
  return {
    info: {
      myLba: h.readBigUInt64LE(24),
      alternateLba: h.readBigUInt64LE(32),
      firstUsableLba: h.readBigUInt64LE(40),
      lastUsableLba: h.readBigUInt64LE(48),
      diskGuid: gptBytesToUuid(h.subarray(56, 72)),
      entriesLba,
      entryCount: count,
      entrySize: esize,
      headerCrcOk: crc32(check) === want,
      entriesCrcOk: crc32(entries) === h.readUInt32LE(88),
    },
    entries,
  };
}

/**
 * Read a GPT disk image (own reader, used where sgdisk cannot be told the logical sector size). The sector size is
 * taken from `sectorSize` or detected from where the "EFI PART" signature is (LBA 1 at 512 or 4096 bytes).
 */
export async function readGpt(file: string, sectorSize?: number): Promise<GptInfo> {
  const fh = await fsp.open(file, 'r');
  try {
    const size = BigInt((await fh.stat()).size);
    let ss = sectorSize;
    if (!ss) {
      for (const cand of [512, 4096]) {
        const sig = await readAt(fh, 8, BigInt(cand));
        if (sig.equals(SIGNATURE)) {
          ss = cand;
          break;
        }
      }
      if (!ss) throw new Error(`${file}: no GPT signature at LBA 1 for 512 or 4096-byte sectors`);
    }
    const lastLba = size / BigInt(ss) - 1n;
    const p = await readHeader(fh, 1n, ss);
    const b = await readHeader(fh, lastLba, ss);
    const partitions: GptPartitionInfo[] = [];
    for (let i = 0; i < p.info.entryCount; i++) {
      const e = p.entries.subarray(i * p.info.entrySize, (i + 1) * p.info.entrySize);
      if (e.subarray(0, 16).every((x) => x === 0)) continue;
      let name = e.subarray(56, 128).toString('utf16le');
      const nul = name.indexOf('\u0000');
      if (nul >= 0) name = name.slice(0, nul);
      partitions.push({
        number: i + 1,
        name,
        typeGuid: gptBytesToUuid(e.subarray(0, 16)),
        guid: gptBytesToUuid(e.subarray(16, 32)),
        firstLba: e.readBigUInt64LE(32),
        lastLba: e.readBigUInt64LE(40),
        attributes: e.readBigUInt64LE(48),
      });
    }
    const mbr = await readAt(fh, 512, 0n);
    return {
      sectorSize: ss,
      sizeBytes: size,
      primary: p.info,
      backup: b.info,
      entriesMatch: p.entries.equals(b.entries),
      partitions,
      pmbr: {
        status: mbr[446],
        type: mbr[450],
        startLba: mbr.readUInt32LE(454),
        sizeLba: mbr.readUInt32LE(458),
        signatureOk: mbr[510] === 0x55 && mbr[511] === 0xaa,
      },
      bootCode: Buffer.from(mbr.subarray(0, 446)),
    };
  } finally {
    await fh.close();
  }
}
