/**
 * Talos ISO builder (talos-formats.md §7): GRUB, UEFI-only (sd-boot + UKI) and hybrid flavours.
 *
 * Instead of grub-mkrescue (not reproducible) the GRUB parts are made with grub-mkimage, the FAT images with
 * mkfs.vfat/mformat + mtools, and the ISO with plain `xorriso -as mkisofs`, all with fixed dates, so two builds from
 * the same inputs are bit-identical.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { EnvOverrides, run } from '@factory/process';
import { EnrollKeys, grubCfg, grubIsoUuid, isoDateStamp, loaderConf } from './config';
import { digestWhileWritten, FileDigest } from '../digest';
import { imageToolEnv, SOURCE_DATE_EPOCH } from '../reproducible';
import { tempSibling, writeThenRename } from '../publish';
import { GPT_HEAD_BYTES, gptDeclaredSize, runXorrisoImage } from './xorriso';

export * from './config';

export type IsoFlavour = 'grub' | 'hybrid' | 'uefi';
export type IsoArch = 'amd64' | 'arm64';

export interface IsoOptions {
  /** §7.1 (decided by the caller); 'uefi' is the only arm64 flavour supported here */
  flavour: IsoFlavour;
  arch: IsoArch;
  /** Talos version with leading v, e.g. v1.11.3 (names EFI/Linux/Talos-<version>.efi) */
  version: string;
  /** kernel + initramfs for the GRUB menu entries (grub and hybrid flavours; unused by uefi) */
  kernel: string;
  initramfs: string;
  /** kernel command line of the GRUB entries (GRUB-escaped here) */
  cmdline: string;
  /** GRUB "Reset Talos installation" entry (Talos >= 1.4) */
  resetEntry: boolean;
  /** UKI and systemd-boot, required for hybrid / uefi */
  uki?: string;
  sdBoot?: string;
  /** loader.conf `secure-boot-enroll` (always `off` for non-SecureBoot) */
  enrollKeys?: EnrollKeys;
  /** Secure Boot (uefi flavour): the enrollment files and the signing certificate the boot media carry (§7.3) */
  secureBootKeys?: IsoSecureBootKeys;
  /** ISO9660 volume id / volume set id (Talos >= 1.8, e.g. TALOS_V1_11_3 / Talos-v1.11.3); omitted: xorriso defaults */
  volumeId?: string;
  volumeSetId?: string;
out: string;
  /** Compute the image's MD5 too (with its SHA-256 and SHA-512, while it is written). */
  md5?: boolean;
  /**
   * Takes the image's bytes while xorriso writes them (e.g. an upload that overlaps the write), once the image has
   * declared its final size: images with a GPT (grub and hybrid flavours) name their last sector in the primary
   * header, written first. `body` is exactly the bytes the result's digests describe and fails if the build does;
   * the build waits for `take`. Images without a GPT are not streamed (`streamed` false in the result).
   */
  whileWritten?: (size: number, body: Readable) => Promise<void>;
  /** scratch directory; each build works in a fresh `iso-build-XXXXXX` subdirectory that is removed afterwards */
  workDir: string;
  /** fixes every date in the image; default SOURCE_DATE_EPOCH (reproducible.ts) */
  sourceDateEpoch?: number;
  /** GRUB platform directories (default /usr/lib/grub) */
  grubLibDir?: string;
  /** keep the scratch tree after the build (debugging) */
  keepWorkDir?: boolean;
}

/** What a Secure Boot ISO carries for enrollment: `loader/keys/auto/{PK,KEK,db}.auth` and `EFI/keys/uki-signing-cert.der`. */
export interface IsoSecureBootKeys {
  PK: Buffer;
  KEK: Buffer;
  db: Buffer;
  signingCertDer: Buffer;
}

export interface IsoBuildInfo {
  flavour: IsoFlavour;
  /** the scratch directory (only left in place with keepWorkDir) */
  scratchDir: string;
  /** the xorriso argument vector that produced the image */
  xorrisoArgs: string[];
  /** size of the appended ESP image (hybrid/uefi) or of /efi.img (grub) */
  espBytes: number;
  /** SHA-256 (hex) and size of the written image (and its MD5 when asked for), computed while it was written */
  sha256: string;
  md5?: string;
  size: number;
  /** the bytes went to `whileWritten` as they were written */
  streamed: boolean;
  ms: number;
}

const MiB = 1024 * 1024;
/** smallest FAT32 ESP that mtools accepts: >= 65525 + 2048 clusters of 512 bytes (see espSizeBytes) */
export const MIN_ESP_BYTES = 34 * MiB;

