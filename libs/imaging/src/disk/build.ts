/**
 * Disk image builder (talos-formats.md §8.2, §9.1, §10.2): a sparse raw file of `plan.sizeBytes` with the GPT of the
 * plan; every file system is built as a separate file (no loop devices, no mounts, no root) and copied in at its
 * partition offset without writing runs of zero blocks, so the image stays sparse. All dates are fixed; two builds
 * of the same inputs are byte-identical.
 *
 * Staging follows the imager's mount-prefix layout: `<prefix>/boot/EFI` is the ESP root, the rest of
 * `<prefix>/boot` is the BOOT (XFS) root. The overlay install hook runs after the bootloader assets are staged and
 * before the file systems are made, so whatever it writes under `<prefix>/boot/EFI/` ends up at the root of the ESP.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { grubResetEntries, META_DISK_IMAGE_BOOTLOADER, sdBootForUefi, xfsMkfsConfig } from '@factory/talos';
import { run } from '@factory/process';
import { metaPartitionContents } from './adv';
import { buildFat } from './fat';
import { writeGpt } from './gpt';
import { diskGrubCfg, makeBiosCore, makeEfiGrub, patchBootImg, patchCoreImg, readBootImg } from './grub';
import { DiskArch, DiskPlan, parseDiskVersion, partitionOffsetBytes, partitionSizeBytes, PlannedPartition } from './plan';
import { buildXfs, XfsConfigResolution } from './xfs';
import { imageToolEnv, SOURCE_DATE_EPOCH } from '../reproducible';
import { tempSibling, writeThenRename } from '../publish';

export type DiskEnrollKeys = 'off' | 'manual' | 'if-safe' | 'force';

/** META key the imager adds to amd64 non-SecureBoot dual-boot images of Talos >= 1.10 (defined with the META limits in @factory/talos). */
export { META_DISK_IMAGE_BOOTLOADER };

export interface DiskContents {
  /** kernel and initramfs for the BOOT partition (grub and dual-boot layouts) */
  kernel: string;
  initramfs: string;
  /** kernel command line of the GRUB entries (GRUB-escaped here) */
  cmdline: string;
  version: string;
  arch: DiskArch;
  /** UKI (with the reset-maintenance profile, built by the caller) and systemd-boot: sd-boot / dual-boot ESP */
  uki?: string;
  sdBoot?: string;
  /** loader.conf `secure-boot-enroll` (SecureBoot only; undefined or 'off': no line and no key files) */
  enrollKeys?: DiskEnrollKeys;
  /** SecureBoot enrolment databases for loader/keys/auto (when enrollKeys is on) */
  secureBootKeys?: { pk: string; kek: string; db: string };
  /** schematic META values (0x11 = dual-boot is added here for amd64 dual-boot images of Talos >= 1.10) */
  meta?: Map<number, string>;
  /** overlay installer hook: writes into `<mountPrefix>/boot/EFI/...` (= ESP root) */
  overlayInstall?: (mountPrefix: string) => Promise<void>;
}

export interface BuildDiskImageOptions {
  plan: DiskPlan;
  contents: DiskContents;
  out: string;
  /** scratch directory; each build uses a fresh `disk-build-XXXXXX` subdirectory that is removed afterwards */
  workDir: string;
  /** fixes every date in the image; default SOURCE_DATE_EPOCH (reproducible.ts) */
  sourceDateEpoch?: number;
  /** GRUB platform directories (default /usr/lib/grub) */
  grubLibDir?: string;
  /** keep the scratch tree (debugging) */
  keepWorkDir?: boolean;
}

export interface DiskBuildInfo {
  ms: number;
  /** per-step wall times (ms) */
  steps: Record<string, number>;
  /** ESP files (relative paths), sorted */
  espFiles: string[];
  /** BOOT files (relative paths), sorted */
  bootFiles: string[];
  /** META values written (after adding the dual-boot key); undefined when META stayed empty */
  meta?: Map<number, string>;
  xfsConfig?: XfsConfigResolution;
  /** bytes actually written into the image (non-zero blocks) */
  writtenBytes: number;
  scratchDir: string;
}

/** loader.conf of a disk image ESP (§8.2): `secure-boot-enroll` only when SecureBoot enrolment is on. */
export function diskLoaderConf(enroll?: DiskEnrollKeys): string {
  let s = '# systemd-boot configuration\n\ntimeout 10\n';
  if (enroll && enroll !== 'off') s += `\nsecure-boot-enroll ${enroll}\n`;
  return s;
}

