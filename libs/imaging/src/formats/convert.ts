/**
 * Disk format conversion (talos-formats §8.1): raw, qcow2, vhd (qemu "vpc"), ova.
 *
 * Reproducibility: `qemu-img convert` to qcow2 is deterministic by itself (no timestamps or ids in the header,
 * zero detection by content, in-order writes — `-W` is never used). Two fields are randomised by qemu-img and are
 * rewritten after the conversion, derived from the image content (`sparseContentDigest`):
 *   - vpc: footer timestamp (SOURCE_DATE_EPOCH) and unique id (UUIDv8 from the digest); footer checksum recomputed;
 *     both copies of the footer for dynamic images;
 *   - vmdk: descriptor `CID=` (content id; 8 hex digits from the digest; the descriptor is NUL-padded text in a
 *     fixed region, so nothing else moves).
 * The vmdk extent file name is embedded in its descriptor, so it is always converted as `disk.vmdk`.
 *
 * OVA uses `qemu-img convert -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic` on every host: open-vmdk
 * (`vmdk-convert`, what upstream uses) is not packaged for Debian bookworm, and picking a tool by availability
 * would make the OVA bytes depend on the host.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '@factory/process';
import { writeOva } from './ova';
import { MiB, sparseContentDigest, sparseCopy, withOutputFile } from './scan';
import { SOURCE_DATE_EPOCH } from '../reproducible';

export type DiskFormat = 'raw' | 'qcow2' | 'vhd' | 'ova';

export interface ConvertOptions {
  /** Raw disk image (its size must be diskSizeMiB MiB). */
  raw: string;
  format: DiskFormat;
  /** qemu-img `-o` options, e.g. 'cluster_size=8k' or 'subformat=fixed,force_size' (empty: none). */
  formatOptions: string;
  diskSizeMiB: number;
  out: string;
  /** Scratch directory (OVA intermediates); a private subdirectory is created and removed. */
  workDir: string;
}

/** qemu-img creation options accepted per target format (others — backing/data files, encryption — are refused). */
const ALLOWED_OPTIONS: Record<'qcow2' | 'vpc', Record<string, 'bool' | 'value'>> = {
  qcow2: {
    cluster_size: 'value',
    compat: 'value',
    compression_type: 'value',
    extended_l2: 'bool',
    lazy_refcounts: 'bool',
    preallocation: 'value',
    refcount_bits: 'value',
  },
  vpc: { subformat: 'value', force_size: 'bool' },
};

/** Validate a `-o` string and spell bare booleans out (`force_size` -> `force_size=on`, same meaning in qemu-img). */
export function normalizeFormatOptions(fmt: 'qcow2' | 'vpc', options: string): string {
  const allowed = ALLOWED_OPTIONS[fmt];
  const out: string[] = [];
  for (const part of options.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    const kind = allowed[key];
    if (!kind) throw new Error(`convertDisk: unsupported ${fmt} option "${key}"`);
    if (value !== undefined && !/^[A-Za-z0-9._-]+$/.test(value)) throw new Error(`convertDisk: bad value for ${key}: "${value}"`);
    if (value === undefined && kind !== 'bool') throw new Error(`convertDisk: option ${key} needs a value`);
    out.push(`${key}=${value ?? 'on'}`);
  }
  return out.join(',');
}

/** 16-byte RFC 9562 UUIDv8 derived from a digest and a purpose label. */
function uuidV8(digest: Buffer, label: string): Buffer {
  const u = createHash('sha256').update(label).update(digest).digest().subarray(0, 16);
  u[6] = (u[6] & 0x0f) | 0x80;
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}

const VHD_EPOCH = 946684800; // 2000-01-01T00:00:00Z

function fixVhdFooter(f: Buffer, uuid: Buffer): void {
  f.writeUInt32BE(SOURCE_DATE_EPOCH - VHD_EPOCH, 24);
  uuid.copy(f, 68);
  f.writeUInt32BE(0, 64);
  let sum = 0;
  for (const b of f) sum += b;
  f.writeUInt32BE(~sum >>> 0, 64);
}

