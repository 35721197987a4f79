/** Talos disk images (talos-formats.md §8–§10): partition plan, GPT, META/ADV, file systems built as files. */
export { gptPartitionGuid, uuidToGptBytes, gptBytesToUuid, DISK_IMAGE_LABEL, PARTITION_TYPE, GPT_ATTR_LEGACY_BIOS_BOOTABLE } from './guid';
export { planDisk, partitionSizeBytes, partitionOffsetBytes, GPT_ENTRIES, GPT_ENTRY_SIZE } from './plan';
export type { DiskPlanInput, PlannedPartition, DiskPlan, DiskArch, DiskBootloader, PartitionLabel, PartitionFilesystem } from './plan';
export { writeGpt, readGpt, gptEntries, applyProtectiveMbr } from './gpt';
export type { GptInfo, GptHeaderInfo, GptPartitionInfo } from './gpt';
export { encodeAdv, decodeAdv, metaPartitionContents, ADV_LENGTH, ADV_TOTAL, ADV_MAGIC1, ADV_MAGIC2 } from './adv';
export type { DecodeAdvOptions } from './adv';
export { MissingHostSupportError, diskGrubCfg, patchBootImg, patchCoreImg, DISK_GRUB_MODULES, DISK_GRUB_BIOS_MODULES, DISK_GRUB_PREFIX, DISK_RESET_ARG } from './grub';
export type { DiskGrubCfgOptions } from './grub';
export { resolveXfsConfig, xfsProtofile, parseXfsSuperblock, XFS_CONFIG_DIR } from './xfs';
export type { XfsConfigResolution, XfsSuperblock } from './xfs';
export {
  buildDiskImage,
  copySparse,
  dataRegions,
  diskLoaderConf,
  diskEfiBootPath,
  diskMetaValues,
  META_DISK_IMAGE_BOOTLOADER,
} from './build';
export type { DiskContents, DiskEnrollKeys, BuildDiskImageOptions, DiskBuildInfo } from './build';