/** ESP path of systemd-boot / GRUB EFI (§8.2): EFI/boot/BOOTX64.efi or EFI/boot/BOOTAA64.efi. */
export function diskEfiBootPath(arch: DiskArch): string {
  return arch === 'arm64' ? 'EFI/boot/BOOTAA64.efi' : 'EFI/boot/BOOTX64.efi';
}

/** META values of the image: the schematic's plus, for amd64 dual-boot on Talos >= 1.10, 0x11 = dual-boot. */
export function diskMetaValues(plan: DiskPlan, meta?: Map<number, string>): Map<number, string> {
  const out = new Map(meta ?? []);
  if (plan.arch === 'amd64' && plan.bootloader === 'dual-boot' && sdBootForUefi(parseDiskVersion(plan.version))) {
    out.set(META_DISK_IMAGE_BOOTLOADER, 'dual-boot');
  }
  return out;
}

const ZERO_BLOCK = 4096;

function isZero(b: Buffer, zero: Buffer): boolean {
  return b.length === zero.length ? b.equals(zero) : b.equals(zero.subarray(0, b.length));
}

/**
 * Data regions `[start, end)` of a (sparse) file, from SEEK_DATA/SEEK_HOLE via `xfs_io -c 'seek -r -a 0'`;
 * undefined when that is not available (the caller then scans the whole file).
 */
export async function dataRegions(file: string): Promise<Array<[number, number]> | undefined> {
  let stdout: string;
  try {
    const r = await run('xfs_io', ['-r', '-c', 'seek -r -a 0', file], { env: imageToolEnv(SOURCE_DATE_EPOCH), maxOutputBytes: 256 * 1024 * 1024, onOverflow: 'fail' });
    stdout = r.stdout.toString('utf8');
  } catch {
    return undefined;
  }
  const size = (await fsp.stat(file)).size;
  const marks: Array<['DATA' | 'HOLE', number]> = [];
  for (const line of stdout.split('\n')) {
    const m = /^(DATA|HOLE)\s+(\d+)\s*$/.exec(line.trim());
    if (m) marks.push([m[1] as 'DATA' | 'HOLE', Number(m[2])]);
  }
  if (!marks.length) return size === 0 ? [] : undefined;
  const regions: Array<[number, number]> = [];
  for (let i = 0; i < marks.length; i++) {
    if (marks[i][0] !== 'DATA') continue;
    const end = i + 1 < marks.length ? marks[i + 1][1] : size;
    if (end > marks[i][1]) regions.push([marks[i][1], Math.min(end, size)]);
  }
  return regions;
}

/**
 * Copy `src` into the open image at byte `offset`, writing only the 4 KiB blocks that are not all zero (the image
 * file is sparse and zero-filled already). For a file, only its data regions are read (holes are skipped without
 * reading). Returns the number of bytes written.
 */
export async function copySparse(src: string | Buffer, out: fsp.FileHandle, offset: bigint, maxBytes: bigint): Promise<number> {
  const CHUNK = 1024 * 1024;
  const zeroChunk = Buffer.alloc(CHUNK);
  const zeroBlock = zeroChunk.subarray(0, ZERO_BLOCK);
  let written = 0;
  // `pos` is always a multiple of ZERO_BLOCK relative to the source start, so blocks stay aligned
  const handleChunk = async (buf: Buffer, pos: number) => {
    if (isZero(buf, zeroChunk)) return;
    let runStart = -1;
    for (let b = 0; ; b += ZERO_BLOCK) {
      const atEnd = b >= buf.length;
      const zero = atEnd || isZero(buf.subarray(b, Math.min(b + ZERO_BLOCK, buf.length)), zeroBlock);
      if (!zero && runStart < 0) runStart = b;
      if (zero && runStart >= 0) {
        const runEnd = Math.min(b, buf.length);
        await out.write(buf, runStart, runEnd - runStart, Number(offset) + pos + runStart);
        written += runEnd - runStart;
        runStart = -1;
      }
      if (atEnd) break;
    }
  };
  if (Buffer.isBuffer(src)) {
    if (BigInt(src.length) > maxBytes) throw new Error(`data (${src.length} bytes) does not fit the partition (${maxBytes} bytes)`);
    for (let pos = 0; pos < src.length; pos += CHUNK) await handleChunk(src.subarray(pos, Math.min(pos + CHUNK, src.length)), pos);
    return written;
  }
  const size = (await fsp.stat(src)).size;
  if (BigInt(size) > maxBytes) throw new Error(`${src} (${size} bytes) does not fit the partition (${maxBytes} bytes)`);
  const regions = (await dataRegions(src)) ?? [[0, size]];
  const fh = await fsp.open(src, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    for (const [start, end] of regions) {
      const from = Math.floor(start / ZERO_BLOCK) * ZERO_BLOCK;
      for (let pos = from; pos < end; pos += CHUNK) {
        const len = Math.min(CHUNK, end - pos);
        const { bytesRead } = await fh.read(buf, 0, len, pos);
        await handleChunk(buf.subarray(0, bytesRead), pos);
      }
    }
  } finally {
    await fh.close();
  }
  return written;
}

