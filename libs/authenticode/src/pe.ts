/**
 * Minimal PE/COFF (PE32 / PE32+) reader: enough to re-lay out an EFI stub and to verify UKIs in tests.
 * Offsets follow the Microsoft PE/COFF specification.
 */

export const IMAGE_SCN_CNT_CODE = 0x00000020;
export const IMAGE_SCN_CNT_INITIALIZED_DATA = 0x00000040;
export const IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x00000080;
export const IMAGE_SCN_MEM_READ = 0x40000000;
/** characteristics of every section the UKI writer appends */
export const UKI_SECTION_CHARACTERISTICS = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ;

export const PE32_MAGIC = 0x10b;
export const PE32PLUS_MAGIC = 0x20b;
export const MACHINE_AMD64 = 0x8664;
export const MACHINE_ARM64 = 0xaa64;

/** e_lfanew of every UKI written here: the DOS stub program is dropped and "PE\0\0" sits at 0x80. */
export const UKI_PE_OFFSET = 0x80;
export const COFF_HEADER_SIZE = 20;
export const SECTION_HEADER_SIZE = 40;
export const DATA_DIRECTORY_SECURITY = 4;

export interface PeSection {
  /** name without trailing NULs (long "/nnn" names are not resolved; stubs do not use them) */
  name: string;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
  /** file offset of this section's 40-byte header */
  headerOffset: number;
}

export interface PeDataDirectory {
  virtualAddress: number;
  size: number;
}

export interface PeInfo {
  eLfanew: number;
  /** COFF header */
  machine: number;
  numberOfSections: number;
  timeDateStamp: number;
  pointerToSymbolTable: number;
  numberOfSymbols: number;
  sizeOfOptionalHeader: number;
  characteristics: number;
  /** optional header */
  optionalHeaderOffset: number;
  magic: number;
  pe32plus: boolean;
  majorLinkerVersion: number;
  minorLinkerVersion: number;
  sizeOfCode: number;
  sizeOfInitializedData: number;
  sizeOfUninitializedData: number;
  addressOfEntryPoint: number;
  baseOfCode: number;
  imageBase: bigint;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  checkSum: number;
  subsystem: number;
  numberOfRvaAndSizes: number;
  dataDirectories: PeDataDirectory[];
  /** file offset of the section table */
  sectionTableOffset: number;
  sections: PeSection[];
  /** file offset just after the last byte of section raw data (any data after it is trailing: symbols, certificates) */
  endOfSectionData: number;
}

/** Field offsets inside the optional header (same for PE32 and PE32+ up to SizeOfHeaders/CheckSum). */
export const OPT = {
  magic: 0,
  majorLinkerVersion: 2,
  minorLinkerVersion: 3,
  sizeOfCode: 4,
  sizeOfInitializedData: 8,
  sizeOfUninitializedData: 12,
  addressOfEntryPoint: 16,
  baseOfCode: 20,
  sectionAlignment: 32,
  fileAlignment: 36,
  sizeOfImage: 56,
  sizeOfHeaders: 60,
  checkSum: 64,
  subsystem: 68,
} as const;

/** offset of NumberOfRvaAndSizes inside the optional header; data directories follow it */
export function numberOfRvaAndSizesOffset(pe32plus: boolean): number {
  return pe32plus ? 108 : 92;
}

function need(buf: Buffer, end: number, what: string): void {
  if (end > buf.length) throw new Error(`PE: truncated ${what} (need ${end} bytes, have ${buf.length})`);
}

/**
 * Parse the headers and section table of a PE image. `buf` may be just a prefix of the file as long as it holds
 * all headers (raw section data is not touched).
 */
