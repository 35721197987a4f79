/**
 * Talos ADV (talos-formats.md §9.1): the 256 KiB block at the start of the META partition (written twice).
 *
 *   0x0000          uint32 BE magic 0x5A4B3C2D
 *   0x0004...       records { uint32 BE tag, uint32 BE length, value bytes }, ended by tag 0 / zero bytes
 *   L-36 .. L-4     SHA-256 of the whole block computed with this field zeroed
 *   L-4  .. L       uint32 BE magic 0xA5B4C3D2
 *
 * Talos writes the records in Go map order (random); this encoder writes them sorted by tag so images are
 * reproducible. Compare decoded maps, never bytes, with Talos-made blocks.
 */
import { createHash } from 'node:crypto';
import { ADV_LENGTH, ADV_RECORD_CAPACITY, ADV_RECORD_OVERHEAD } from '@factory/talos';

export { ADV_LENGTH };
export const ADV_MAGIC1 = 0x5a4b3c2d;
export const ADV_MAGIC2 = 0xa5b4c3d2;
/** size of the META partition contents Talos reserves for the two ADV copies */
export const ADV_TOTAL = 2 * ADV_LENGTH;

function checksum(block: Buffer): Buffer {
  const copy = Buffer.from(block);
  copy.fill(0, ADV_LENGTH - 36, ADV_LENGTH - 4);
  return createHash('sha256').update(copy).digest();
}

/** Encode one 256 KiB ADV block. Keys must be 1..255 (0 ends the record list), values are UTF-8 strings. */
export function encodeAdv(values: Map<number, string>): Buffer {
  const buf = Buffer.alloc(ADV_LENGTH);
  buf.writeUInt32BE(ADV_MAGIC1, 0);
  buf.writeUInt32BE(ADV_MAGIC2, ADV_LENGTH - 4);
  let off = 4;
  const end = 4 + ADV_RECORD_CAPACITY;
  for (const key of [...values.keys()].sort((a, b) => a - b)) {
    if (!Number.isInteger(key) || key < 1 || key > 255) throw new Error(`ADV tag ${key} out of range 1..255`);
    const v = Buffer.from(values.get(key)!, 'utf8');
    if (off + ADV_RECORD_OVERHEAD + v.length > end) throw new Error(`ADV overflow writing tag ${key} (${v.length} bytes)`);
    buf.writeUInt32BE(key, off);
    buf.writeUInt32BE(v.length, off + 4);
    v.copy(buf, off + 8);
    off += 8 + v.length;
  }
  checksum(buf).copy(buf, ADV_LENGTH - 36);
  return buf;
}

export interface DecodeAdvOptions {
  /**
   * Decode only the records of a block prefix (e.g. the first 4 KiB of META that a booted guest dumped): checks the
   * leading magic and record framing, but cannot check the trailing magic and checksum, which live at the end of
   * the 256 KiB block.
   */
  partial?: boolean;
}

function decodeRecords(data: Buffer, partial: boolean): Map<number, string> {
  const out = new Map<number, string>();
  let off = 0;
  while (off + 8 <= data.length) {
    const tag = data.readUInt32BE(off);
    if (tag === 0) return out;
    const len = data.readUInt32BE(off + 4);
    if (off + 8 + len > data.length) {
      if (partial) throw new Error(`ADV record ${tag} (${len} bytes) extends past the ${data.length}-byte prefix`);
      throw new Error(`ADV value goes beyond the end of the block: tag ${tag}, size ${len}`);
    }
    out.set(tag, data.subarray(off + 8, off + 8 + len).toString('utf8'));
    off += 8 + len;
  }
  if (partial) throw new Error('ADV prefix ends before the record list terminator');
  return out;
}

function decodeOne(block: Buffer): Map<number, string> {
  const m1 = block.readUInt32BE(0);
  if (m1 !== ADV_MAGIC1) throw new Error(`ADV: unexpected magic ${m1.toString(16)}, expecting ${ADV_MAGIC1.toString(16)}`);
  const m2 = block.readUInt32BE(ADV_LENGTH - 4);
  if (m2 !== ADV_MAGIC2) throw new Error(`ADV: unexpected trailing magic ${m2.toString(16)}, expecting ${ADV_MAGIC2.toString(16)}`);
  const want = block.subarray(ADV_LENGTH - 36, ADV_LENGTH - 4);
  const got = checksum(block);
  if (!got.equals(want)) throw new Error(`ADV: checksum mismatch: ${want.toString('hex')}, computed ${got.toString('hex')}`);
  return decodeRecords(block.subarray(4, ADV_LENGTH - 36), false);
}

/**
 * Decode an ADV block, verifying both magics and the SHA-256. Accepts one 256 KiB block, or the whole META area
 * (two copies, or the whole partition): like Talos, the second copy is used when the first one is invalid.
 */
export function decodeAdv(block: Buffer, o: DecodeAdvOptions = {}): Map<number, string> {
  if (o.partial) {
    if (block.length < 8) throw new Error('ADV prefix too short');
    const m1 = block.readUInt32BE(0);
    if (m1 !== ADV_MAGIC1) throw new Error(`ADV: unexpected magic ${m1.toString(16)}, expecting ${ADV_MAGIC1.toString(16)}`);
    return decodeRecords(block.subarray(4, Math.min(block.length, ADV_LENGTH - 36)), true);
  }
  if (block.length < ADV_LENGTH) throw new Error(`ADV block must be at least ${ADV_LENGTH} bytes (got ${block.length})`);
  try {
    return decodeOne(block.subarray(0, ADV_LENGTH));
  } catch (e) {
    if (block.length < ADV_TOTAL) throw e;
    return decodeOne(block.subarray(ADV_LENGTH, ADV_TOTAL));
  }
}

/** META partition contents (zero-filled `size` bytes, the ADV written twice at 0 and 256 KiB). */
export function metaPartitionContents(values: Map<number, string>, size: number): Buffer {
  if (size < ADV_TOTAL) throw new Error(`META partition (${size} bytes) is smaller than two ADV copies`);
  const buf = Buffer.alloc(size);
  const block = encodeAdv(values);
  block.copy(buf, 0);
  block.copy(buf, ADV_LENGTH);
  return buf;
}