async function copyInto(src: string, dst: string, mode = 0o644): Promise<void> {
  await fsp.mkdir(path.dirname(dst), { recursive: true, mode: 0o755 });
  await fsp.copyFile(src, dst);
  await fsp.chmod(dst, mode);
}

async function writeInto(dst: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await fsp.mkdir(path.dirname(dst), { recursive: true, mode: 0o755 });
  await fsp.writeFile(dst, data);
  await fsp.chmod(dst, mode);
}

async function mustBeFile(p: string | undefined, what: string): Promise<string> {
  if (!p) throw new Error(`${what} is required for this disk layout`);
  let st: fs.Stats;
  try {
    st = await fsp.stat(p);
  } catch {
    throw new Error(`${what} ${p} does not exist`);
  }
  if (!st.isFile()) throw new Error(`${what} ${p} is not a regular file`);
  return p;
}

/** Fixed dates on the whole staging tree (mtools -m copies them into the FAT). */
async function touchTree(dir: string, epoch: number): Promise<void> {
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await touchTree(p, epoch);
    await fsp.lutimes(p, epoch, epoch);
  }
  await fsp.utimes(dir, epoch, epoch);
}

async function relFiles(dir: string, skipTop: string[] = []): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string, top: boolean) => {
    for (const e of await fsp.readdir(abs, { withFileTypes: true })) {
      if (top && skipTop.includes(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(abs, e.name), r, false);
      else out.push(r);
    }
  };
  if (fs.existsSync(dir)) await walk(dir, '', true);
  return out.sort();
}

function part(plan: DiskPlan, label: PlannedPartition['label']): PlannedPartition | undefined {
  return plan.partitions.find((p) => p.label === label);
}

