/**
 * Partition plan of a Talos disk image (talos-formats.md §8.2, §10 `partitionOptions.offset`), computed the way the
 * imager's GPT library allocates: entries at LBA 2 (+ skipped LBAs), first usable LBA rounded up to 1 MiB,
 * partitions back to back in order, each in whole 1 MiB units, the last data partition (EPHEMERAL) taking the rest of
 * the 1 MiB-aligned usable space.
 */
import { adjustedDiskSizeMiB, parseTolerant, partitionSizesMiB, SemVer, skipDataPartitions } from '@factory/talos';
import { DISK_IMAGE_LABEL, GPT_ATTR_LEGACY_BIOS_BOOTABLE, gptPartitionGuid, PARTITION_TYPE } from './guid';

export type DiskArch = 'amd64' | 'arm64';
export type DiskBootloader = 'grub' | 'sd-boot' | 'dual-boot';
export type PartitionLabel = 'EFI' | 'BIOS' | 'BOOT' | 'META' | 'STATE' | 'EPHEMERAL';
export type PartitionFilesystem = 'vfat' | 'xfs' | 'bios' | 'meta' | 'none';

export interface DiskPlanInput {
  /** Talos version, e.g. v1.11.3 (prerelease/build parts are ignored, as Talos quirks do) */
  version: string;
  arch: DiskArch;
  /** the effective bootloader (see `diskBootloader` in @factory/talos) */
  bootloader: DiskBootloader;
  /** platform default disk size in MiB before the imager's growth (1246, 8192, 10240, ...) */
  baseSizeMiB: number;
  sectorSize: 512 | 4096;
  /** overlay `partitionOptions.offset`: LBAs skipped before the primary partition entries */
  firstPartitionOffsetLBA?: number;
}

export interface PlannedPartition {
  label: PartitionLabel;
  /** lowercase canonical UUID text */
  typeGuid: string;
  guid: string;
  firstLba: bigint;
  /** inclusive */
  lastLba: bigint;
  attributes: bigint;
  filesystem: PartitionFilesystem;
}

export interface DiskPlan {
  sizeBytes: bigint;
  sectorSize: number;
  diskGuid: string;
  partitions: PlannedPartition[];
  /** additions to the brief's shape (all produced by planDisk, needed by writeGpt / buildDiskImage): */
  version: string;
  arch: DiskArch;
  bootloader: DiskBootloader;
  /** LBA of the primary partition entry array (2 + firstPartitionOffsetLBA) */
  partitionEntriesLba: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
}

export const MiB = 1024 * 1024;
/** number of GPT partition entries and their size */
export const GPT_ENTRIES = 128;
export const GPT_ENTRY_SIZE = 128;

export function parseDiskVersion(version: string): SemVer {
  const v = parseTolerant(version);
  if (!v) throw new Error(`bad Talos version ${JSON.stringify(version)}`);
  return v;
}

export function partitionSizeBytes(p: Pick<PlannedPartition, 'firstLba' | 'lastLba'>, sectorSize: number): bigint {
  return (p.lastLba - p.firstLba + 1n) * BigInt(sectorSize);
}

export function partitionOffsetBytes(p: Pick<PlannedPartition, 'firstLba'>, sectorSize: number): bigint {
  return p.firstLba * BigInt(sectorSize);
}

interface Wanted {
  label: PartitionLabel;
  sizeMiB: number | 'rest';
  type: string;
  filesystem: PartitionFilesystem;
  attributes?: bigint;
}

