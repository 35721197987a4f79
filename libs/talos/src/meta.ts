/**
 * What a disk image's META partition can hold (talos-formats §9.1): the schematic's META values and the factory's own
 * keys are records of one 256 KiB Talos ADV block (written twice). The imaging code encodes the block; the edge uses
 * the same numbers to refuse a schematic whose values cannot fit before a build is queued.
 */
import type { MetaValue } from './cmdline';

/** One Talos ADV block. */
export const ADV_LENGTH = 256 * 1024;
/** Bytes of records one block holds: all but the leading magic (4), the SHA-256 (32) and the trailing magic (4). */
export const ADV_RECORD_CAPACITY = ADV_LENGTH - 4 - 32 - 4;
/** Bytes a record takes beyond its value: uint32 tag and uint32 length. */
export const ADV_RECORD_OVERHEAD = 8;
/** META key the imager sets on amd64 dual-boot disk images (Talos removes it on first boot). */
export const META_DISK_IMAGE_BOOTLOADER = 0x11;
const DISK_IMAGE_BOOTLOADER_VALUE = 'dual-boot';

/** Record bytes of the ADV block holding `values` (keys are unique: a later value for a key replaced an earlier one). */
export function advRecordBytes(values: ReadonlyMap<number, string>): number {
  let total = 0;
  for (const v of values.values()) total += ADV_RECORD_OVERHEAD + Buffer.byteLength(v, 'utf8');
  return total;
}

/**
 * Why the schematic's META values cannot be written into a disk image's META partition, or undefined when they fit.
 * Key 0 ends an ADV record list, so it cannot be stored. The bootloader key the imager may add is counted whenever
 * the schematic does not set it itself, so a value accepted here fits every disk image.
 */
export function diskMetaProblem(meta: readonly MetaValue[]): string | undefined {
  if (meta.some((m) => m.key === 0)) return 'META key 0 is reserved (it ends the META record list)';
  const values = new Map<number, string>(meta.map((m) => [m.key, m.value]));
  if (!values.has(META_DISK_IMAGE_BOOTLOADER)) values.set(META_DISK_IMAGE_BOOTLOADER, DISK_IMAGE_BOOTLOADER_VALUE);
  const bytes = advRecordBytes(values);
  if (bytes <= ADV_RECORD_CAPACITY) return undefined;
  return `META values take ${bytes} bytes (${ADV_RECORD_OVERHEAD} per key plus the value), more than the ${ADV_RECORD_CAPACITY} bytes the META partition holds`;
}