/** Build the disk image at `o.out` (via a temporary file next to it). */
export async function buildDiskImage(o: BuildDiskImageOptions): Promise<DiskBuildInfo> {
  const t0 = Date.now();
  const steps: Record<string, number> = {};
  const step = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await f();
    } finally {
      steps[name] = (steps[name] ?? 0) + Date.now() - s;
    }
  };
  const { plan, contents: c } = o;
  const v = parseDiskVersion(plan.version);
  if (c.version !== plan.version) throw new Error(`contents are for ${c.version}, the plan for ${plan.version}`);
  if (c.arch !== plan.arch) throw new Error(`contents are for ${c.arch}, the plan for ${plan.arch}`);
  if (!/^[A-Za-z0-9._+-]+$/.test(c.version)) throw new Error(`bad version ${JSON.stringify(c.version)}`);
  const epoch = o.sourceDateEpoch ?? SOURCE_DATE_EPOCH;
  const grubLibDir = o.grubLibDir ?? '/usr/lib/grub';
  const hasBoot = !!part(plan, 'BOOT');
  const esp = part(plan, 'EFI');
  const uefiSdBoot = plan.bootloader === 'sd-boot' || plan.bootloader === 'dual-boot';
  if (hasBoot) {
    await mustBeFile(c.kernel, 'kernel');
    await mustBeFile(c.initramfs, 'initramfs');
  }
  if (uefiSdBoot) {
    await mustBeFile(c.uki, 'UKI');
    await mustBeFile(c.sdBoot, 'systemd-boot');
  }
  const enrollOn = !!c.enrollKeys && c.enrollKeys !== 'off';
  if (c.enrollKeys && !['off', 'manual', 'if-safe', 'force'].includes(c.enrollKeys)) throw new Error(`bad enrollKeys ${c.enrollKeys}`);

  await fsp.mkdir(o.workDir, { recursive: true });
  const scratch = await fsp.mkdtemp(path.join(o.workDir, 'disk-build-'));
  const prefix = path.join(scratch, 'prefix');
  const bootRoot = path.join(prefix, 'boot');
  const espRoot = path.join(bootRoot, 'EFI');
  await fsp.mkdir(espRoot, { recursive: true, mode: 0o755 });
  const env = imageToolEnv(epoch);
  const grubOpts = { grubLibDir, env };
  const tmpOut = tempSibling(o.out);
  const info: DiskBuildInfo = { ms: 0, steps, espFiles: [], bootFiles: [], writtenBytes: 0, scratchDir: scratch };

  try {
    await writeThenRename(tmpOut, o.out, async () => {
      // ---------------------------------------------------------------- staging
      await step('stage', async () => {
        if (uefiSdBoot) {
          await writeInto(path.join(espRoot, 'loader', 'loader.conf'), diskLoaderConf(c.enrollKeys));
          if (enrollOn && c.secureBootKeys) {
            await copyInto(await mustBeFile(c.secureBootKeys.pk, 'PK.auth'), path.join(espRoot, 'loader', 'keys', 'auto', 'PK.auth'));
            await copyInto(await mustBeFile(c.secureBootKeys.kek, 'KEK.auth'), path.join(espRoot, 'loader', 'keys', 'auto', 'KEK.auth'));
            await copyInto(await mustBeFile(c.secureBootKeys.db, 'db.auth'), path.join(espRoot, 'loader', 'keys', 'auto', 'db.auth'));
          }
          await copyInto(c.uki!, path.join(espRoot, 'EFI', 'Linux', `Talos-${c.version}.efi`));
          await copyInto(c.sdBoot!, path.join(espRoot, ...diskEfiBootPath(c.arch).split('/')));
        } else if (esp) {
          // grub layout: GRUB EFI image as the removable-media boot file
          await makeEfiGrub(c.arch, path.join(espRoot, ...diskEfiBootPath(c.arch).split('/')), grubOpts);
        }
        if (hasBoot) {
          await copyInto(c.kernel, path.join(bootRoot, 'A', 'vmlinuz'));
          await copyInto(c.initramfs, path.join(bootRoot, 'A', 'initramfs.xz'));
          await fsp.mkdir(path.join(bootRoot, 'grub'), { recursive: true, mode: 0o700 });
          await fsp.chmod(path.join(bootRoot, 'grub'), 0o700);
          await writeInto(path.join(bootRoot, 'grub', 'grub.cfg'), diskGrubCfg({ version: c.version, cmdline: c.cmdline, resetEntry: plan.bootloader === 'dual-boot' || grubResetEntries(v) }), 0o600);
        }
      });
      if (c.overlayInstall) await step('overlay-install', () => c.overlayInstall!(prefix));
      await touchTree(prefix, epoch);
      info.espFiles = await relFiles(espRoot);
      info.bootFiles = await relFiles(bootRoot, ['EFI']);

      // ---------------------------------------------------------------- image
      await fsp.mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
      await fsp.rm(tmpOut, { force: true });
      await step('gpt', () => writeGpt(tmpOut, plan));
      const out = await fsp.open(tmpOut, 'r+');
      try {
        for (const p of plan.partitions) {
          const off = partitionOffsetBytes(p, plan.sectorSize);
          const size = partitionSizeBytes(p, plan.sectorSize);
          switch (p.filesystem) {
            case 'vfat': {
              const img = path.join(scratch, 'efi.img');
              await step('vfat', () => buildFat({ file: img, sizeBytes: size, label: p.label, sectorSize: plan.sectorSize, sourceDir: espRoot, env }));
              info.writtenBytes += await step('copy', () => copySparse(img, out, off, size));
              await fsp.rm(img, { force: true });
              break;
            }
            case 'xfs': {
              const img = path.join(scratch, 'boot.img');
              const r = await step('xfs', () =>
                buildXfs({ file: img, sizeBytes: size, label: p.label, uuid: p.guid, sectorSize: plan.sectorSize, sourceDir: bootRoot, exclude: ['EFI'], configFile: xfsMkfsConfig(v), epoch, workDir: scratch, env }),
              );
              info.xfsConfig = r.config;
              info.writtenBytes += await step('copy', () => copySparse(img, out, off, size));
              await fsp.rm(img, { force: true });
              break;
            }
            case 'bios': {
              if (plan.arch !== 'amd64') break; // zero-filled: no BIOS GRUB on arm64
              await step('grub-bios', async () => {
                const core = patchCoreImg(await makeBiosCore(path.join(scratch, 'core.img'), grubOpts), p.firstLba);
                info.writtenBytes += await copySparse(core, out, off, size);
                const boot = patchBootImg(await readBootImg(grubOpts), p.firstLba);
                await out.write(boot, 0, 446, 0);
                info.writtenBytes += 446;
              });
              break;
            }
            case 'meta': {
              const values = diskMetaValues(plan, c.meta);
              if (values.size) {
                info.meta = values;
                info.writtenBytes += await copySparse(metaPartitionContents(values, Number(size)), out, off, size);
              }
              break;
            }
            case 'none':
              break;
            default:
              throw new Error(`unknown filesystem ${String(p.filesystem)}`);
          }
        }
      } finally {
        await out.close();
      }
    });
  } finally {
    if (!o.keepWorkDir) await fsp.rm(scratch, { recursive: true, force: true });
  }
  info.ms = Date.now() - t0;
  return info;
}