/** Partitions (in order) and their sizes for a bootloader layout (§8.2 "Layouts by bootloader"). */
function layout(i: DiskPlanInput, v: SemVer): Wanted[] {
  const ps = partitionSizesMiB(v);
  const w: Wanted[] = [];
  switch (i.bootloader) {
    case 'grub':
      w.push({ label: 'EFI', sizeMiB: ps.grubEfi, type: PARTITION_TYPE.EFI, filesystem: 'vfat' });
      w.push({ label: 'BIOS', sizeMiB: ps.grubBios, type: PARTITION_TYPE.BIOS, filesystem: 'bios', attributes: GPT_ATTR_LEGACY_BIOS_BOOTABLE });
      w.push({ label: 'BOOT', sizeMiB: ps.grubBoot, type: PARTITION_TYPE.LINUX, filesystem: 'xfs' });
      break;
    case 'sd-boot':
      w.push({ label: 'EFI', sizeMiB: ps.ukiEfi, type: PARTITION_TYPE.EFI, filesystem: 'vfat' });
      break;
    case 'dual-boot':
      w.push({ label: 'EFI', sizeMiB: ps.ukiEfi, type: PARTITION_TYPE.EFI, filesystem: 'vfat' });
      w.push({ label: 'BIOS', sizeMiB: ps.grubBios, type: PARTITION_TYPE.BIOS, filesystem: 'bios', attributes: GPT_ATTR_LEGACY_BIOS_BOOTABLE });
      w.push({ label: 'BOOT', sizeMiB: ps.grubBoot, type: PARTITION_TYPE.LINUX, filesystem: 'xfs' });
      break;
    default:
      throw new Error(`unknown bootloader ${String(i.bootloader)}`);
  }
  w.push({ label: 'META', sizeMiB: ps.meta, type: PARTITION_TYPE.LINUX, filesystem: 'meta' });
  // images of Talos < 1.8 still carry (empty, unformatted) STATE and EPHEMERAL partitions
  if (!skipDataPartitions(v)) {
    w.push({ label: 'STATE', sizeMiB: ps.state, type: PARTITION_TYPE.LINUX, filesystem: 'none' });
    w.push({ label: 'EPHEMERAL', sizeMiB: 'rest', type: PARTITION_TYPE.LINUX, filesystem: 'none' });
  }
  return w;
}

/** Compute the disk size and partition table of a disk image. */
export function planDisk(i: DiskPlanInput): DiskPlan {
  const v = parseDiskVersion(i.version);
  if (i.arch !== 'amd64' && i.arch !== 'arm64') throw new Error(`unknown arch ${String(i.arch)}`);
  if (i.sectorSize !== 512 && i.sectorSize !== 4096) throw new Error(`unsupported sector size ${String(i.sectorSize)}`);
  if (i.arch === 'arm64' && i.bootloader === 'dual-boot') throw new Error('dual-boot needs amd64 (GRUB BIOS)');
  if (!Number.isSafeInteger(i.baseSizeMiB) || i.baseSizeMiB <= 0) throw new Error(`bad base disk size ${i.baseSizeMiB}`);
  const skip = i.firstPartitionOffsetLBA ?? 0;
  if (!Number.isSafeInteger(skip) || skip < 0) throw new Error(`bad partition offset ${skip}`);

  const sizeMiB = adjustedDiskSizeMiB(i.baseSizeMiB, i.bootloader, v);
  const sector = BigInt(i.sectorSize);
  const sizeBytes = BigInt(sizeMiB) * BigInt(MiB);
  const lastLba = sizeBytes / sector - 1n;
  const entryLbas = BigInt(Math.ceil((GPT_ENTRIES * GPT_ENTRY_SIZE) / i.sectorSize));
  const partitionEntriesLba = 2n + BigInt(skip);
  const align = BigInt(MiB) / sector; // 2048 LBAs at 512 B, 256 at 4096 B
  const alignUp = (x: bigint) => ((x + align - 1n) / align) * align;
  const alignDown = (x: bigint) => (x / align) * align;
  const firstUsableLba = alignUp(partitionEntriesLba + entryLbas);
  const lastUsableLba = lastLba - entryLbas - 1n;

  const partitions: PlannedPartition[] = [];
  let next = firstUsableLba;
  for (const w of layout(i, v)) {
    const low = alignUp(next);
    let sectors: bigint;
    if (w.sizeMiB === 'rest') {
      // the largest free range, both ends aligned to 1 MiB (high end rounded down)
      sectors = alignDown(lastUsableLba) - low;
    } else {
      sectors = (BigInt(w.sizeMiB) * BigInt(MiB)) / sector;
    }
    const lastPartLba = low + sectors - 1n;
    if (sectors <= 0n || lastPartLba > lastUsableLba) {
      throw new Error(`disk of ${sizeMiB} MiB is too small for partition ${w.label} (${w.sizeMiB === 'rest' ? 'rest' : `${w.sizeMiB} MiB`})`);
    }
    partitions.push({
      label: w.label,
      typeGuid: w.type,
      guid: gptPartitionGuid(w.label),
      firstLba: low,
      lastLba: lastPartLba,
      attributes: w.attributes ?? 0n,
      filesystem: w.filesystem,
    });
    next = lastPartLba + 1n;
  }

  return {
    sizeBytes,
    sectorSize: i.sectorSize,
    diskGuid: gptPartitionGuid(DISK_IMAGE_LABEL),
    partitions,
    version: i.version,
    arch: i.arch,
    bootloader: i.bootloader,
    partitionEntriesLba,
    firstUsableLba,
    lastUsableLba,
  };
}