/**
 * Size of the ESP image of UEFI / hybrid ISOs: 10 MiB + sd-boot and UKI each rounded up to 1 MiB (§7.3), but at
 * least MIN_ESP_BYTES. (FAT32 needs >= 65525 clusters; with the small demo UKIs the §7.3 formula gives ~21 MiB,
 * which mkfs.vfat formats with a warning but mtools then refuses to read. Real Talos UKIs are ~100 MiB, far above.)
 */
export function espSizeBytes(sdBootBytes: number, ukiBytes: number): number {
  const up = (n: number) => Math.ceil(n / MiB) * MiB;
  return Math.max(10 * MiB + up(sdBootBytes) + up(ukiBytes), MIN_ESP_BYTES);
}

/** EFI removable-media boot file name. */
export function efiBootFileName(arch: IsoArch): string {
  return arch === 'arm64' ? 'BOOTAA64.EFI' : 'BOOTX64.EFI';
}

/** GRUB modules embedded in the El Torito BIOS core (the rest load from /boot/grub/i386-pc). */
export const GRUB_BIOS_CORE_MODULES = ['biosdisk', 'iso9660', 'part_msdos', 'part_gpt', 'search', 'search_fs_uuid'];
/** GRUB modules embedded in the x86_64-efi core of the GRUB flavour. */
export const GRUB_EFI_CORE_MODULES = ['part_gpt', 'part_msdos', 'fat', 'iso9660', 'search', 'search_fs_uuid'];

/**
 * Early config embedded in both GRUB cores: find the ISO9660 file system by its date-based UUID (the one
 * `-volume_date uuid` writes), then load $prefix/grub.cfg via `normal`. On BIOS the root is preset to the boot
 * device, so a failed search still boots from the CD.
 */
export function grubEarlyConfig(epoch: number): string {
  return `search --no-floppy --fs-uuid --set=root ${grubIsoUuid(epoch)}\nset prefix=($root)/boot/grub\n`;
}

interface Ctx {
  o: IsoOptions;
  epoch: number;
  stamp: string;
  env: EnvOverrides;
  grubLib: string;
  scratch: string;
  /** ISO path (no leading slash) -> host file; handed to xorriso as graft points, so nothing big is copied */
  grafts: Map<string, string>;
}

async function mkdirs(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
}

/** A small generated file placed in the scratch directory and grafted into the ISO at `isoPath`. */
async function addGenerated(c: Ctx, isoPath: string, data: string | Buffer): Promise<string> {
  const file = path.join(c.scratch, 'gen', ...isoPath.split('/'));
  await mkdirs(path.dirname(file));
  await fsp.writeFile(file, data);
  c.grafts.set(isoPath, file);
  return file;
}

