/**
 * Native PE/COFF writer: takes an EFI stub and appends sections, the way the Talos imager assembles a UKI
 * (talos-formats.md §6.1). Large section payloads are streamed from files, so memory stays bounded.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  alignUp,
  COFF_HEADER_SIZE,
  DATA_DIRECTORY_SECURITY,
  IMAGE_SCN_CNT_CODE,
  IMAGE_SCN_CNT_INITIALIZED_DATA,
  numberOfRvaAndSizesOffset,
  OPT,
  parsePe,
  PeInfo,
  SECTION_HEADER_SIZE,
  UKI_PE_OFFSET,
  UKI_SECTION_CHARACTERISTICS,
} from './pe';

export interface UkiSection {
  /** section name, at most 8 bytes (e.g. `.linux`) */
  name: string;
  /** the exact section contents: in memory, or streamed from a file */
  data: Buffer | { path: string };
}

export interface WrittenSection {
  name: string;
  virtualAddress: number;
  /** VirtualSize = payload size */
  size: number;
  pointerToRawData: number;
  sizeOfRawData: number;
  characteristics: number;
  /** true for sections taken over from the stub */
  fromStub: boolean;
}

export interface AssemblePeOptions {
  /** path of the EFI stub (PE32+) */
  stub: string;
  /** sections appended after the stub's own, in this order */
  sections: UkiSection[];
  out: string;
  /** COFF TimeDateStamp (seconds) */
  timeDateStamp: number;
  /**
   * Called with the path of the fully written, unsigned image before it is moved to `out`; it may rewrite the
   * file in place (e.g. append an Authenticode signature). Unused for non-SecureBoot builds.
   */
  sign?: (unsignedPath: string) => Promise<void>;
}

export interface AssemblePeResult {
  sections: WrittenSection[];
  sizeOfHeaders: number;
  sizeOfImage: number;
  fileSize: number;
  /** bytes of COFF symbol/string table found after the stub's section data and left out */
  strippedSymbolBytes: number;
}

const COPY_CHUNK = 1 << 20;
const MAX_U32 = 0xffffffff;

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function checkName(name: string): Buffer {
  const b = Buffer.from(name, 'latin1');
  if (b.length === 0 || b.length > 8 || Buffer.from(name, 'utf8').length !== b.length) {
    throw new Error(`PE: invalid section name ${JSON.stringify(name)} (1-8 ASCII bytes)`);
  }
  return b;
}

async function sizeOf(data: UkiSection['data']): Promise<number> {
  if (Buffer.isBuffer(data)) return data.length;
  const st = await fsp.stat(data.path);
  if (!st.isFile()) throw new Error(`PE: section source ${data.path} is not a regular file`);
  return st.size;
}

/** Validate a stub and return its parsed headers. */
export function checkStub(stub: Buffer, stubPath = 'stub'): PeInfo {
  const info = parsePe(stub);
  if (!info.pe32plus) throw new Error(`${stubPath}: not a PE32+ image`);
  if (!isPowerOfTwo(info.fileAlignment) || !isPowerOfTwo(info.sectionAlignment)) {
    throw new Error(`${stubPath}: bad alignments (file 0x${info.fileAlignment.toString(16)}, section 0x${info.sectionAlignment.toString(16)})`);
  }
  for (const s of info.sections) {
    if (s.sizeOfRawData > 0 && s.pointerToRawData + s.sizeOfRawData > stub.length) {
      // linkers may round the last section's SizeOfRawData past EOF; the missing bytes are read as zeros
      if (s.pointerToRawData >= stub.length) throw new Error(`${stubPath}: section ${s.name} raw data lies outside the file`);
    }
  }
  return info;
}

/**
 * Write `stub` + `sections` as a new PE image (§6.1):
 * - first 64 bytes of the stub (DOS header) with e_lfanew = 0x80, 64 zero bytes, "PE\0\0" at 0x80;
 * - COFF header copied with TimeDateStamp, NumberOfSections updated and the COFF symbol table dropped;
 * - optional header copied with linker version 0.0, CheckSum 0, SizeOfCode / SizeOfInitializedData / SizeOfImage /
 *   SizeOfHeaders recomputed (data directories kept, except a stale certificate table which is cleared);
 * - stub sections keep their VAs, their raw data is re-laid out contiguously from SizeOfHeaders;
 * - appended sections: VA = align_up(end of previous section, SectionAlignment), VirtualSize = payload size,
 *   SizeOfRawData = align_up(size, FileAlignment) zero-padded, characteristics 0x40000040.
 */
