/**
 * The Authenticode PE image hash (Microsoft "Windows Authenticode Portable Executable Signature Format", "Calculating
 * the PE Image Hash") and the PE optional-header checksum, both computed from a file with positioned reads so a
 * 100+ MB UKI is never held in memory.
 */
import { createHash, Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { DATA_DIRECTORY_SECURITY, numberOfRvaAndSizesOffset, OPT, parsePe, PeInfo } from './pe';

type FileHandle = fsp.FileHandle;

const CHUNK = 1 << 20;

/** Where the fields Authenticode excludes sit, and what the image (without signature) spans. */
export interface PeSigningLayout {
  info: PeInfo;
  fileSize: number;
  /** file offset of the optional header CheckSum (4 bytes) */
  checkSumOffset: number;
  /** file offset of the Certificate Table data directory entry (8 bytes) */
  certificateDirectoryOffset: number;
  /** the existing certificate table (file offset + size), or undefined when the file is unsigned */
  certificateTable?: { offset: number; size: number };
  /** end of the signed image: the certificate table's offset, or the file size when unsigned */
  imageEnd: number;
}

/** Read the headers (everything up to SizeOfHeaders and the section table) with positioned reads. */
export async function readPeLayout(fh: FileHandle): Promise<PeSigningLayout> {
  const fileSize = (await fh.stat()).size;
  let headerBytes = Math.min(fileSize, 4096);
  let buf = await readAt(fh, 0, headerBytes);
  let info: PeInfo;
  for (;;) {
    try {
      info = parsePe(buf);
    } catch (e) {
      // section tables that reach past the first 4 KiB: read more, up to the whole header area
      if (headerBytes < fileSize && /truncated/.test((e as Error).message)) {
        headerBytes = Math.min(fileSize, headerBytes * 4);
        buf = await readAt(fh, 0, headerBytes);
        continue;
      }
      throw e;
    }
    break;
  }
  if (info.numberOfRvaAndSizes <= DATA_DIRECTORY_SECURITY) throw new Error('PE: no Certificate Table data directory');
  if (info.sizeOfHeaders > fileSize) throw new Error('PE: SizeOfHeaders beyond the end of the file');
  const opt = info.optionalHeaderOffset;
  const certificateDirectoryOffset = opt + numberOfRvaAndSizesOffset(info.pe32plus) + 4 + 8 * DATA_DIRECTORY_SECURITY;
  const dir = info.dataDirectories[DATA_DIRECTORY_SECURITY];
  let certificateTable: PeSigningLayout['certificateTable'];
  if (dir.size > 0) {
    // the Certificate Table entry holds a file offset, and the table must be the last thing in the file
    if (dir.virtualAddress + dir.size !== fileSize) {
      throw new Error(`PE: certificate table ${dir.virtualAddress}+${dir.size} does not end the file (${fileSize} bytes)`);
    }
    certificateTable = { offset: dir.virtualAddress, size: dir.size };
  }
  const imageEnd = certificateTable ? certificateTable.offset : fileSize;
  for (const s of info.sections) {
    if (s.sizeOfRawData > 0 && s.pointerToRawData + s.sizeOfRawData > imageEnd) {
      throw new Error(`PE: section ${s.name} raw data ${s.pointerToRawData}+${s.sizeOfRawData} runs past the image end ${imageEnd}`);
    }
  }
  return { info, fileSize, checkSumOffset: opt + OPT.checkSum, certificateDirectoryOffset, certificateTable, imageEnd };
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`short read at ${position + done}`);
    done += bytesRead;
  }
  return buf;
}

async function hashRange(fh: FileHandle, hash: Hash, start: number, end: number): Promise<void> {
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(end - start, 0)));
  for (let pos = start; pos < end; ) {
    const n = Math.min(buf.length, end - pos);
    const { bytesRead } = await fh.read(buf, 0, n, pos);
    if (bytesRead === 0) throw new Error(`short read at ${pos}`);
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/** zero bytes that embedding a signature puts between an unsigned image and its certificate table */
export function alignmentPadding(imageEnd: number): number {
  return (8 - (imageEnd % 8)) % 8;
}

/**
 * SHA-256 Authenticode digest of a PE file: headers without CheckSum and the Certificate Table entry, sections in
 * order of PointerToRawData, then the data after them up to the certificate table (the systemd stub's COFF symbol
 * table is such trailing data). For an unsigned file this is the digest its signature must carry once embedded, so
 * the zero padding that aligns the certificate table to 8 bytes is included, as sbsign and osslsigncode hash it.
 */
export async function authenticodeDigest(path: string): Promise<Buffer> {
  const fh = await fsp.open(path, 'r');
  try {
    return await authenticodeDigestOf(fh, await readPeLayout(fh));
  } finally {
    await fh.close();
  }
}

export async function authenticodeDigestOf(fh: FileHandle, layout: PeSigningLayout): Promise<Buffer> {
  const { info } = layout;
  const hash = createHash('sha256');
  await hashRange(fh, hash, 0, layout.checkSumOffset);
  await hashRange(fh, hash, layout.checkSumOffset + 4, layout.certificateDirectoryOffset);
  await hashRange(fh, hash, layout.certificateDirectoryOffset + 8, info.sizeOfHeaders);
  let bytesHashed = info.sizeOfHeaders;
  const sections = info.sections.filter((s) => s.sizeOfRawData > 0).sort((a, b) => a.pointerToRawData - b.pointerToRawData);
  for (const s of sections) {
    await hashRange(fh, hash, s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData);
    bytesHashed += s.sizeOfRawData;
  }
  // the specification's SUM_OF_BYTES_HASHED: extra data is hashed from that offset (equal to the end of the last
  // section when, as in every EFI binary, the sections follow the headers without gaps)
  if (bytesHashed < layout.imageEnd) await hashRange(fh, hash, bytesHashed, layout.imageEnd);
  if (!layout.certificateTable) hash.update(Buffer.alloc(alignmentPadding(layout.imageEnd)));
  return hash.digest();
}

/**
 * PE optional-header CheckSum of a whole file (the field itself counted as zero): 16-bit one's-complement-style
 * sum with carries folded, plus the file length, as imagehlp's CheckSumMappedFile computes it.
 */
export async function peChecksum(fh: FileHandle, checkSumOffset: number): Promise<number> {
  const fileSize = (await fh.stat()).size;
  const buf = Buffer.alloc(CHUNK); // even size: 16-bit words never straddle chunks
  let sum = 0;
  for (let pos = 0; pos < fileSize; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, fileSize - pos), pos);
    if (bytesRead === 0) throw new Error(`short read at ${pos}`);
    let end = bytesRead;
    if (end % 2 === 1 && pos + end < fileSize) end -= 1; // keep word alignment for the next read
    for (let i = 0; i < end; i += 2) {
      const at = pos + i;
      let word: number;
      if (at >= checkSumOffset && at < checkSumOffset + 4) word = 0;
      else word = i + 1 < end ? buf.readUInt16LE(i) : buf[i];
      sum += word;
      sum = (sum & 0xffff) + (sum >>> 16);
    }
    pos += end;
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + fileSize) >>> 0;
}
