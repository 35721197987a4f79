/**
 * Disk images (libs/imaging/src/disk), talos-formats.md §8–§10, without booting (the boots are in disk-boot.test.ts):
 * golden GUIDs and disk-size table, partition geometry, ADV encode/decode, grub.cfg/loader.conf texts, and built
 * images read back with sgdisk / blkid / mtools / grub-fstest / xfs_repair / the own GPT reader:
 *   v1.7.7 amd64 grub (empty STATE/EPHEMERAL), v1.11.3 amd64 dual-boot, v1.11.3 arm64 sd-boot,
 *   v1.11.3 amd64 dual-boot with 4096-byte sectors, an sd-boot image with an overlay offset + install hook + SB keys,
 *   and bit-for-bit reproducibility.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diskBootloader, parseTolerant } from '@factory/talos';
import {
  ADV_LENGTH,
  buildDiskImage,
  BuildDiskImageOptions,
  dataRegions,
  decodeAdv,
  diskGrubCfg,
  DiskBuildInfo,
  DiskContents,
  diskLoaderConf,
  DiskPlan,
  encodeAdv,
  gptPartitionGuid,
  metaPartitionContents,
  patchBootImg,
  patchCoreImg,
  planDisk,
  PlannedPartition,
  readGpt,
} from '../src/disk';
import { buildUki, parsePe, talosOsRelease, talosUkiProfiles } from '../src/uki';
import { DEMO_DIR, demoHasArm64, extractDemoImager, readRange } from '../../../test/support/demo-imager';
import { testIf } from '../../../test/support/skip';

const DEMO = DEMO_DIR;
const MiB = 1024 * 1024;
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' };
const SBIN_ENV = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha256File = (p: string) => sha256(fs.readFileSync(p));

/** SHA-256 of a whole (sparse, multi-GiB) file: data regions are read, holes are hashed as zeros without reading. */
async function sha256Sparse(file: string): Promise<string> {
  const total = fs.statSync(file).size;
  const regions = (await dataRegions(file)) ?? [[0, total]];
  const h = createHash('sha256');
  const CH = 16 * MiB;
  const zero = Buffer.alloc(CH);
  const buf = Buffer.alloc(CH);
  const fd = fs.openSync(file, 'r');
  try {
    let pos = 0;
    const zeros = (n: number) => {
      for (; n > 0; n -= CH) h.update(zero.subarray(0, Math.min(n, CH)));
    };
    for (const [s, e] of [...regions, [total, total] as [number, number]]) {
      zeros(s - pos);
      for (pos = s; pos < e; ) {
        const n = fs.readSync(fd, buf, 0, Math.min(CH, e - pos), pos);
        h.update(buf.subarray(0, n));
        pos += n;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
const log = (msg: string) => process.stderr.write(`[disk] ${msg}\n`);

interface Inputs {
  kernel: string;
  initramfs: string;
  stub: string;
  sdBoot: string;
  uki: string;
}

let tmp: string;
const inputs: Record<string, Inputs> = {};
const haveArm64 = demoHasArm64(DEMO);
const testArm64 = testIf(haveArm64, `the demo releases in ${DEMO} have no arm64 inputs (releases.json arm64Missing)`);

async function extract(version: string, arch: 'amd64' | 'arm64'): Promise<Inputs> {
  const dir = path.join(tmp, 'in', `${version}-${arch}`);
  const r = { ...extractDemoImager(version, arch, dir, DEMO), uki: path.join(dir, 'uki.efi') };
  await buildUki({
    stub: r.stub, kernel: r.kernel, initrd: r.initramfs, cmdline: 'talos.platform=metal console=ttyS0', osRelease: talosOsRelease(version), out: r.uki,
    profiles: talosUkiProfiles('talos.platform=metal console=ttyS0', 'image'),
  });
  return r;
}

beforeAll(async () => {
  if (!fs.existsSync(path.join(DEMO, 'releases.json'))) throw new Error(`demo releases missing in ${DEMO} (run scripts/setup.sh / tools/demo-releases build)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-test-'));
  inputs['v1.7.7'] = await extract('v1.7.7', 'amd64');
  inputs['v1.11.3'] = await extract('v1.11.3', 'amd64');
  if (haveArm64) inputs['v1.11.3-arm64'] = await extract('v1.11.3', 'arm64');
}, 120000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------- inspection helpers

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = SBIN_ENV): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * MiB });
}

interface SgdiskRow {
  n: number;
  start: number;
  end: number;
  code: string;
  name: string;
}

function sgdiskPrint(img: string): { text: string; rows: SgdiskRow[] } {
  const text = sh('sgdisk', ['-p', img]);
  const rows: SgdiskRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+ \S+\s+([0-9A-F]{4})\s+(\S+)\s*$/.exec(line);
    if (m) rows.push({ n: Number(m[1]), start: Number(m[2]), end: Number(m[3]), code: m[4], name: m[5] });
  }
  return { text, rows };
}

function sgdiskInfo(img: string, n: number): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of sh('sgdisk', ['-i', String(n), img]).split('\n')) {
    const m = /^([A-Za-z ]+):\s+(.*)$/.exec(line);
    if (m) r[m[1].trim()] = m[2].trim();
  }
  return r;
}

/** blkid -p -O <offset>: key/values, or {} when nothing is detected (exit code 2) */
function blkidAt(img: string, offset: bigint): Record<string, string> {
  const p = spawnSync('blkid', ['-p', '-O', String(offset), '-o', 'export', img], { encoding: 'utf8', env: SBIN_ENV });
  if (p.status === 2) return {};
  if (p.status !== 0) throw new Error(`blkid failed: ${p.stderr}`);
  const r: Record<string, string> = {};
  for (const line of p.stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) r[line.slice(0, i)] = line.slice(i + 1);
  }
  return r;
}

const off = (plan: DiskPlan, p: PlannedPartition) => p.firstLba * BigInt(plan.sectorSize);
const size = (plan: DiskPlan, p: PlannedPartition) => (p.lastLba - p.firstLba + 1n) * BigInt(plan.sectorSize);
const partOf = (plan: DiskPlan, label: string) => {
  const p = plan.partitions.find((x) => x.label === label);
  if (!p) throw new Error(`no ${label} partition`);
  return p;
};

/** mtools view of the FAT file system at a byte offset of the image */
function fatLs(img: string, offset: bigint): string[] {
  return sh('mdir', ['-/', '-b', '-i', `${img}@@${offset}`, '::/'], MTOOLS_ENV)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.replace(/^::/, '').replace(/\/$/, ''))
    .sort();
}
function fatRead(img: string, offset: bigint, p: string): Buffer {
  return execFileSync('mtype', ['-i', `${img}@@${offset}`, `::${p}`], { env: MTOOLS_ENV, maxBuffer: 256 * MiB });
}

/** GRUB's own file system drivers (grub-fstest): proves GRUB can read BOOT, and gives its files without mounting */
function grubCat(img: string, file: string): Buffer {
  return execFileSync('grub-fstest', [img, 'cat', file], { maxBuffer: 256 * MiB });
}
function grubLs(img: string, dir: string): string[] {
  return sh('grub-fstest', [img, 'ls', dir]).trim().split(/\s+/).filter(Boolean).sort();
}

/** extract a partition into its own sparse file (dd conv=sparse) */
function extractPartition(img: string, plan: DiskPlan, p: PlannedPartition, out: string): void {
  execFileSync('dd', [`if=${img}`, `of=${out}`, 'bs=1M', `skip=${off(plan, p) / BigInt(MiB)}`, `count=${size(plan, p) / BigInt(MiB)}`, 'conv=sparse', 'status=none']);
}

async function build(name: string, plan: DiskPlan, contents: DiskContents, extra: Partial<BuildDiskImageOptions> = {}): Promise<{ out: string; info: DiskBuildInfo }> {
  const out = path.join(tmp, `${name}.raw`);
  const info = await buildDiskImage({ plan, contents, out, workDir: path.join(tmp, `wd-${name}`), ...extra });
  const st = fs.statSync(out);
  log(`build ${name}: ${info.ms} ms (${Object.entries(info.steps).map(([k, v]) => `${k} ${v}`).join(', ')}), ${(st.size / MiB).toFixed(0)} MiB apparent, ${((st.blocks * 512) / MiB).toFixed(1)} MiB allocated`);
  return { out, info };
}

function expectGptSane(img: string): void {
  expect(sh('sgdisk', ['-v', img])).toMatch(/No problems found/);
}

function expectSgdiskMatchesPlan(img: string, plan: DiskPlan, codes: Record<string, string>): void {
  const { text, rows } = sgdiskPrint(img);
  expect(text).toMatch(/Sector size \(logical\): 512 bytes/);
  expect(text).toContain(`Disk identifier (GUID): ${gptPartitionGuid('talos-image-disk').toUpperCase()}`);
  expect(text).toMatch(/Partition table holds up to 128 entries/);
  expect(rows).toEqual(plan.partitions.map((p, i) => ({ n: i + 1, start: Number(p.firstLba), end: Number(p.lastLba), code: codes[p.label], name: p.label })));
  const types: Record<string, string> = {
    EFI: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B (EFI system partition)',
    BIOS: '21686148-6449-6E6F-744E-656564454649 (BIOS boot partition)',
  };
  plan.partitions.forEach((p, i) => {
    const info = sgdiskInfo(img, i + 1);
    expect(info['Partition GUID code']).toBe(types[p.label] ?? '0FC63DAF-8483-4772-8E79-3D69D8477DE4 (Linux filesystem)');
    expect(info['Partition unique GUID']).toBe(gptPartitionGuid(p.label).toUpperCase());
    expect(info['Partition name']).toBe(`'${p.label}'`);
    expect(info['Attribute flags']).toBe(p.label === 'BIOS' ? '0000000000000004' : '0000000000000000');
    expect(info['First sector']).toMatch(new RegExp(`^${p.firstLba} `));
    expect(info['Last sector']).toMatch(new RegExp(`^${p.lastLba} `));
  });
}

// ---------------------------------------------------------------- GUIDs and sizes

describe('plan', () => {
  test('golden partition GUIDs (UUIDv8 of SHA-256(16 zero bytes || label), §8.2)', () => {
    expect(
      Object.fromEntries(['talos-image-disk', 'EFI', 'BIOS', 'BOOT', 'META', 'STATE', 'EPHEMERAL'].map((l) => [l, gptPartitionGuid(l)])),
    ).toEqual({
      'talos-image-disk': 'd92d45b3-cde9-8760-be9f-a2a71fac8d11',
      EFI: 'bca5174b-0118-8a6a-af0b-2c6e1585acae',
      BIOS: 'a2a02ff5-d88d-8e6e-9c95-26b9b6c80bc3',
      BOOT: '24c73076-4092-85dd-9d98-686a2dbf6d81',
      META: 'cf04f137-101e-8ec6-9627-fa3f51cdabb8',
      STATE: 'f7f88648-df7c-8acb-b4d2-6f124659d923',
      EPHEMERAL: 'c5e02400-0e5e-80bc-99ec-53b3e45ad6c4',
    });
  });

  test('golden disk-size table (§8.2 totals; bootloader from the quirk, secure boot -> sd-boot)', () => {
    const col = (version: string, arch: 'amd64' | 'arm64', secureboot = false) => (base: number) => {
      const bootloader = diskBootloader({ version: parseTolerant(version)!, arch, secureboot });
      const plan = planDisk({ version, arch, bootloader, baseSizeMiB: base, sectorSize: 512 });
      return { bootloader, MiB: Number(plan.sizeBytes / BigInt(MiB)) };
    };
    const columns = {
      '<=1.9 (grub)': col('v1.9.5', 'amd64'),
      '1.10 amd64 (dual)': col('v1.10.0', 'amd64'),
      '1.10 arm64 (sd)': col('v1.10.0', 'arm64'),
      '>=1.11 amd64 (dual)': col('v1.11.3', 'amd64'),
      '>=1.11 arm64 (sd)': col('v1.11.3', 'arm64'),
      '>=1.11 amd64 SB (sd)': col('v1.11.3', 'amd64', true),
      '1.10 amd64 SB (sd)': col('v1.10.7', 'amd64', true),
      '1.12 arm64 (sd)': col('v1.12.2', 'arm64'),
    };
    const table = Object.fromEntries(
      [1246, 8192, 10240].map((base) => [base, Object.fromEntries(Object.entries(columns).map(([k, f]) => [k, `${f(base).bootloader} ${f(base).MiB}`]))]),
    );
    expect(table).toEqual({
      1246: { '<=1.9 (grub)': 'grub 1246', '1.10 amd64 (dual)': 'dual-boot 2247', '1.10 arm64 (sd)': 'sd-boot 1246', '>=1.11 amd64 (dual)': 'dual-boot 4247', '>=1.11 arm64 (sd)': 'sd-boot 2246', '>=1.11 amd64 SB (sd)': 'sd-boot 2246', '1.10 amd64 SB (sd)': 'sd-boot 1246', '1.12 arm64 (sd)': 'sd-boot 2246' },
      8192: { '<=1.9 (grub)': 'grub 8192', '1.10 amd64 (dual)': 'dual-boot 9193', '1.10 arm64 (sd)': 'sd-boot 8192', '>=1.11 amd64 (dual)': 'dual-boot 11193', '>=1.11 arm64 (sd)': 'sd-boot 9192', '>=1.11 amd64 SB (sd)': 'sd-boot 9192', '1.10 amd64 SB (sd)': 'sd-boot 8192', '1.12 arm64 (sd)': 'sd-boot 9192' },
      10240: { '<=1.9 (grub)': 'grub 10240', '1.10 amd64 (dual)': 'dual-boot 11241', '1.10 arm64 (sd)': 'sd-boot 10240', '>=1.11 amd64 (dual)': 'dual-boot 13241', '>=1.11 arm64 (sd)': 'sd-boot 11240', '>=1.11 amd64 SB (sd)': 'sd-boot 11240', '1.10 amd64 SB (sd)': 'sd-boot 10240', '1.12 arm64 (sd)': 'sd-boot 11240' },
    });
    expect(planDisk({ version: 'v1.7.7', arch: 'amd64', bootloader: 'grub', baseSizeMiB: 1246, sectorSize: 512 }).sizeBytes).toBe(1306525696n);
    expect(planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 512 }).sizeBytes).toBe(4453302272n);
  });

  const lbas = (p: DiskPlan) => p.partitions.map((x) => [x.label, Number(x.firstLba), Number(x.lastLba), x.filesystem, Number(x.attributes)]);

  test('geometry: v1.7.7 grub (STATE + EPHEMERAL = rest, 1 MiB aligned), v1.11.3 dual-boot, arm64 sd-boot', () => {
    const grub = planDisk({ version: 'v1.7.7', arch: 'amd64', bootloader: 'grub', baseSizeMiB: 1246, sectorSize: 512 });
    expect([grub.partitionEntriesLba, grub.firstUsableLba, grub.lastUsableLba]).toEqual([2n, 2048n, 1246n * 2048n - 34n]);
    expect(lbas(grub)).toEqual([
      ['EFI', 2048, 206847, 'vfat', 0],
      ['BIOS', 206848, 208895, 'bios', 4],
      ['BOOT', 208896, 2256895, 'xfs', 0],
      ['META', 2256896, 2258943, 'meta', 0],
      ['STATE', 2258944, 2463743, 'none', 0],
      ['EPHEMERAL', 2463744, 2549759, 'none', 0], // 42 MiB: up to the last 1 MiB boundary below the backup table
    ]);
    // >= 1.8: no data partitions
    expect(planDisk({ version: 'v1.8.0', arch: 'amd64', bootloader: 'grub', baseSizeMiB: 1246, sectorSize: 512 }).partitions.map((p) => p.label)).toEqual(['EFI', 'BIOS', 'BOOT', 'META']);
    const dual = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 512 });
    expect(lbas(dual)).toEqual([
      ['EFI', 2048, 4304895, 'vfat', 0],
      ['BIOS', 4304896, 4306943, 'bios', 4],
      ['BOOT', 4306944, 8402943, 'xfs', 0],
      ['META', 8402944, 8404991, 'meta', 0],
    ]);
    expect(dual.diskGuid).toBe('d92d45b3-cde9-8760-be9f-a2a71fac8d11');
    expect(dual.partitions.map((p) => p.typeGuid)).toEqual(['c12a7328-f81f-11d2-ba4b-00a0c93ec93b', '21686148-6449-6e6f-744e-656564454649', '0fc63daf-8483-4772-8e79-3d69d8477de4', '0fc63daf-8483-4772-8e79-3d69d8477de4']);
    const sd = planDisk({ version: 'v1.11.3', arch: 'arm64', bootloader: 'sd-boot', baseSizeMiB: 1246, sectorSize: 512 });
    expect(lbas(sd)).toEqual([['EFI', 2048, 4304895, 'vfat', 0], ['META', 4304896, 4306943, 'meta', 0]]);
    // 1.10: BOOT 1000 MiB, UKI ESP 1101 MiB
    const d110 = planDisk({ version: 'v1.10.0', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 512 });
    expect(d110.partitions.map((p) => Number((p.lastLba - p.firstLba + 1n) / 2048n))).toEqual([1101, 1, 1000, 1]);
  });

  test('geometry: 4096-byte sectors and the overlay partition offset', () => {
    const k4 = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 4096 });
    expect(k4.sizeBytes).toBe(4453302272n);
    expect([k4.partitionEntriesLba, k4.firstUsableLba, k4.lastUsableLba]).toEqual([2n, 256n, 1087231n - 4n - 1n]);
    expect(lbas(k4)).toEqual([
      ['EFI', 256, 538111, 'vfat', 0],
      ['BIOS', 538112, 538367, 'bios', 4],
      ['BOOT', 538368, 1050367, 'xfs', 0],
      ['META', 1050368, 1050623, 'meta', 0],
    ]);
    const ov = planDisk({ version: 'v1.11.3', arch: 'arm64', bootloader: 'sd-boot', baseSizeMiB: 1246, sectorSize: 512, firstPartitionOffsetLBA: 2048 });
    expect([ov.partitionEntriesLba, ov.firstUsableLba]).toEqual([2050n, 4096n]);
    expect(lbas(ov)).toEqual([['EFI', 4096, 4306943, 'vfat', 0], ['META', 4306944, 4308991, 'meta', 0]]);
    const small = planDisk({ version: 'v1.11.3', arch: 'arm64', bootloader: 'sd-boot', baseSizeMiB: 1246, sectorSize: 512, firstPartitionOffsetLBA: 100 });
    expect(small.firstUsableLba).toBe(2048n); // 102 + 32 entries, rounded up to 1 MiB
  });

  test('validation', () => {
    const base = { version: 'v1.11.3', arch: 'amd64' as const, bootloader: 'dual-boot' as const, baseSizeMiB: 1246, sectorSize: 512 as const };
    expect(() => planDisk({ ...base, version: 'nope' })).toThrow(/bad Talos version/);
    expect(() => planDisk({ ...base, arch: 'arm64' })).toThrow(/dual-boot needs amd64/);
    expect(() => planDisk({ ...base, sectorSize: 1024 as 512 })).toThrow(/sector size/);
    expect(() => planDisk({ ...base, baseSizeMiB: -1000 })).toThrow();
    expect(() => planDisk({ ...base, version: 'v1.7.7', bootloader: 'grub', baseSizeMiB: 1100 })).toThrow(/too small for partition BOOT/);
    expect(() => planDisk({ ...base, version: 'v1.7.7', bootloader: 'grub', baseSizeMiB: 1204 })).toThrow(/too small for partition EPHEMERAL/);
    expect(planDisk({ ...base, version: 'v1.7.7', bootloader: 'grub', baseSizeMiB: 1205 }).partitions[5].lastLba - planDisk({ ...base, version: 'v1.7.7', bootloader: 'grub', baseSizeMiB: 1205 }).partitions[5].firstLba + 1n).toBe(2048n);
  });
});

// ---------------------------------------------------------------- ADV

describe('ADV (§9.1)', () => {
  test('layout: magics, big-endian records sorted by tag, SHA-256 over the block with the checksum zeroed', () => {
    const b = encodeAdv(new Map([[0x0c, 'hello'], [0x0a, '{}']]));
    expect(b.length).toBe(262144);
    expect(b.subarray(0, 4).toString('hex')).toBe('5a4b3c2d');
    expect(b.subarray(4, 4 + 10 + 13).toString('hex')).toBe('0000000a000000027b7d' + '0000000c0000000568656c6c6f');
    expect(b.subarray(27, ADV_LENGTH - 36).every((x) => x === 0)).toBe(true);
    expect(b.subarray(ADV_LENGTH - 4).toString('hex')).toBe('a5b4c3d2');
    const zeroed = Buffer.from(b);
    zeroed.fill(0, ADV_LENGTH - 36, ADV_LENGTH - 4);
    expect(b.subarray(ADV_LENGTH - 36, ADV_LENGTH - 4).toString('hex')).toBe(sha256(zeroed));
  });

  test('round trip (UTF-8, 100 KiB value, all tag values), corruption detection, second-copy fallback, prefix decode', () => {
    const values = new Map<number, string>([[0x0a, 'network:\n  hostname: ü-node\n'], [0x11, 'dual-boot'], [0xff, 'x'.repeat(100 * 1024)], [1, '']]);
    const b = encodeAdv(values);
    expect(decodeAdv(b)).toEqual(values);
    const bad = Buffer.from(b);
    bad[100] ^= 1;
    expect(() => decodeAdv(bad)).toThrow(/checksum mismatch/);
    const badMagic = Buffer.from(b);
    badMagic[0] = 0;
    expect(() => decodeAdv(badMagic)).toThrow(/unexpected magic/);
    const badTail = Buffer.from(b);
    badTail[ADV_LENGTH - 1] = 0;
    expect(() => decodeAdv(badTail)).toThrow(/trailing magic/);
    expect(decodeAdv(Buffer.concat([bad, b]))).toEqual(values); // like Talos: first copy broken -> second copy
    expect(() => decodeAdv(b.subarray(0, 4096))).toThrow(/at least/);
    const small = encodeAdv(new Map([[0x0a, 'network'], [0x11, 'dual-boot']]));
    expect(decodeAdv(small.subarray(0, 4096), { partial: true })).toEqual(new Map([[0x0a, 'network'], [0x11, 'dual-boot']]));
    expect(() => decodeAdv(b.subarray(0, 8192), { partial: true })).toThrow(/extends past the 8188-byte prefix/);
    expect(decodeAdv(encodeAdv(new Map()))).toEqual(new Map());
    expect(() => encodeAdv(new Map([[0, 'x']]))).toThrow(/out of range/);
    expect(() => encodeAdv(new Map([[256, 'x']]))).toThrow(/out of range/);
    expect(() => encodeAdv(new Map([[5, 'x'.repeat(ADV_LENGTH)]]))).toThrow(/overflow/);
  });

  test('META partition contents: ADV at 0 and 256 KiB, the rest (incl. the legacy syslinux ADV area) zero', () => {
    const m = metaPartitionContents(new Map([[0x0c, 'hello']]), MiB);
    expect(m.length).toBe(MiB);
    expect(m.subarray(0, ADV_LENGTH).equals(m.subarray(ADV_LENGTH, 2 * ADV_LENGTH))).toBe(true);
    expect(m.subarray(2 * ADV_LENGTH).every((x) => x === 0)).toBe(true);
    expect(decodeAdv(m)).toEqual(new Map([[0x0c, 'hello']]));
  });
});

// ---------------------------------------------------------------- texts and GRUB patches

describe('texts and GRUB patching', () => {
  test('grub.cfg is the §8.2 template, GRUB-escaped; reset entry optional', () => {
    const cmd = 'talos.platform=metal console=ttyS0 a="b c" x=$y;z';
    const esc = 'talos.platform=metal console=ttyS0 a=\\"b c\\" x=\\$y\\;z';
    expect(diskGrubCfg({ version: 'v1.11.5', cmdline: cmd, resetEntry: true })).toBe(
      'set default="A - Talos v1.11.5"\n\nset timeout=3\n\ninsmod all_video\n\nterminal_input console\nterminal_output console\n\n' +
        `menuentry "A - Talos v1.11.5" {\n  set gfxmode=auto\n  set gfxpayload=text\n  linux /A/vmlinuz ${esc}\n  initrd /A/initramfs.xz\n}\n` +
        'menuentry "Reset Talos installation and return to maintenance mode" {\n  set gfxmode=auto\n  set gfxpayload=text\n' +
        `  linux /A/vmlinuz ${esc} talos.experimental.wipe=system:EPHEMERAL,STATE\n  initrd /A/initramfs.xz\n}\n`,
    );
    expect(diskGrubCfg({ version: 'v1.3.0', cmdline: 'a', resetEntry: false })).not.toContain('Reset');
  });

  test('loader.conf: no secure-boot-enroll line unless SecureBoot enrolment is on', () => {
    expect(diskLoaderConf()).toBe('# systemd-boot configuration\n\ntimeout 10\n');
    expect(diskLoaderConf('off')).toBe('# systemd-boot configuration\n\ntimeout 10\n');
    expect(diskLoaderConf('if-safe')).toBe('# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll if-safe\n');
  });

  test('boot.img / core.img blocklist patches', () => {
    const boot = patchBootImg(fs.readFileSync('/usr/lib/grub/i386-pc/boot.img'), 4304896n);
    expect(boot.readBigUInt64LE(0x5c)).toBe(4304896n);
    expect([boot[0x66], boot[0x67]]).toEqual([0x90, 0x90]);
    const core = patchCoreImg(Buffer.alloc(1024), 4304896n);
    expect(core.readBigUInt64LE(0x1f4)).toBe(4304897n);
  });
});

// ---------------------------------------------------------------- built images

const CMDLINE = 'talos.platform=metal console=tty0 console=ttyS0 panic=-1';
const CODES_GRUB = { EFI: 'EF00', BIOS: 'EF02', BOOT: '8300', META: '8300', STATE: '8300', EPHEMERAL: '8300' };

function contents(key: string, version: string, arch: 'amd64' | 'arm64', extra: Partial<DiskContents> = {}): DiskContents {
  const i = inputs[key];
  return { kernel: i.kernel, initramfs: i.initramfs, cmdline: CMDLINE, version, arch, uki: i.uki, sdBoot: i.sdBoot, ...extra };
}

function checkGrubBios(img: string, plan: DiskPlan): void {
  const bios = partOf(plan, 'BIOS');
  const mbr = readRange(img, 0n, 512);
  const bootImg = fs.readFileSync('/usr/lib/grub/i386-pc/boot.img');
  expect(mbr.subarray(0, 446).equals(patchBootImg(bootImg, bios.firstLba).subarray(0, 446))).toBe(true);
  expect(mbr.readBigUInt64LE(0x5c)).toBe(bios.firstLba);
  const core = readRange(img, off(plan, bios), 512);
  expect(core.readBigUInt64LE(0x1f4)).toBe(bios.firstLba + 1n);
  // blocklist length (sectors after the first) as grub-mkimage set it; the whole core.img fits the partition
  const sectors = core.readUInt16LE(0x1fc);
  expect(sectors).toBeGreaterThan(100);
  expect((sectors + 1) * 512).toBeLessThanOrEqual(Number(size(plan, bios)));
  expect(readRange(img, off(plan, bios) + BigInt(sectors + 1) * 512n, 512).every((x) => x === 0)).toBe(true);
}

async function checkBootXfs(img: string, plan: DiskPlan, version: string, key: string, resetEntry = true): Promise<void> {
  const boot = partOf(plan, 'BOOT');
  const fsInfo = blkidAt(img, off(plan, boot));
  expect(fsInfo).toMatchObject({ TYPE: 'xfs', LABEL: 'BOOT', UUID: gptPartitionGuid('BOOT') });
  expect(grubLs(img, '(loop0,gpt3)/')).toEqual(['A/', 'grub/']);
  expect(grubLs(img, '(loop0,gpt3)/A')).toEqual(['initramfs.xz', 'vmlinuz']);
  expect(grubCat(img, '(loop0,gpt3)/grub/grub.cfg').toString()).toBe(diskGrubCfg({ version, cmdline: CMDLINE, resetEntry }));
  expect(sha256(grubCat(img, '(loop0,gpt3)/A/vmlinuz'))).toBe(sha256File(inputs[key].kernel));
  expect(sha256(grubCat(img, '(loop0,gpt3)/A/initramfs.xz'))).toBe(sha256File(inputs[key].initramfs));
  // the XFS is consistent (inode CRCs after the timestamp rewrite), owned by root, dated at the epoch
  const part = path.join(tmp, `boot-${path.basename(img)}.xfs`);
  extractPartition(img, plan, boot, part);
  const repair = spawnSync('xfs_repair', ['-n', '-f', part], { encoding: 'utf8', env: SBIN_ENV });
  expect([repair.status, repair.stderr.slice(-500)]).toEqual([0, expect.anything()]);
  const db = sh('xfs_db', ['-r', '-c', 'path /grub/grub.cfg', '-c', 'print core.mode core.uid core.gid core.mtime.sec core.atime.sec v3.crtime.sec v3.crc', part]);
  expect(db).toMatch(/core\.mode = 0100600/);
  expect(db).toMatch(/core\.uid = 0/);
  expect(db).toMatch(/core\.mtime\.sec = Sat Jun {2}1 21:34:52 2019/);
  expect(db).toMatch(/core\.atime\.sec = Sat Jun {2}1 21:34:52 2019/);
  expect(db).toMatch(/v3\.crtime\.sec = Sat Jun {2}1 21:34:52 2019/);
  expect(db).toMatch(/v3\.crc = 0x[0-9a-f]+ \(correct\)/);
  fs.rmSync(part);
}

describe('v1.7.7 amd64 grub image (metal, < 1.8: empty STATE/EPHEMERAL)', () => {
  let plan: DiskPlan;
  let img: string;
  let info: DiskBuildInfo;
  const META = new Map([[0x0a, 'addresses: []\n'], [0x0c, 'hello']]);

  beforeAll(async () => {
    plan = planDisk({ version: 'v1.7.7', arch: 'amd64', bootloader: 'grub', baseSizeMiB: 1246, sectorSize: 512 });
    ({ out: img, info } = await build('grub-v1.7.7', plan, contents('v1.7.7', 'v1.7.7', 'amd64', { uki: undefined, sdBoot: undefined, meta: META })));
  }, 120000);

  test('sgdisk: sizes, labels, type and partition GUIDs, BIOS attribute; own reader: PMBR, CRCs, backup', async () => {
    expect(fs.statSync(img).size).toBe(1246 * MiB);
    expectGptSane(img);
    expectSgdiskMatchesPlan(img, plan, CODES_GRUB);
    const g = await readGpt(img);
    expect(g.sectorSize).toBe(512);
    expect(g.pmbr).toEqual({ status: 0, type: 0xee, startLba: 1, sizeLba: 1246 * 2048 - 1, signatureOk: true });
    expect([g.primary.headerCrcOk, g.primary.entriesCrcOk, g.backup.headerCrcOk, g.backup.entriesCrcOk, g.entriesMatch]).toEqual([true, true, true, true, true]);
    expect([g.primary.myLba, g.primary.alternateLba, g.primary.entriesLba, g.backup.myLba, g.backup.entriesLba]).toEqual([1n, 1246n * 2048n - 1n, 2n, 1246n * 2048n - 1n, 1246n * 2048n - 33n]);
    expect(g.partitions.map((p) => [p.number, p.name, p.guid, p.attributes])).toEqual(plan.partitions.map((p, i) => [i + 1, p.label, p.guid, p.attributes]));
  });

  test('ESP: FAT32 "EFI" with only the GRUB x86_64-efi image at EFI/boot/BOOTX64.efi', () => {
    const esp = partOf(plan, 'EFI');
    expect(blkidAt(img, off(plan, esp))).toMatchObject({ TYPE: 'vfat', LABEL: 'EFI', VERSION: 'FAT32' });
    expect(fatLs(img, off(plan, esp))).toEqual(['/EFI', '/EFI/boot', '/EFI/boot/BOOTX64.efi']);
    const grubEfi = fatRead(img, off(plan, esp), '/EFI/boot/BOOTX64.efi');
    expect(parsePe(grubEfi).machine).toBe(0x8664);
    expect(info.espFiles).toEqual(['EFI/boot/BOOTX64.efi']);
  });

  test('BIOS: patched boot.img in the MBR, patched core.img in the BIOS partition', () => checkGrubBios(img, plan));

  test('BOOT: XFS (GRUB-readable) with A/vmlinuz, A/initramfs.xz, grub/grub.cfg', async () => {
    await checkBootXfs(img, plan, 'v1.7.7', 'v1.7.7');
    expect(info.xfsConfig!.wanted).toBe('/usr/share/xfsprogs/mkfs/lts_6.1.conf');
    log(`xfs config v1.7.7: ${info.xfsConfig!.note}`);
  }, 60000);

  test('META: the ADV (twice) with the schematic values, read back from the image; STATE/EPHEMERAL hold no data', async () => {
    const meta = partOf(plan, 'META');
    const raw = readRange(img, off(plan, meta), MiB);
    expect(decodeAdv(raw)).toEqual(META); // grub layout: no 0x11
    expect(decodeAdv(raw.subarray(ADV_LENGTH))).toEqual(META);
    expect(raw.subarray(MiB - 1024).every((x) => x === 0)).toBe(true);
    expect(blkidAt(img, off(plan, meta))).toEqual({});
    for (const label of ['STATE', 'EPHEMERAL', 'BIOS']) {
      if (label !== 'BIOS') expect(blkidAt(img, off(plan, partOf(plan, label)))).toEqual({});
    }
    // no allocated data at all in STATE / EPHEMERAL (sparse holes)
    const regions = (await dataRegions(img))!;
    for (const label of ['STATE', 'EPHEMERAL']) {
      const p = partOf(plan, label);
      const [s, e] = [Number(off(plan, p)), Number(off(plan, p) + size(plan, p))];
      expect(regions.filter(([a, b]) => a < e && b > s)).toEqual([]);
    }
  });
});

describe('v1.11.3 amd64 dual-boot image (metal)', () => {
  let plan: DiskPlan;
  let img: string;
  let info: DiskBuildInfo;
  let c: DiskContents;
  const META = new Map([[0x0c, 'hello']]);

  beforeAll(async () => {
    plan = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 512 });
    c = contents('v1.11.3', 'v1.11.3', 'amd64', { meta: META });
    ({ out: img, info } = await build('dual-v1.11.3', plan, c));
  }, 120000);

  test('sgdisk: EFI 2101 MiB, BIOS 1 MiB (legacy BIOS bootable), BOOT 2000 MiB, META 1 MiB; 4247 MiB total', async () => {
    expect(fs.statSync(img).size).toBe(4453302272);
    expectGptSane(img);
    expectSgdiskMatchesPlan(img, plan, CODES_GRUB);
    expect(plan.partitions.map((p) => Number(size(plan, p) / BigInt(MiB)))).toEqual([2101, 1, 2000, 1]);
    const g = await readGpt(img);
    expect(g.pmbr.status).toBe(0);
  });

  test('ESP: systemd-boot + UKI + loader.conf (no secure-boot-enroll), nothing else', () => {
    const esp = partOf(plan, 'EFI');
    expect(blkidAt(img, off(plan, esp))).toMatchObject({ TYPE: 'vfat', LABEL: 'EFI', UUID: '1234-ABCD' });
    expect(fatLs(img, off(plan, esp))).toEqual(['/EFI', '/EFI/Linux', '/EFI/Linux/Talos-v1.11.3.efi', '/EFI/boot', '/EFI/boot/BOOTX64.efi', '/loader', '/loader/loader.conf']);
    expect(fatRead(img, off(plan, esp), '/loader/loader.conf').toString()).toBe('# systemd-boot configuration\n\ntimeout 10\n');
    expect(sha256(fatRead(img, off(plan, esp), '/EFI/Linux/Talos-v1.11.3.efi'))).toBe(sha256File(c.uki!));
    expect(sha256(fatRead(img, off(plan, esp), '/EFI/boot/BOOTX64.efi'))).toBe(sha256File(c.sdBoot!));
    const mdir = sh('mdir', ['-i', `${img}@@${off(plan, esp)}`, '::/EFI/Linux'], MTOOLS_ENV);
    expect(mdir).toMatch(/2019-06-01\s+21:34/);
  });

  test('BIOS + BOOT: GRUB core/boot.img patched; XFS with kernel, initramfs, grub.cfg (always with the reset entry)', async () => {
    checkGrubBios(img, plan);
    await checkBootXfs(img, plan, 'v1.11.3', 'v1.11.3');
    log(`xfs config v1.11.3: ${info.xfsConfig!.note}`);
  }, 60000);

  test('META: schematic values + 0x11 = dual-boot', () => {
    const raw = readRange(img, off(plan, partOf(plan, 'META')), MiB);
    expect(decodeAdv(raw)).toEqual(new Map([[0x0c, 'hello'], [0x11, 'dual-boot']]));
    expect(info.meta).toEqual(new Map([[0x0c, 'hello'], [0x11, 'dual-boot']]));
  });

  test('sparse: only the written blocks are allocated', () => {
    const st = fs.statSync(img);
    expect(st.blocks * 512).toBeLessThan(64 * MiB);
    expect(info.writtenBytes).toBeLessThan(64 * MiB);
  });

  test('bit-reproducible: rebuild from touched inputs in another work dir gives the same sha256', async () => {
    const now = new Date();
    fs.utimesSync(c.kernel, now, now);
    fs.utimesSync(c.uki!, now, now);
    await new Promise((r) => setTimeout(r, 1100)); // a different wall-clock second for mkfs.xfs
    const { out } = await build('dual-v1.11.3-again', plan, c);
    const [a, b] = [await sha256Sparse(out), await sha256Sparse(img)];
    log(`dual-boot v1.11.3 sha256 ${a}`);
    expect(a).toBe(b);
    fs.rmSync(out);
  }, 120000);
});

describe('v1.7.7 grub image is reproducible too (GRUB EFI + i386-pc images, XFS from lts_6.1)', () => {
  test('two builds, same sha256', async () => {
    const plan = planDisk({ version: 'v1.7.7', arch: 'amd64', bootloader: 'grub', baseSizeMiB: 1246, sectorSize: 512 });
    const c = contents('v1.7.7', 'v1.7.7', 'amd64', { meta: new Map([[0x0c, 'x']]) });
    const a = await build('grub-repro-a', plan, c);
    await new Promise((r) => setTimeout(r, 1100));
    const b = await build('grub-repro-b', plan, c, { workDir: path.join(tmp, 'elsewhere', 'deeper') });
    expect(await sha256Sparse(b.out)).toBe(await sha256Sparse(a.out));
    fs.rmSync(a.out);
    fs.rmSync(b.out);
  }, 120000);
});

describe('v1.11.3 arm64 sd-boot image', () => {
  testArm64('EFI (2101 MiB) + META only; BOOTAA64.efi; no MBR boot code; META empty without values (no 0x11 on arm64)', async () => {
    const plan = planDisk({ version: 'v1.11.3', arch: 'arm64', bootloader: 'sd-boot', baseSizeMiB: 1246, sectorSize: 512 });
    const c = contents('v1.11.3-arm64', 'v1.11.3', 'arm64');
    const { out: img, info } = await build('sd-arm64-v1.11.3', plan, c);
    expect(fs.statSync(img).size).toBe(2246 * MiB);
    expectGptSane(img);
    expectSgdiskMatchesPlan(img, plan, { EFI: 'EF00', META: '8300' });
    const esp = partOf(plan, 'EFI');
    expect(fatLs(img, off(plan, esp))).toEqual(['/EFI', '/EFI/Linux', '/EFI/Linux/Talos-v1.11.3.efi', '/EFI/boot', '/EFI/boot/BOOTAA64.efi', '/loader', '/loader/loader.conf']);
    expect(parsePe(fatRead(img, off(plan, esp), '/EFI/boot/BOOTAA64.efi')).machine).toBe(0xaa64);
    expect(sha256(fatRead(img, off(plan, esp), '/EFI/Linux/Talos-v1.11.3.efi'))).toBe(sha256File(c.uki!));
    expect(readRange(img, 0n, 446).every((x) => x === 0)).toBe(true);
    expect(readRange(img, off(plan, partOf(plan, 'META')), MiB).every((x) => x === 0)).toBe(true);
    expect(info.meta).toBeUndefined();
    fs.rmSync(img);
  }, 120000);
});

describe('4096-byte sectors (v1.11.3 amd64 dual-boot)', () => {
  test('GPT at 4 KiB LBAs (own reader), FAT and XFS with 4 KiB sectors, META at its 4K-LBA offset', async () => {
    const plan = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 4096 });
    const c = contents('v1.11.3', 'v1.11.3', 'amd64', { meta: new Map([[0x0c, '4k']]) });
    const { out: img } = await build('dual-4k-v1.11.3', plan, c);
    const g = await readGpt(img);
    expect(g.sectorSize).toBe(4096);
    expect(g.sizeBytes).toBe(4453302272n);
    expect(g.pmbr).toEqual({ status: 0, type: 0xee, startLba: 1, sizeLba: 1087231, signatureOk: true });
    expect([g.primary.myLba, g.primary.alternateLba, g.primary.entriesLba, g.primary.firstUsableLba, g.primary.lastUsableLba]).toEqual([1n, 1087231n, 2n, 256n, 1087226n]);
    expect([g.backup.myLba, g.backup.entriesLba]).toEqual([1087231n, 1087227n]);
    expect([g.primary.headerCrcOk, g.primary.entriesCrcOk, g.backup.headerCrcOk, g.backup.entriesCrcOk, g.entriesMatch]).toEqual([true, true, true, true, true]);
    expect(g.partitions.map((p) => [p.name, Number(p.firstLba), Number(p.lastLba), p.guid, p.typeGuid, Number(p.attributes)])).toEqual([
      ['EFI', 256, 538111, gptPartitionGuid('EFI'), 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b', 0],
      ['BIOS', 538112, 538367, gptPartitionGuid('BIOS'), '21686148-6449-6e6f-744e-656564454649', 4],
      ['BOOT', 538368, 1050367, gptPartitionGuid('BOOT'), '0fc63daf-8483-4772-8e79-3d69d8477de4', 0],
      ['META', 1050368, 1050623, gptPartitionGuid('META'), '0fc63daf-8483-4772-8e79-3d69d8477de4', 0],
    ]);
    // nothing GPT-like where a 512-byte-sector reader would look
    expect(readRange(img, 512n, 8).toString('latin1')).not.toBe('EFI PART');
    const esp = partOf(plan, 'EFI');
    expect(off(plan, esp)).toBe(1048576n);
    expect(readRange(img, off(plan, esp) + 11n, 2).readUInt16LE(0)).toBe(4096); // FAT bytes per sector
    expect(blkidAt(img, off(plan, esp))).toMatchObject({ TYPE: 'vfat', LABEL: 'EFI', BLOCK_SIZE: '4096' });
    expect(fatLs(img, off(plan, esp))).toContain('/EFI/Linux/Talos-v1.11.3.efi');
    const boot = partOf(plan, 'BOOT');
    expect(blkidAt(img, off(plan, boot))).toMatchObject({ TYPE: 'xfs', LABEL: 'BOOT', UUID: gptPartitionGuid('BOOT') });
    expect(readRange(img, off(plan, boot) + 102n, 2).readUInt16BE(0)).toBe(4096); // XFS sb_sectsize
    expect(decodeAdv(readRange(img, off(plan, partOf(plan, 'META')), MiB))).toEqual(new Map([[0x0c, '4k'], [0x11, 'dual-boot']]));
    // BIOS blocklists carry the plan's (4 KiB) LBAs
    expect(readRange(img, 0n, 512).readBigUInt64LE(0x5c)).toBe(538112n);
    fs.rmSync(img);
  }, 120000);
});

describe('overlay offset + install hook, SecureBoot-style ESP (sd-boot amd64 v1.11.3)', () => {
  test('entries at LBA 2050, first partition at 4096; hook files at the ESP root; enrol keys + loader.conf line', async () => {
    const plan = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'sd-boot', baseSizeMiB: 1246, sectorSize: 512, firstPartitionOffsetLBA: 2048 });
    const keys = Object.fromEntries(['PK', 'KEK', 'db'].map((k) => {
      const p = path.join(tmp, `${k}.auth`);
      fs.writeFileSync(p, `fixture ${k}`);
      return [k, p];
    }));
    let seen: string[] = [];
    const c = contents('v1.11.3', 'v1.11.3', 'amd64', {
      enrollKeys: 'if-safe',
      secureBootKeys: { pk: keys.PK, kek: keys.KEK, db: keys.db },
      overlayInstall: async (prefix) => {
        // like an overlay installer: the bootloader assets are already staged under <prefix>/boot/EFI
        seen = fs.readdirSync(path.join(prefix, 'boot', 'EFI')).sort();
        fs.writeFileSync(path.join(prefix, 'boot', 'EFI', 'fixture-blob.bin'), 'blob');
        fs.mkdirSync(path.join(prefix, 'boot', 'EFI', 'overlays'));
        fs.writeFileSync(path.join(prefix, 'boot', 'EFI', 'overlays', 'a.dtbo'), 'dtbo');
      },
    });
    const { out: img, info } = await build('overlay-sd-v1.11.3', plan, c);
    expect(seen).toEqual(['EFI', 'loader']);
    expectGptSane(img);
    const { text, rows } = sgdiskPrint(img);
    expect(text).toMatch(/Main partition table begins at sector 2050 and ends at sector 2081/);
    expect(text).toMatch(/First usable sector is 4096,/);
    expect(rows.map((r) => [r.name, r.start, r.end])).toEqual([['EFI', 4096, 4306943], ['META', 4306944, 4308991]]);
    // LBAs 2..2049 stay free for SoC boot blobs
    expect(readRange(img, 1024n, 2048 * 512).every((x) => x === 0)).toBe(true);
    const esp = partOf(plan, 'EFI');
    expect(fatLs(img, off(plan, esp))).toEqual([
      '/EFI', '/EFI/Linux', '/EFI/Linux/Talos-v1.11.3.efi', '/EFI/boot', '/EFI/boot/BOOTX64.efi', '/fixture-blob.bin',
      '/loader', '/loader/keys', '/loader/keys/auto', '/loader/keys/auto/KEK.auth', '/loader/keys/auto/PK.auth', '/loader/keys/auto/db.auth', '/loader/loader.conf',
      '/overlays', '/overlays/a.dtbo',
    ]);
    expect(fatRead(img, off(plan, esp), '/fixture-blob.bin').toString()).toBe('blob');
    expect(fatRead(img, off(plan, esp), '/loader/keys/auto/db.auth').toString()).toBe('fixture db');
    expect(fatRead(img, off(plan, esp), '/loader/loader.conf').toString()).toBe('# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll if-safe\n');
    expect(info.meta).toBeUndefined(); // sd-boot: no 0x11
    fs.rmSync(img);
  }, 120000);

  test('input validation', async () => {
    const plan = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 512 });
    const out = path.join(tmp, 'never.raw');
    await expect(buildDiskImage({ plan, out, workDir: tmp, contents: contents('v1.11.3', 'v1.11.3', 'amd64', { uki: undefined }) })).rejects.toThrow(/UKI is required/);
    await expect(buildDiskImage({ plan, out, workDir: tmp, contents: contents('v1.11.3', 'v1.11.2', 'amd64') })).rejects.toThrow(/contents are for v1.11.2/);
    await expect(buildDiskImage({ plan, out, workDir: tmp, contents: contents('v1.11.3', 'v1.11.3', 'amd64', { kernel: '/nonexistent' }) })).rejects.toThrow(/does not exist/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('never.raw'))).toEqual([]);
  });
});
