/** CRC primitives shared by the GPT writer/reader, the ISO completion check and the XFS inode normaliser. */
import zlib from 'node:zlib';

/** CRC-32 (IEEE 802.3, reflected, as zlib / the UEFI spec use). */
export function crc32(buf: Uint8Array): number {
  return zlib.crc32(buf) >>> 0;
}

let crc32cTable: Uint32Array | undefined;

/** CRC-32C (Castagnoli), as XFS metadata checksums use. */
export function crc32c(buf: Uint8Array): number {
  if (!crc32cTable) {
    crc32cTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      crc32cTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = crc32cTable[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