export async function assemblePe(o: AssemblePeOptions): Promise<AssemblePeResult> {
  const stub = await fsp.readFile(o.stub);
  const info = checkStub(stub, o.stub);
  const fa = info.fileAlignment;
  const sa = info.sectionAlignment;

  const appended = await Promise.all(
    o.sections.map(async (s) => ({ name: s.name, nameBytes: checkName(s.name), data: s.data, size: await sizeOf(s.data) })),
  );

  const n = info.sections.length + appended.length;
  if (n > 0xffff) throw new Error('PE: too many sections');
  const headerBytes = UKI_PE_OFFSET + 4 + COFF_HEADER_SIZE + info.sizeOfOptionalHeader + SECTION_HEADER_SIZE * n;
  const sizeOfHeaders = alignUp(headerBytes, fa);
  const firstVa = Math.min(...info.sections.filter((s) => s.virtualSize > 0 || s.sizeOfRawData > 0).map((s) => s.virtualAddress));
  if (info.sections.length && sizeOfHeaders > firstVa) {
    throw new Error(`PE: ${n} section headers do not fit below the stub's first section (VA 0x${firstVa.toString(16)})`);
  }

  // --- layout
  const written: WrittenSection[] = [];
  let fileOff = sizeOfHeaders;
  let vaEnd = 0;
  for (const s of info.sections) {
    const raw = alignUp(s.sizeOfRawData, fa);
    written.push({
      name: s.name,
      virtualAddress: s.virtualAddress,
      size: s.virtualSize,
      pointerToRawData: raw > 0 ? fileOff : 0,
      sizeOfRawData: raw,
      characteristics: s.characteristics,
      fromStub: true,
    });
    fileOff += raw;
    vaEnd = Math.max(vaEnd, s.virtualAddress + (s.virtualSize || s.sizeOfRawData));
  }
  for (const s of appended) {
    const va = alignUp(vaEnd, sa);
    const raw = alignUp(s.size, fa);
    written.push({
      name: s.name,
      virtualAddress: va,
      size: s.size,
      pointerToRawData: fileOff,
      sizeOfRawData: raw,
      characteristics: UKI_SECTION_CHARACTERISTICS,
      fromStub: false,
    });
    fileOff += raw;
    vaEnd = va + s.size;
  }
  const last = written[written.length - 1];
  const sizeOfImage = alignUp(last ? last.virtualAddress + last.size : sizeOfHeaders, sa);
  if (fileOff > MAX_U32 || sizeOfImage > MAX_U32) throw new Error('PE: image exceeds 4 GiB');

  let sizeOfCode = 0;
  let sizeOfInitializedData = 0;
  for (const s of written) {
    if (s.characteristics & IMAGE_SCN_CNT_CODE) sizeOfCode += s.sizeOfRawData;
    if (s.characteristics & IMAGE_SCN_CNT_INITIALIZED_DATA) sizeOfInitializedData += s.sizeOfRawData;
  }
  if (sizeOfCode > MAX_U32 || sizeOfInitializedData > MAX_U32) throw new Error('PE: section sizes exceed 4 GiB');

  // --- headers
  const hdr = Buffer.alloc(sizeOfHeaders, 0);
  stub.copy(hdr, 0, 0, 0x40);
  hdr.writeUInt32LE(UKI_PE_OFFSET, 0x3c);
  hdr.writeUInt32LE(0x00004550, UKI_PE_OFFSET);
  const coff = UKI_PE_OFFSET + 4;
  stub.copy(hdr, coff, info.eLfanew + 4, info.eLfanew + 4 + COFF_HEADER_SIZE);
  hdr.writeUInt16LE(n, coff + 2);
  hdr.writeUInt32LE(o.timeDateStamp >>> 0, coff + 4);
  hdr.writeUInt32LE(0, coff + 8); // PointerToSymbolTable: the symbol table is not copied
  hdr.writeUInt32LE(0, coff + 12); // NumberOfSymbols
  const opt = coff + COFF_HEADER_SIZE;
  stub.copy(hdr, opt, info.optionalHeaderOffset, info.optionalHeaderOffset + info.sizeOfOptionalHeader);
  hdr.writeUInt8(0, opt + OPT.majorLinkerVersion);
  hdr.writeUInt8(0, opt + OPT.minorLinkerVersion);
  hdr.writeUInt32LE(sizeOfCode, opt + OPT.sizeOfCode);
  hdr.writeUInt32LE(sizeOfInitializedData, opt + OPT.sizeOfInitializedData);
  hdr.writeUInt32LE(sizeOfImage, opt + OPT.sizeOfImage);
  hdr.writeUInt32LE(sizeOfHeaders, opt + OPT.sizeOfHeaders);
  hdr.writeUInt32LE(0, opt + OPT.checkSum);
  if (info.numberOfRvaAndSizes > DATA_DIRECTORY_SECURITY) {
    // a certificate table is addressed by file offset and signs the old layout: it cannot survive re-layout
    const d = opt + numberOfRvaAndSizesOffset(true) + 4 + 8 * DATA_DIRECTORY_SECURITY;
    hdr.writeUInt32LE(0, d);
    hdr.writeUInt32LE(0, d + 4);
  }
  const table = opt + info.sizeOfOptionalHeader;
  written.forEach((s, i) => {
    const h = table + SECTION_HEADER_SIZE * i;
    if (s.fromStub) {
      // keep the stub's header (name, relocation/line-number fields) and only move the raw data pointer
      const src = info.sections[i].headerOffset;
      stub.copy(hdr, h, src, src + SECTION_HEADER_SIZE);
      hdr.writeUInt32LE(s.sizeOfRawData, h + 16);
      hdr.writeUInt32LE(s.pointerToRawData, h + 20);
    } else {
      appended[i - info.sections.length].nameBytes.copy(hdr, h);
      hdr.writeUInt32LE(s.size, h + 8);
      hdr.writeUInt32LE(s.virtualAddress, h + 12);
      hdr.writeUInt32LE(s.sizeOfRawData, h + 16);
      hdr.writeUInt32LE(s.pointerToRawData, h + 20);
      hdr.writeUInt32LE(s.characteristics, h + 36);
    }
  });

  // --- body
  const tmp = `${o.out}.tmp-${process.pid}-${Date.now()}`;
  await fsp.mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
  const fh = await fsp.open(tmp, 'w');
  let pos = 0;
  const write = async (b: Buffer) => {
    let off = 0;
    while (off < b.length) {
      const { bytesWritten } = await fh.write(b, off, b.length - off, pos);
      off += bytesWritten;
      pos += bytesWritten;
    }
  };
  const pad = async (to: number) => {
    if (to > pos) await write(Buffer.alloc(to - pos, 0));
  };
  try {
    await write(hdr);
    for (let i = 0; i < info.sections.length; i++) {
      const s = info.sections[i];
      const w = written[i];
      if (w.sizeOfRawData === 0) continue;
      const end = Math.min(s.pointerToRawData + s.sizeOfRawData, stub.length);
      await write(stub.subarray(s.pointerToRawData, end));
      await pad(w.pointerToRawData + w.sizeOfRawData);
    }
    const chunk = Buffer.alloc(COPY_CHUNK);
    for (let i = 0; i < appended.length; i++) {
      const s = appended[i];
      const w = written[info.sections.length + i];
      if (Buffer.isBuffer(s.data)) {
        await write(s.data);
      } else {
        const src = await fsp.open(s.data.path, 'r');
        try {
          let copied = 0;
          while (copied < s.size) {
            const { bytesRead } = await src.read(chunk, 0, Math.min(chunk.length, s.size - copied), copied);
            if (bytesRead === 0) throw new Error(`PE: ${s.data.path} shrank while being copied (${copied} of ${s.size} bytes)`);
            await write(chunk.subarray(0, bytesRead));
            copied += bytesRead;
          }
        } finally {
          await src.close();
        }
      }
      await pad(w.pointerToRawData + w.sizeOfRawData);
    }
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  try {
    if (o.sign) await o.sign(tmp);
    await fsp.rename(tmp, o.out);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }

  const strippedSymbolBytes = info.pointerToSymbolTable > 0 ? Math.max(0, stub.length - info.pointerToSymbolTable) : 0;
  return { sections: written, sizeOfHeaders, sizeOfImage, fileSize: fs.statSync(o.out).size, strippedSymbolBytes };
}
