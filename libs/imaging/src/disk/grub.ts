/**
 * GRUB pieces of grub / dual-boot disk images (talos-formats.md §8.2): the BOOT partition's grub.cfg, the i386-pc
 * core.img for the BIOS partition + the patched boot.img for the MBR, and the EFI GRUB image of the grub layout.
 * No grub-install: everything is generated with grub-mkimage and patched in place.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EnvOverrides, run } from '@factory/process';
import { grubEscape } from '../grub-escape';

/** Modules embedded into both GRUB images. */
export const DISK_GRUB_MODULES = [
  'part_gpt', 'ext2', 'fat', 'xfs', 'normal', 'configfile', 'linux', 'boot', 'search', 'search_fs_uuid', 'search_fs_file',
  'ls', 'cat', 'echo', 'test', 'help', 'reboot', 'halt', 'all_video',
];
/** Extra modules of the BIOS core.img. */
export const DISK_GRUB_BIOS_MODULES = ['biosdisk', 'part_msdos'];
/** GRUB prefix: partition 3 (BOOT) of the first disk, in both the grub and the dual-boot layout. */
export const DISK_GRUB_PREFIX = '(hd0,gpt3)/grub';
/** kernel argument of the "Reset ... maintenance mode" entry */
export const DISK_RESET_ARG = 'talos.experimental.wipe=system:EPHEMERAL,STATE';

/** boot.img: LE64 sector of core.img's first sector (GRUB_BOOT_MACHINE_KERNEL_SECTOR) */
const BOOT_IMG_KERNEL_SECTOR = 0x5c;
/** boot.img: the boot-drive check jump, NOPed for GPT disks as grub-install does */
const BOOT_IMG_DRIVE_CHECK = 0x66;
/** core.img (diskboot.img part): first blocklist entry's LE64 start sector */
const CORE_IMG_BLOCKLIST_START = 0x1f4;

export interface DiskGrubCfgOptions {
  version: string;
  cmdline: string;
  /** "Reset Talos installation and return to maintenance mode" entry (Talos >= 1.4) */
  resetEntry: boolean;
}

/** /grub/grub.cfg of the BOOT partition (§8.2), entry label `A`. */
export function diskGrubCfg(o: DiskGrubCfgOptions): string {
  const name = `A - Talos ${o.version}`;
  const esc = grubEscape(o.cmdline);
  let s = `set default="${name}"\n\nset timeout=3\n\ninsmod all_video\n\nterminal_input console\nterminal_output console\n\n`;
  s += `menuentry "${name}" {\n  set gfxmode=auto\n  set gfxpayload=text\n  linux /A/vmlinuz ${esc}\n  initrd /A/initramfs.xz\n}\n`;
  if (o.resetEntry) {
    s += `menuentry "Reset Talos installation and return to maintenance mode" {\n  set gfxmode=auto\n  set gfxpayload=text\n  linux /A/vmlinuz ${esc} ${DISK_RESET_ARG}\n  initrd /A/initramfs.xz\n}\n`;
  }
  return s;
}

/** Patch boot.img (a copy is returned) to load core.img from `biosFirstLba`. */
export function patchBootImg(bootImg: Buffer, biosFirstLba: bigint): Buffer {
  if (bootImg.length < 512) throw new Error(`boot.img is too small (${bootImg.length} bytes)`);
  const b = Buffer.from(bootImg);
  b.writeBigUInt64LE(biosFirstLba, BOOT_IMG_KERNEL_SECTOR);
  b[BOOT_IMG_DRIVE_CHECK] = 0x90;
  b[BOOT_IMG_DRIVE_CHECK + 1] = 0x90;
  return b;
}

/** Patch core.img (a copy is returned): its blocklist continues at `biosFirstLba + 1`. */
export function patchCoreImg(coreImg: Buffer, biosFirstLba: bigint): Buffer {
  if (coreImg.length < 512) throw new Error(`core.img is too small (${coreImg.length} bytes)`);
  const c = Buffer.from(coreImg);
  c.writeBigUInt64LE(biosFirstLba + 1n, CORE_IMG_BLOCKLIST_START);
  return c;
}

export interface GrubImageOptions {
  grubLibDir: string;
  env: EnvOverrides;
}

/** `grub-mkimage --format i386-pc --prefix (hd0,gpt3)/grub` with the disk modules. */
export async function makeBiosCore(out: string, o: GrubImageOptions): Promise<Buffer> {
  const dir = path.join(o.grubLibDir, 'i386-pc');
  await run('grub-mkimage', ['--directory', dir, '--format', 'i386-pc', '--output', out, '--prefix', DISK_GRUB_PREFIX, ...DISK_GRUB_MODULES, ...DISK_GRUB_BIOS_MODULES], { env: o.env });
  return fsp.readFile(out);
}

/** The unpatched i386-pc boot.img. */
export async function readBootImg(o: GrubImageOptions): Promise<Buffer> {
  return fsp.readFile(path.join(o.grubLibDir, 'i386-pc', 'boot.img'));
}

/**
 * The host lacks something a build needs (a tool, firmware modules): a fault of this build-worker's installation, the
 * same on every retry, so it is answered at once (501) instead of retried.
 */
export class MissingHostSupportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingHostSupportError';
  }
}

/** `grub-mkimage --format x86_64-efi|arm64-efi --prefix (hd0,gpt3)/grub --compression xz` with the disk modules. */
export async function makeEfiGrub(arch: 'amd64' | 'arm64', out: string, o: GrubImageOptions): Promise<void> {
  const platform = arch === 'amd64' ? 'x86_64-efi' : 'arm64-efi';
  const dir = path.join(o.grubLibDir, platform);
  try {
    await fsp.access(dir);
  } catch {
    throw new MissingHostSupportError(`GRUB ${platform} modules are not installed on this build-worker (${dir}); they are needed for a GRUB-layout ${arch} disk image`);
  }
  await fsp.mkdir(path.dirname(out), { recursive: true });
  await run('grub-mkimage', ['--directory', dir, '--format', platform, '--output', out, '--prefix', DISK_GRUB_PREFIX, '--compression', 'xz', ...DISK_GRUB_MODULES], { env: o.env });
}