async function statSize(p: string, what: string): Promise<number> {
  try {
    const st = await fsp.stat(p);
    if (!st.isFile()) throw new Error(`${what} ${p} is not a regular file`);
    return st.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${what} ${p} does not exist`);
    throw e;
  }
}

/** The GRUB platform modules (*.mod, *.lst) under /boot/grub/<platform>, like grub-mkrescue's copy (grafted). */
async function graftGrubPlatform(c: Ctx, platform: string): Promise<void> {
  const src = path.join(c.grubLib, platform);
  const names = (await fsp.readdir(src)).filter((n) => n.endsWith('.mod') || n.endsWith('.lst')).sort();
  for (const n of names) c.grafts.set(`boot/grub/${platform}/${n}`, path.join(src, n));
}

async function grubMkimage(c: Ctx, format: string, platform: string, out: string, modules: string[]): Promise<void> {
  const cfg = path.join(c.scratch, `early-${platform}.cfg`);
  await fsp.writeFile(cfg, grubEarlyConfig(c.epoch));
  await mkdirs(path.dirname(out));
  await run('grub-mkimage', ['-d', path.join(c.grubLib, platform), '-O', format, '-c', cfg, '-p', '/boot/grub', '-o', out, ...modules], { env: c.env });
}

/** GRUB tree shared by the grub and hybrid flavours (§7.2). */
async function populateGrubTree(c: Ctx): Promise<void> {
  const { o } = c;
  c.grafts.set('boot/vmlinuz', path.resolve(o.kernel));
  c.grafts.set('boot/initramfs.xz', path.resolve(o.initramfs));
  await addGenerated(c, 'boot/grub/grub.cfg', grubCfg(o.cmdline, { resetEntry: o.resetEntry }));
  await graftGrubPlatform(c, 'i386-pc');
  const eltorito = path.join(c.scratch, 'gen', 'boot', 'grub', 'i386-pc', 'eltorito.img');
  await grubMkimage(c, 'i386-pc-eltorito', 'i386-pc', eltorito, GRUB_BIOS_CORE_MODULES);
  c.grafts.set('boot/grub/i386-pc/eltorito.img', eltorito);
}

/** Files of the UEFI tree (§7.3): ISO/ESP path -> host file. The same files go into the ESP image. */
async function populateUefiTree(c: Ctx): Promise<Map<string, string>> {
  const { o } = c;
  const files = new Map<string, string>([
    [`EFI/BOOT/${efiBootFileName(o.arch)}`, path.resolve(o.sdBoot!)],
    [`EFI/Linux/Talos-${o.version}.efi`, path.resolve(o.uki!)],
    ['loader/loader.conf', await addGenerated(c, 'loader/loader.conf', loaderConf(o.enrollKeys ?? 'off'))],
    ['loader/random-seed', await addGenerated(c, 'loader/random-seed', Buffer.alloc(32, 0))],
  ]);
  const keys = o.secureBootKeys;
  if (keys) {
    files.set('EFI/keys/uki-signing-cert.der', await addGenerated(c, 'EFI/keys/uki-signing-cert.der', keys.signingCertDer));
    for (const name of ['PK', 'KEK', 'db'] as const) files.set(`loader/keys/auto/${name}.auth`, await addGenerated(c, `loader/keys/auto/${name}.auth`, keys[name]));
  }
  for (const [isoPath, file] of files) c.grafts.set(isoPath, file);
  return files;
}

/**
 * ESP image for UEFI/hybrid ISOs (§7.3): preallocated file, `mkfs.vfat -F 32 -n EFI --invariant`, then the EFI and
 * loader trees copied with mtools one file at a time in sorted order (mcopy -s would follow the host's readdir order;
 * file dates come from SOURCE_DATE_EPOCH), and the FAT read-only attribute on loader/random-seed.
 */
async function buildEsp(c: Ctx, img: string, files: Map<string, string>): Promise<number> {
  const { o } = c;
  const size = espSizeBytes(await statSize(o.sdBoot!, 'sd-boot'), await statSize(o.uki!, 'UKI'));
  await fsp.rm(img, { force: true });
  const fh = await fsp.open(img, 'w');
  await fh.truncate(size);
  await fh.close();
  await run('mkfs.vfat', ['-F', '32', '-n', 'EFI', '--invariant', img], { env: c.env });
  const dirs = new Set<string>();
  for (const rel of files.keys()) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  await run('mmd', ['-i', img, ...[...dirs].sort().map((d) => `::/${d}`)], { env: c.env });
  for (const rel of [...files.keys()].sort()) await run('mcopy', ['-Q', '-i', img, files.get(rel)!, `::/${rel}`], { env: c.env });
  await run('mattrib', ['-i', img, '+r', '::/loader/random-seed'], { env: c.env });
  return size;
}

/**
 * grub flavour's /efi.img, like grub-mkrescue's: a 2.88 MB FAT (`mformat -C -f 2880 -L 16`, serial = hex epoch as
 * with GRUB_FAT_SERIAL_NUMBER) holding efi/boot/bootx64.efi = a GRUB x86_64-efi core.
 */
async function buildGrubEfiImg(c: Ctx, img: string): Promise<number> {
  const core = path.join(c.scratch, 'grub-efi', 'bootx64.efi');
  await grubMkimage(c, 'x86_64-efi', 'x86_64-efi', core, GRUB_EFI_CORE_MODULES);
  await fsp.rm(img, { force: true });
  const serial = (c.epoch >>> 0).toString(16).padStart(8, '0');
  await run('mformat', ['-C', '-f', '2880', '-L', '16', '-N', serial, '-i', img, '::'], { env: c.env });
  await run('mmd', ['-i', img, '::/efi', '::/efi/boot'], { env: c.env });
  await run('mcopy', ['-Q', '-i', img, core, '::/efi/boot/bootx64.efi'], { env: c.env });
  return (await fsp.stat(img)).size;
}

/** xorriso `-path-list` line: graft point with `\` and `=` escaped. */
function graftLine(isoPath: string, file: string): string {
  const esc = (s: string) => s.replace(/[\\=]/g, (ch) => `\\${ch}`);
  return `/${esc(isoPath)}=${esc(file)}`;
}

async function writePathList(c: Ctx): Promise<string> {
  const list = path.join(c.scratch, 'path-list');
  const lines = [...c.grafts.keys()].sort().map((k) => graftLine(k, c.grafts.get(k)!));
  await fsp.writeFile(list, `${lines.join('\n')}\n`);
  return list;
}

/** With -r every file is world-readable and nothing is writable; no file of an ISO is executable. */
const RR_READ_ONLY = ['-find', '/', '-type', 'f', '-exec', 'chmod', 'a-wx', '--'];

/** Native xorriso commands after `--` (§7: label and reproducibility options). */
function nativeTail(c: Ctx): string[] {
  const t: string[] = [];
  if (c.o.volumeId) t.push('-volid', c.o.volumeId);
  if (c.o.volumeSetId) t.push('-volset_id', c.o.volumeSetId);
  t.push('-volume_date', 'all_file_dates', `=${c.epoch}`, '-volume_date', 'uuid', c.stamp);
  // No fsync of the scratch output: xorriso's default (-stdio_sync on) costs more time than writing the image, and
  // the object store makes the published copy durable.
  t.push('-stdio_sync', 'off');
  return t;
}

/** the part of grub-mkrescue's xorriso command line that it adds for an i386-pc El Torito boot */
function grubBiosArgs(c: Ctx): string[] {
  return [
    '-graft-points',
    `--modification-date=${c.stamp}`,
    '-b', 'boot/grub/i386-pc/eltorito.img', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
    '--grub2-boot-info', '--grub2-mbr', path.join(c.grubLib, 'i386-pc', 'boot_hybrid.img'),
  ];
}

function validate(o: IsoOptions): void {
  if (!['grub', 'hybrid', 'uefi'].includes(o.flavour)) throw new Error(`unknown ISO flavour ${o.flavour}`);
  if (o.arch !== 'amd64' && o.arch !== 'arm64') throw new Error(`unknown arch ${o.arch}`);
  if (o.arch === 'arm64' && o.flavour !== 'uefi') throw new Error(`arm64 ISOs are UEFI-only here (flavour ${o.flavour} needs x86 GRUB)`);
  if (o.flavour !== 'grub' && (!o.uki || !o.sdBoot)) throw new Error(`${o.flavour} ISO needs uki and sdBoot`);
  if (!/^[A-Za-z0-9._+-]+$/.test(o.version)) throw new Error(`bad version ${JSON.stringify(o.version)}`);
  if (o.secureBootKeys && o.flavour !== 'uefi') throw new Error(`Secure Boot keys belong on a UEFI-only ISO, not ${o.flavour}`);
  if (o.enrollKeys && !['off', 'manual', 'if-safe', 'force'].includes(o.enrollKeys)) throw new Error(`bad enrollKeys ${o.enrollKeys}`);
}

/** Build the ISO at `o.out` (via a temporary file next to it). */
export async function buildIso(o: IsoOptions): Promise<IsoBuildInfo> {
  const t0 = Date.now();
  validate(o);
  const epoch = o.sourceDateEpoch ?? SOURCE_DATE_EPOCH;
  if (o.flavour !== 'uefi') {
    await statSize(o.kernel, 'kernel');
    await statSize(o.initramfs, 'initramfs');
  }
  if (o.flavour !== 'grub') {
    await statSize(o.uki!, 'UKI');
    await statSize(o.sdBoot!, 'sd-boot');
  }
  // a fresh scratch directory per build, so concurrent builds may share workDir (paths do not reach the image)
  await mkdirs(o.workDir);
  const scratch = await fsp.mkdtemp(path.join(o.workDir, 'iso-build-'));
  const c: Ctx = {
    o,
    epoch,
    stamp: isoDateStamp(epoch),
    env: {
      // SOURCE_DATE_EPOCH is also the date mtools gives copied files, and the source of xorriso's GPT GUIDs
      ...imageToolEnv(epoch),
      GRUB_FAT_SERIAL_NUMBER: (epoch >>> 0).toString(16),
    },
    grubLib: o.grubLibDir ?? '/usr/lib/grub',
    scratch,
    grafts: new Map(),
  };

  const tmpOut = tempSibling(o.out);
  await mkdirs(path.dirname(path.resolve(o.out)));
  let args!: string[];
  let espBytes = 0;
  let written!: FileDigest & { streamed: boolean };
  try {
    await writeThenRename(tmpOut, o.out, async () => {
      // Modes are set in the image (xorriso -chmod), not on the host: grafted inputs stay untouched.
      let modes: string[];
      if (o.flavour === 'grub') {
        await populateGrubTree(c);
        await graftGrubPlatform(c, 'x86_64-efi');
        const efiImg = path.join(scratch, 'efi.img');
        espBytes = await buildGrubEfiImg(c, efiImg);
        c.grafts.set('efi.img', efiImg);
        args = [
          '-as', 'mkisofs',
          ...grubBiosArgs(c),
          '--efi-boot', 'efi.img', '-efi-boot-part', '--efi-boot-image',
          '--protective-msdos-label',
          '-o', tmpOut, '-r', '-iso-level', '3', '-path-list', await writePathList(c),
          '--sort-weight', '0', '/', '--sort-weight', '1', '/boot',
        ];
        modes = RR_READ_ONLY;
      } else if (o.flavour === 'hybrid') {
        // The GRUB core (grub-mkimage) and the ESP (mkfs.vfat, mtools) are independent: made side by side, the ISO
        // waits for the slower of them, not for both. (Graft points are written sorted, whatever order they come in.)
        const esp = path.join(scratch, 'efiboot.img');
        const [, espSize] = await Promise.all([populateGrubTree(c), populateUefiTree(c).then((files) => buildEsp(c, esp, files))]);
        espBytes = espSize;
        args = [
          '-as', 'mkisofs',
          ...grubBiosArgs(c),
          '--protective-msdos-label',
          '-o', tmpOut, '-r', '-iso-level', '3', '-path-list', await writePathList(c),
          '--sort-weight', '0', '/', '--sort-weight', '1', '/boot',
          '-eltorito-alt-boot', '-e', '--interval:appended_partition_2:all::',
          '-append_partition', '2', '0xef', esp, '-appended_part_as_gpt',
          '-partition_cyl_align', 'all', '-partition_offset', '16', '-iso_mbr_part_type', '0x83', '-no-emul-boot',
        ];
        modes = RR_READ_ONLY;
      } else {
        const files = await populateUefiTree(c);
        const esp = path.join(scratch, 'efiboot.img');
        espBytes = await buildEsp(c, esp, files);
        args = [
          '-as', 'mkisofs',
          '-graft-points',
          `--modification-date=${c.stamp}`,
          '-uid', '0', '-gid', '0',
          '-e', '--interval:appended_partition_2:all::', '-append_partition', '2', '0xef', esp,
          '-partition_cyl_align', 'all', '-partition_offset', '16', '-iso_mbr_part_type', '0x83', '-no-emul-boot',
          '-iso-level', '3',
          '-o', tmpOut, '-path-list', await writePathList(c),
        ];
        // without -r the modes are recorded as given: 0755 directories, 0644 files, a read-only random seed
        modes = ['-find', '/', '-type', 'd', '-exec', 'chmod', '0755', '--', '-find', '/', '-type', 'f', '-exec', 'chmod', '0644', '--', '-chmod', '0444', '/loader/random-seed', '--'];
      }
      args.push('--', ...modes, ...nativeTail(c));
      const writing = runXorrisoImage(args, tmpOut, { env: c.env });
      // hashed (and taken by whileWritten) while xorriso writes (see digestWhileWritten); a failed run's digests are
      // never used, and a failed run fails whileWritten's body
      const take = o.whileWritten;
      const hashing = digestWhileWritten(tmpOut, writing, { md5: o.md5 === true, ...(take ? { to: { headBytes: GPT_HEAD_BYTES, declaredSize: gptDeclaredSize, take } } : {}) });
      // both settle before the build does (a failed whileWritten has cleaned up by then); xorriso's failure first
      const [wrote, hashed] = await Promise.allSettled([writing, hashing]);
      if (wrote.status === 'rejected') throw wrote.reason;
      if (hashed.status === 'rejected') throw hashed.reason;
      written = hashed.value;
    });
  } finally {
    if (!o.keepWorkDir) await fsp.rm(scratch, { recursive: true, force: true });
  }
  return { flavour: o.flavour, scratchDir: scratch, xorrisoArgs: args.map((a) => (a === tmpOut ? o.out : a)), espBytes, sha256: written.sha256, ...(written.md5 ? { md5: written.md5 } : {}), size: written.size, streamed: written.streamed, ms: Date.now() - t0 };
}

/** true when every host tool the given flavour needs is on PATH */
export function isoToolsAvailable(flavour: IsoFlavour, grubLibDir = '/usr/lib/grub'): boolean {
  const tools = ['xorriso', 'mcopy', 'mmd', 'mattrib'];
  if (flavour !== 'uefi') tools.push('grub-mkimage');
  if (flavour === 'grub') tools.push('mformat');
  else tools.push('mkfs.vfat');
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  const onPath = (t: string) => dirs.some((d) => d && fs.existsSync(path.join(d, t)));
  if (!tools.every(onPath)) return false;
  if (flavour !== 'uefi' && !fs.existsSync(path.join(grubLibDir, 'i386-pc', 'boot_hybrid.img'))) return false;
  if (flavour === 'grub' && !fs.existsSync(path.join(grubLibDir, 'x86_64-efi'))) return false;
  return true;
}