export function parsePe(buf: Buffer): PeInfo {
  need(buf, 0x40, 'DOS header');
  if (buf.readUInt16LE(0) !== 0x5a4d) throw new Error('PE: missing MZ signature');
  const eLfanew = buf.readUInt32LE(0x3c);
  need(buf, eLfanew + 4 + COFF_HEADER_SIZE, 'COFF header');
  if (buf.readUInt32LE(eLfanew) !== 0x00004550) throw new Error(`PE: missing PE signature at 0x${eLfanew.toString(16)}`);
  const coff = eLfanew + 4;
  const machine = buf.readUInt16LE(coff);
  const numberOfSections = buf.readUInt16LE(coff + 2);
  const timeDateStamp = buf.readUInt32LE(coff + 4);
  const pointerToSymbolTable = buf.readUInt32LE(coff + 8);
  const numberOfSymbols = buf.readUInt32LE(coff + 12);
  const sizeOfOptionalHeader = buf.readUInt16LE(coff + 16);
  const characteristics = buf.readUInt16LE(coff + 18);
  const opt = coff + COFF_HEADER_SIZE;
  need(buf, opt + sizeOfOptionalHeader, 'optional header');
  if (sizeOfOptionalHeader < 2) throw new Error('PE: no optional header');
  const magic = buf.readUInt16LE(opt + OPT.magic);
  if (magic !== PE32_MAGIC && magic !== PE32PLUS_MAGIC) throw new Error(`PE: unknown optional header magic 0x${magic.toString(16)}`);
  const pe32plus = magic === PE32PLUS_MAGIC;
  const nrvaOff = numberOfRvaAndSizesOffset(pe32plus);
  if (sizeOfOptionalHeader < nrvaOff + 4) throw new Error('PE: optional header too small');
  const numberOfRvaAndSizes = buf.readUInt32LE(opt + nrvaOff);
  if (nrvaOff + 4 + 8 * numberOfRvaAndSizes > sizeOfOptionalHeader) throw new Error('PE: data directories exceed the optional header');
  const dataDirectories: PeDataDirectory[] = [];
  for (let i = 0; i < numberOfRvaAndSizes; i++) {
    const o = opt + nrvaOff + 4 + 8 * i;
    dataDirectories.push({ virtualAddress: buf.readUInt32LE(o), size: buf.readUInt32LE(o + 4) });
  }
  const sectionTableOffset = opt + sizeOfOptionalHeader;
  need(buf, sectionTableOffset + SECTION_HEADER_SIZE * numberOfSections, 'section table');
  const sections: PeSection[] = [];
  let endOfSectionData = 0;
  for (let i = 0; i < numberOfSections; i++) {
    const o = sectionTableOffset + SECTION_HEADER_SIZE * i;
    const rawName = buf.subarray(o, o + 8);
    const nul = rawName.indexOf(0);
    const s: PeSection = {
      name: rawName.subarray(0, nul < 0 ? 8 : nul).toString('latin1'),
      virtualSize: buf.readUInt32LE(o + 8),
      virtualAddress: buf.readUInt32LE(o + 12),
      sizeOfRawData: buf.readUInt32LE(o + 16),
      pointerToRawData: buf.readUInt32LE(o + 20),
      characteristics: buf.readUInt32LE(o + 36),
      headerOffset: o,
    };
    sections.push(s);
    if (s.sizeOfRawData > 0) endOfSectionData = Math.max(endOfSectionData, s.pointerToRawData + s.sizeOfRawData);
  }
  return {
    eLfanew,
    machine,
    numberOfSections,
    timeDateStamp,
    pointerToSymbolTable,
    numberOfSymbols,
    sizeOfOptionalHeader,
    characteristics,
    optionalHeaderOffset: opt,
    magic,
    pe32plus,
    majorLinkerVersion: buf.readUInt8(opt + OPT.majorLinkerVersion),
    minorLinkerVersion: buf.readUInt8(opt + OPT.minorLinkerVersion),
    sizeOfCode: buf.readUInt32LE(opt + OPT.sizeOfCode),
    sizeOfInitializedData: buf.readUInt32LE(opt + OPT.sizeOfInitializedData),
    sizeOfUninitializedData: buf.readUInt32LE(opt + OPT.sizeOfUninitializedData),
    addressOfEntryPoint: buf.readUInt32LE(opt + OPT.addressOfEntryPoint),
    baseOfCode: buf.readUInt32LE(opt + OPT.baseOfCode),
    imageBase: pe32plus ? buf.readBigUInt64LE(opt + 24) : BigInt(buf.readUInt32LE(opt + 28)),
    sectionAlignment: buf.readUInt32LE(opt + OPT.sectionAlignment),
    fileAlignment: buf.readUInt32LE(opt + OPT.fileAlignment),
    sizeOfImage: buf.readUInt32LE(opt + OPT.sizeOfImage),
    sizeOfHeaders: buf.readUInt32LE(opt + OPT.sizeOfHeaders),
    checkSum: buf.readUInt32LE(opt + OPT.checkSum),
    subsystem: buf.readUInt16LE(opt + OPT.subsystem),
    numberOfRvaAndSizes,
    dataDirectories,
    sectionTableOffset,
    sections,
    endOfSectionData,
  };
}

/** Raw bytes of a section as stored in the file (VirtualSize bytes, i.e. without file-alignment padding). */
export function peSectionData(buf: Buffer, section: PeSection): Buffer {
  const len = Math.min(section.virtualSize, section.sizeOfRawData);
  return buf.subarray(section.pointerToRawData, section.pointerToRawData + len);
}

/** All sections called `name`, in table order (a UKI with profiles has several `.profile` / `.cmdline`). */
export function peSectionsNamed(info: PeInfo, name: string): PeSection[] {
  return info.sections.filter((s) => s.name === name);
}

export function alignUp(n: number, alignment: number): number {
  if (alignment <= 1) return n;
  return Math.ceil(n / alignment) * alignment;
}