/** Make a qemu-img vpc output reproducible (fixed timestamp, content-derived unique id). */
export async function patchVhd(file: string, contentDigest: Buffer): Promise<void> {
  const uuid = uuidV8(contentDigest, 'talos-image-factory vhd unique id\0');
  const fh = await fs.promises.open(file, 'r+');
  try {
    const size = (await fh.stat()).size;
    const positions = [size - 512];
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    if (head.toString('latin1') === 'conectix' && size > 512) positions.push(0);
    for (const pos of positions) {
      const f = Buffer.alloc(512);
      await fh.read(f, 0, 512, pos);
      if (f.toString('latin1', 0, 8) !== 'conectix') throw new Error(`vhd: no footer at ${pos} in ${file}`);
      fixVhdFooter(f, uuid);
      await fh.write(f, 0, 512, pos);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Make a qemu-img vmdk reproducible (content-derived CID in the embedded descriptor). */
export async function patchVmdk(file: string, contentDigest: Buffer): Promise<void> {
  let cid = createHash('sha256').update('talos-image-factory vmdk cid\0').update(contentDigest).digest('hex').slice(0, 8);
  if (cid === 'ffffffff') cid = 'fffffffe';
  const fh = await fs.promises.open(file, 'r+');
  try {
    const hdr = Buffer.alloc(512);
    await fh.read(hdr, 0, 512, 0);
    if (hdr.toString('latin1', 0, 4) !== 'KDMV') throw new Error(`vmdk: ${file} is not a hosted sparse extent`);
    const descOff = Number(hdr.readBigUInt64LE(28)) * 512;
    const descLen = Number(hdr.readBigUInt64LE(36)) * 512;
    if (descOff === 0 || descLen === 0 || descLen > 1 << 20) throw new Error(`vmdk: ${file} has no embedded descriptor`);
    const desc = Buffer.alloc(descLen);
    await fh.read(desc, 0, descLen, descOff);
    // the descriptor is NUL-padded text in a fixed region; qemu prints the random CID without zero padding
    const end = desc.indexOf(0);
    const text = desc.toString('latin1', 0, end < 0 ? descLen : end);
    if (!/^CID=[0-9a-f]{1,8}$/m.test(text)) throw new Error(`vmdk: no CID in the descriptor of ${file}`);
    const fixed = Buffer.from(text.replace(/^CID=[0-9a-f]{1,8}$/m, `CID=${cid}`), 'latin1');
    if (fixed.length > descLen) throw new Error(`vmdk: descriptor of ${file} would overflow`);
    const out = Buffer.alloc(descLen);
    fixed.copy(out);
    await fh.write(out, 0, descLen, descOff);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function convertDisk(o: ConvertOptions): Promise<void> {
  const st = await fs.promises.stat(o.raw);
  if (!st.isFile()) throw new Error(`convertDisk: ${o.raw} is not a regular file`);
  if (!Number.isSafeInteger(o.diskSizeMiB) || o.diskSizeMiB <= 0) throw new Error(`convertDisk: invalid diskSizeMiB ${o.diskSizeMiB}`);
  if (st.size !== o.diskSizeMiB * MiB) {
    throw new Error(`convertDisk: ${o.raw} is ${st.size} bytes, expected ${o.diskSizeMiB} MiB (${o.diskSizeMiB * MiB})`);
  }
  const same = path.resolve(o.raw) === path.resolve(o.out);
  if (same && o.format !== 'raw') throw new Error('convertDisk: input and output are the same file');
  await fs.promises.mkdir(path.dirname(o.out), { recursive: true });
  const tmp = `${o.out}.partial`;
  switch (o.format) {
    case 'raw':
      if (!same) await sparseCopy(o.raw, o.out);
      return;
    case 'qcow2':
    case 'vhd':
      try {
        if (o.format === 'qcow2') {
          await qemuConvert(o.raw, 'qcow2', normalizeFormatOptions('qcow2', o.formatOptions), tmp);
        } else {
          const opts = normalizeFormatOptions('vpc', o.formatOptions);
          const [digest] = await Promise.all([sparseContentDigest(o.raw), qemuConvert(o.raw, 'vpc', opts, tmp)]);
          await patchVhd(tmp, digest);
        }
        await fs.promises.rename(tmp, o.out);
      } catch (e) {
        await fs.promises.rm(tmp, { force: true });
        throw e;
      }
      return;
    case 'ova': {
      await fs.promises.mkdir(o.workDir, { recursive: true });
      const dir = await fs.promises.mkdtemp(path.join(o.workDir, 'ova-'));
      try {
        const vmdk = path.join(dir, 'disk.vmdk');
        const [digest] = await Promise.all([
          sparseContentDigest(o.raw),
          qemuConvert(o.raw, 'vmdk', 'subformat=streamOptimized,adapter_type=lsilogic', vmdk),
        ]);
        await patchVmdk(vmdk, digest);
        await withOutputFile(o.out, (w) => writeOva(vmdk, o.diskSizeMiB, w));
      } finally {
        await fs.promises.rm(dir, { recursive: true, force: true });
      }
      return;
    }
    default:
      throw new Error(`convertDisk: unknown disk format "${String(o.format)}"`);
  }
}

async function qemuConvert(raw: string, fmt: string, opts: string, dst: string): Promise<void> {
  await fs.promises.rm(dst, { force: true });
  const args = ['convert', '-q', '-f', 'raw', '-O', fmt];
  if (opts) args.push('-o', opts);
  // absolute paths: qemu-img would parse a "proto:..." relative name as a protocol
  args.push(path.resolve(raw), path.resolve(dst));
  try {
    await run('qemu-img', args);
  } catch (e) {
    await fs.promises.rm(dst, { force: true });
    throw e;
  }
}
