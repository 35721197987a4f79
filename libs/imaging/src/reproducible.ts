/**
 * The fixed values that make builds reproducible, shared by every builder (initramfs, UKI, ISO, disk image, disk
 * formats, tar streams) and by the demo-release builder.
 */
import type { EnvOverrides } from '@factory/process';

/**
 * SOURCE_DATE_EPOCH of the Talos build (2019-06-01T21:34:52Z): the date of every file, archive entry, file system
 * and PE/COFF header the builders write, unless a caller asks for another one.
 */
export const SOURCE_DATE_EPOCH = 1559424892;

/**
 * Environment additions for the image tools (mkfs.vfat, mtools, mkfs.xfs, xfs_db, grub-mkimage, xorriso) on top of
 * the runner's clean environment: dates from `epoch`, UTC, C locale, mtools without user configuration, and the
 * sbin directories (mkfs.* are not on a non-root PATH).
 */
export function imageToolEnv(epoch: number, parentPath = process.env.PATH): EnvOverrides {
  return {
    SOURCE_DATE_EPOCH: String(epoch),
    TZ: 'UTC',
    LC_ALL: 'C',
    MTOOLS_SKIP_CHECK: '1',
    MTOOLSRC: '/dev/null',
    PATH: `${parentPath ?? '/usr/bin:/bin'}:/usr/sbin:/sbin`,
  };
}
