/**
 * Disk formats and output compression (libs/imaging/src/formats), talos-formats.md §8.1:
 *   - convertDisk: qcow2 (cluster 8k), vhd (fixed+force_size for azure, dynamic default), ova (ovf, mf, vmdk in that
 *     order, digests), raw — checked with `qemu-img info/compare`;
 *   - compressOutput: .xz (byte-identical to `xz -0 -T2`), .gz, .zst, .tar.gz (tar byte-identical to GNU tar
 *     --sparse --hole-detection=raw), raw — each decompresses to the exact input;
 *   - determinism of every output, edge cases (odd sizes, all-zero, empty, > 8 GiB tar fields), and a bounded-memory
 *     run over a 2 GiB sparse image (timings are printed).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compressOutput, convertDisk, normalizeFormatOptions, readableExtents, renderOvf, ZSTD_LEVEL, zstdZeroFrame } from '../src/formats';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const log = (msg: string) => {
  // eslint-disable-next-line no-console
  console.log(msg);
};
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

function sha256File(f: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(f, 'r');
  const buf = Buffer.alloc(4 * MiB);
  try {
    for (let pos = 0; ; ) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (!n) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** sha256 of a command's stdout, streamed (no big buffers in the test process). */
function sha256Of(cmd: string, args: string[]): string {
  return execFileSync('sh', ['-c', `"$0" "$@" | sha256sum`, cmd, ...args], { encoding: 'utf8' }).split(' ')[0];
}

function qemuInfo(file: string, fmt?: string): Record<string, unknown> {
  const args = ['info', '--output=json', ...(fmt ? ['-f', fmt] : []), file];
  return JSON.parse(execFileSync('qemu-img', args, { encoding: 'utf8' })) as Record<string, unknown>;
}

function qemuCompare(raw: string, img: string, fmt: string): void {
  execFileSync('qemu-img', ['compare', '-q', '-f', 'raw', '-F', fmt, raw, img]);
}

/** Sparse test image: `size` bytes with data written at the given offsets. */
function makeImage(file: string, size: number, parts: Array<[number, Buffer]>): void {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const fd = fs.openSync(file, 'r+');
  for (const [off, data] of parts) fs.writeSync(fd, data, 0, data.length, off);
  fs.closeSync(fd);
}

/** Deterministic pseudo-random bytes (incompressible). */
function noise(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let o = 0; o < n; o += 32) {
    block.copy(out, o, 0, Math.min(32, n - o));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

function text(n: number): Buffer {
  const line = 'kernel: [    0.000000] Linux version 6.12.0-talos (@buildkitsandbox) #1 SMP\n';
  let s = '';
  for (let i = 0; s.length < n; i++) s += `${i} ${line}`;
  return Buffer.from(s.slice(0, n));
}

interface TarEntryInfo {
  name: string;
  size: number;
  mode: string;
  uid: string;
  gid: string;
  mtime: string;
  type: string;
  magic: string;
  data: Buffer;
}

function readUstar(buf: Buffer): TarEntryInfo[] {
  const out: TarEntryInfo[] = [];
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (s: number, l: number) => h.toString('latin1', s, s + l).replace(/\0.*$/s, '');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    expect(parseInt(str(148, 8).trim(), 8)).toBe(sum);
    const size = parseInt(str(124, 12), 8);
    out.push({
      name: str(0, 100),
      size,
      mode: str(100, 8),
      uid: str(108, 8),
      gid: str(116, 8),
      mtime: str(136, 12),
      type: str(156, 1),
      magic: h.toString('latin1', 257, 265),
      data: buf.subarray(off + 512, off + 512 + size),
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

let tmp: string;
let img: string; // 64 MiB, mixed data + holes
let imgSha: string;
const IMG_MIB = 64;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'formats-test-'));
  img = path.join(tmp, 'disk.raw');
  const gpt = Buffer.alloc(1024);
  gpt.write('EFI PART', 512);
  makeImage(img, IMG_MIB * MiB, [
    [0, gpt],
    [1 * MiB, noise(3 * MiB, 'a')],
    [4 * MiB + 4096, Buffer.from('lonely sector')], // data inside a chunk surrounded by zero sectors
    [4 * MiB + 12288, Buffer.alloc(1024, 0xaa)],
    [20 * MiB, text(2 * MiB + 333)],
    [40 * MiB + 512 * 7, noise(5000, 'b')],
    [IMG_MIB * MiB - 16384, Buffer.from('backup GPT')],
  ]);
  imgSha = sha256File(img);
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('compressOutput', () => {
  const run = async (file: string, outFormat: '.xz' | '.gz' | '.zst' | '.tar.gz' | 'raw', name: string, innerName?: string) => {
    const out = path.join(tmp, name);
    await compressOutput({ file, outFormat, out, innerName });
    return out;
  };

  test('.xz decompresses to the input and equals `xz -0 -T2` of the whole file', async () => {
    const a = await run(img, '.xz', 'a.raw.xz');
    const b = await run(img, '.xz', 'b.raw.xz');
    expect(sha256File(a)).toBe(sha256File(b));
    expect(sha256Of('xz', ['-dc', a])).toBe(imgSha);
    const ref = path.join(tmp, 'ref.xz');
    execFileSync('sh', ['-c', 'xz -0 -T2 -c "$0" > "$1"', img, ref]);
    expect(sha256File(a)).toBe(sha256File(ref));
    execFileSync('sh', ['-c', 'xz -0 -T3 -c "$0" > "$1"', img, ref]);
    expect(sha256File(a)).toBe(sha256File(ref)); // independent of the thread count
  }, 120_000);

  test('.gz: one member, no name/mtime, decompresses to the input', async () => {
    const a = await run(img, '.gz', 'a.raw.gz');
    const b = await run(img, '.gz', 'b.raw.gz');
    expect(sha256File(a)).toBe(sha256File(b));
    const head = Buffer.alloc(10);
    const fd = fs.openSync(a, 'r');
    fs.readSync(fd, head, 0, 10, 0);
    fs.closeSync(fd);
    expect(head.toString('hex')).toBe('1f8b0800000000000003');
    execFileSync('gzip', ['-t', a]);
    expect(sha256Of('gzip', ['-dc', a])).toBe(imgSha);
    // about as small as gzip -6 itself
    const ref = path.join(tmp, 'ref.gz');
    execFileSync('sh', ['-c', 'gzip -6 -n -c "$0" > "$1"', img, ref]);
    expect(fs.statSync(a).size).toBeLessThan(fs.statSync(ref).size * 1.02);
  }, 120_000);

  test(`.zst (level ${ZSTD_LEVEL}): frames decompress to the input; long holes are RLE frames`, async () => {
    const a = await run(img, '.zst', 'a.raw.zst');
    const b = await run(img, '.zst', 'b.raw.zst');
    expect(sha256File(a)).toBe(sha256File(b));
    execFileSync('zstd', ['-q', '-t', a]);
    expect(sha256Of('zstd', ['-q', '-dc', a])).toBe(imgSha);
    const info = execFileSync('zstd', ['-lv', a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(Number(/Zstandard Frames: (\d+)/.exec(info)![1])).toBeGreaterThanOrEqual(4);
    // an RLE zero frame on its own: content size, 128 KiB window, decodes to zeros
    const z = path.join(tmp, 'z.zst');
    fs.writeFileSync(z, zstdZeroFrame(300 * 1024 + 5));
    expect(execFileSync('zstd', ['-q', '-dc', z]).equals(Buffer.alloc(300 * 1024 + 5))).toBe(true);
  }, 120_000);

  test('.tar.gz: only disk.raw, sparse, byte-identical tar to GNU tar --sparse --hole-detection=raw', async () => {
    const a = await run(img, '.tar.gz', 'a.raw.tar.gz');
    const b = await run(img, '.tar.gz', 'b.raw.tar.gz');
    expect(sha256File(a)).toBe(sha256File(b));
    const list = execFileSync('tar', ['-tvzf', a], { encoding: 'utf8' }).trim().split('\n');
    expect(list).toHaveLength(1);
    expect(list[0]).toMatch(new RegExp(`^-rw-r--r-- 0/0 +${IMG_MIB * MiB} 2019-06-01 \\d\\d:\\d\\d disk\\.raw$`));
    // reference archive from GNU tar (same member name, mode, owner, mtime; content-based hole detection)
    const stage = path.join(tmp, 'stage');
    fs.mkdirSync(stage, { recursive: true });
    fs.rmSync(path.join(stage, 'disk.raw'), { force: true });
    fs.linkSync(img, path.join(stage, 'disk.raw'));
    const ref = execFileSync('tar', [
      '-C', stage, '-c', '--sparse', '--hole-detection=raw', '--format=gnu', '--sort=name', '--owner=0', '--group=0',
      '--numeric-owner', '--mode=0644', '--mtime=@1559424892', '-f', '-', 'disk.raw',
    ], { maxBuffer: 256 * MiB });
    const ours = execFileSync('gzip', ['-dc', a], { maxBuffer: 256 * MiB });
    expect(ours.length).toBe(ref.length);
    expect(sha256(ours)).toBe(sha256(ref));
    expect(ours.length).toBeLessThan(8 * MiB); // holes are not stored
    // extraction restores the exact image
    const x = path.join(tmp, 'extract');
    fs.mkdirSync(x, { recursive: true });
    execFileSync('tar', ['-xSzf', a, '-C', x]);
    expect(sha256File(path.join(x, 'disk.raw'))).toBe(imgSha);
    // innerName
    const c = await run(img, '.tar.gz', 'c.tar.gz', 'other.img');
    expect(execFileSync('tar', ['-tzf', c], { encoding: 'utf8' })).toBe('other.img\n');
  }, 120_000);

  test('tar sizes and offsets beyond 8 GiB use GNU base-256 fields, like GNU tar', async () => {
    // 4 KiB-aligned, fully non-zero data blocks: GNU tar's fast SEEK_DATA detection then finds the same map as ours
    const stage = path.join(tmp, 'stage9');
    fs.mkdirSync(stage, { recursive: true });
    const f = path.join(stage, 'disk.raw');
    const GiB = 1024 * MiB;
    makeImage(
      f,
      9 * GiB + 8192,
      [0, 12288, 5 * GiB, 8 * GiB + 20480, 9 * GiB].map((o, i) => [o, Buffer.alloc(4096, 0x41 + i)] as [number, Buffer]),
    );
    fs.chmodSync(f, 0o644);
    const out = await run(f, '.tar.gz', 'big9.tar.gz');
    const ours = execFileSync('gzip', ['-dc', out]);
    const ref = execFileSync('tar', [
      '-C', stage, '-c', '--sparse', '--hole-detection=seek', '--format=gnu', '--sort=name', '--owner=0', '--group=0',
      '--numeric-owner', '--mode=0644', '--mtime=@1559424892', '-f', '-', 'disk.raw',
    ]);
    expect(sha256(ours)).toBe(sha256(ref));
    expect(ours[483]).toBe(0x80); // realsize in base-256
    fs.rmSync(f);
  }, 120_000);

  test('raw: a sparse copy with the same bytes; same path is a no-op', async () => {
    const a = await run(img, 'raw', 'copy.raw');
    expect(sha256File(a)).toBe(imgSha);
    expect(fs.statSync(a).blocks * 512).toBeLessThan(16 * MiB);
    await compressOutput({ file: img, outFormat: 'raw', out: img });
    expect(sha256File(img)).toBe(imgSha);
  });

  test('odd sizes, all-zero and empty inputs', async () => {
    const cases: Array<[string, number, Array<[number, Buffer]>]> = [
      ['odd-data-end.raw', 5 * MiB + 777, [[5 * MiB + 100, noise(677, 'c')], [MiB, text(1000)]]],
      ['odd-hole-end.raw', 3 * MiB + 1, [[10, text(100)]]],
      ['zero.raw', 11 * MiB, []],
      ['small.raw', 1000, [[0, text(1000)]]],
      ['empty.raw', 0, []],
    ];
    for (const [name, size, parts] of cases) {
      const f = path.join(tmp, name);
      makeImage(f, size, parts);
      const want = sha256File(f);
      const xz = await run(f, '.xz', `${name}.xz`);
      expect([name, sha256Of('xz', ['-dc', xz])]).toEqual([name, want]);
      const ref = path.join(tmp, `${name}.ref.xz`);
      execFileSync('sh', ['-c', 'xz -0 -T2 -c "$0" > "$1"', f, ref]);
      expect([name, sha256File(xz)]).toEqual([name, sha256File(ref)]);
      const gz = await run(f, '.gz', `${name}.gz`);
      expect([name, sha256Of('gzip', ['-dc', gz])]).toEqual([name, want]);
      const zst = await run(f, '.zst', `${name}.zst`);
      expect([name, sha256Of('zstd', ['-q', '-dc', zst])]).toEqual([name, want]);
      const tgz = await run(f, '.tar.gz', `${name}.tar.gz`);
      const x = path.join(tmp, `x-${name}`);
      fs.mkdirSync(x);
      execFileSync('tar', ['-xSzf', tgz, '-C', x]);
      expect([name, sha256File(path.join(x, 'disk.raw'))]).toEqual([name, want]);
    }
  }, 120_000);
});

describe('convertDisk', () => {
  const conv = (format: 'raw' | 'qcow2' | 'vhd' | 'ova', formatOptions: string, name: string) => {
    const out = path.join(tmp, name);
    return convertDisk({ raw: img, format, formatOptions, diskSizeMiB: IMG_MIB, out, workDir: path.join(tmp, 'work') }).then(() => out);
  };

  test('qcow2 with cluster_size=8k', async () => {
    const a = await conv('qcow2', 'cluster_size=8k', 'a.qcow2');
    const b = await conv('qcow2', 'cluster_size=8k', 'b.qcow2');
    expect(sha256File(a)).toBe(sha256File(b));
    const info = qemuInfo(a);
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(IMG_MIB * MiB);
    expect(info['cluster-size']).toBe(8192);
    qemuCompare(img, a, 'qcow2');
  }, 60_000);

  test('vhd for azure (subformat=fixed,force_size): fixed footer, exact size, reproducible', async () => {
    const a = await conv('vhd', 'subformat=fixed,force_size', 'a.vhd');
    await new Promise((r) => setTimeout(r, 1100)); // qemu-img's timestamp would differ by now
    const b = await conv('vhd', 'subformat=fixed,force_size', 'b.vhd');
    expect(sha256File(a)).toBe(sha256File(b));
    expect(fs.statSync(a).size).toBe(IMG_MIB * MiB + 512);
    const info = qemuInfo(a, 'vpc'); // a fixed VHD has no header, so it must be opened as vpc explicitly
    expect(info.format).toBe('vpc');
    expect(info['virtual-size']).toBe(IMG_MIB * MiB);
    qemuCompare(img, a, 'vpc');
    const footer = Buffer.alloc(512);
    const fd = fs.openSync(a, 'r');
    fs.readSync(fd, footer, 0, 512, IMG_MIB * MiB);
    fs.closeSync(fd);
    expect(footer.toString('latin1', 0, 8)).toBe('conectix');
    expect(footer.readUInt32BE(60)).toBe(2); // disk type: fixed
    expect(footer.readBigUInt64BE(48)).toBe(BigInt(IMG_MIB * MiB)); // current size
    expect(footer.readUInt32BE(24)).toBe(1559424892 - 946684800); // timestamp, seconds since 2000
    expect(footer[68 + 6] >> 4).toBe(8); // unique id: UUIDv8
    let sum = 0;
    footer.forEach((byte, i) => (sum += i >= 64 && i < 68 ? 0 : byte));
    expect(footer.readUInt32BE(64)).toBe(~sum >>> 0);
    expect(fs.statSync(a).blocks * 512).toBeLessThan(16 * MiB); // holes stay holes
  }, 60_000);

  test('vhd default (dynamic): both footers patched, reproducible', async () => {
    const a = await conv('vhd', '', 'a-dyn.vhd');
    await new Promise((r) => setTimeout(r, 1100));
    const b = await conv('vhd', '', 'b-dyn.vhd');
    expect(sha256File(a)).toBe(sha256File(b));
    const info = qemuInfo(a);
    expect(info.format).toBe('vpc');
    expect(info['virtual-size'] as number).toBeGreaterThanOrEqual(IMG_MIB * MiB); // CHS-rounded without force_size
    qemuCompare(img, a, 'vpc');
    const buf = fs.readFileSync(a);
    const head = buf.subarray(0, 512);
    const tail = buf.subarray(buf.length - 512);
    expect(head.equals(tail)).toBe(true);
    expect(head.readUInt32BE(60)).toBe(3); // dynamic
  }, 60_000);

  test('ova: disk.ovf, disk.mf, disk.vmdk; digests; stream-optimized vmdk; reproducible', async () => {
    const a = await conv('ova', '', 'a.ova');
    await new Promise((r) => setTimeout(r, 1100));
    const b = await conv('ova', '', 'b.ova');
    expect(sha256File(a)).toBe(sha256File(b));
    expect(fs.readdirSync(path.join(tmp, 'work'))).toEqual([]); // intermediates removed
    const buf = fs.readFileSync(a);
    const entries = readUstar(buf);
    expect(entries.map((e) => e.name)).toEqual(['disk.ovf', 'disk.mf', 'disk.vmdk']);
    for (const e of entries) {
      expect(e).toMatchObject({ mode: '0000644', uid: '0000000', gid: '0000000', mtime: '13474567574', type: '0', magic: 'ustar\u000000' });
    }
    expect(execFileSync('tar', ['-tf', a], { encoding: 'utf8' })).toBe('disk.ovf\ndisk.mf\ndisk.vmdk\n');
    const [ovf, mf, vmdk] = entries;
    expect(mf.data.toString()).toBe(`SHA256(disk.vmdk)= ${sha256(vmdk.data)}\nSHA256(disk.ovf)= ${sha256(ovf.data)}\n`);
    const ovfText = ovf.data.toString();
    expect(ovfText).toBe(renderOvf({ vmdkSize: vmdk.size, capacityMiB: IMG_MIB }));
    expect(ovfText).toContain(`ovf:href="disk.vmdk" ovf:size="${vmdk.size}"`);
    expect(ovfText).toContain(`ovf:capacity="${IMG_MIB}" ovf:capacityAllocationUnits="byte * 2^20"`);
    for (const s of ['vmx-15', '<rasd:VirtualQuantity>2</rasd:VirtualQuantity>', '<rasd:VirtualQuantity>2048</rasd:VirtualQuantity>',
      'VirtualSCSI', 'VmxNet3', 'ovf:transport="com.vmware.guestInfo"', 'ovf:key="talos.config"', 'vmw:key="disk.EnableUUID" vmw:value="TRUE"']) {
      expect(ovfText).toContain(s);
    }
    if (have('python3')) execFileSync('python3', ['-c', 'import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.buffer.read())'], { input: ovf.data });
    const vmdkFile = path.join(tmp, 'disk.vmdk');
    fs.writeFileSync(vmdkFile, vmdk.data);
    const info = qemuInfo(vmdkFile);
    expect(info.format).toBe('vmdk');
    expect(info['virtual-size']).toBe(IMG_MIB * MiB);
    expect((info['format-specific'] as { data: { 'create-type': string } }).data['create-type']).toBe('streamOptimized');
    qemuCompare(img, vmdkFile, 'vmdk');
    const desc = vmdk.data.toString('latin1', 512, 512 + 1024);
    expect(desc).toMatch(/^CID=[0-9a-f]{8}$/m);
    expect(desc).toContain('RW 131072 SPARSE "disk.vmdk"');
    expect(desc).toContain('ddb.adapterType = "lsilogic"');
  }, 120_000);

  test('raw: sparse copy', async () => {
    const a = await conv('raw', '', 'conv.raw');
    expect(sha256File(a)).toBe(imgSha);
  });

  test('input validation', async () => {
    await expect(convertDisk({ raw: img, format: 'qcow2', formatOptions: '', diskSizeMiB: 63, out: path.join(tmp, 'x.qcow2'), workDir: tmp })).rejects.toThrow(
      /expected 63 MiB/,
    );
    await expect(
      convertDisk({ raw: img, format: 'qcow2', formatOptions: 'backing_file=/etc/shadow', diskSizeMiB: IMG_MIB, out: path.join(tmp, 'x.qcow2'), workDir: tmp }),
    ).rejects.toThrow(/unsupported qcow2 option "backing_file"/);
    expect(fs.existsSync(path.join(tmp, 'x.qcow2'))).toBe(false);
    expect(normalizeFormatOptions('vpc', 'subformat=fixed,force_size')).toBe('subformat=fixed,force_size=on');
    expect(normalizeFormatOptions('qcow2', 'cluster_size=8k')).toBe('cluster_size=8k');
    expect(() => normalizeFormatOptions('vpc', 'subformat')).toThrow(/needs a value/);
  });
});

describe('allocation independence', () => {
  test('a fully allocated copy (holes written as zeros) gives byte-identical outputs', async () => {
    const src = path.join(tmp, 'alloc-src.raw');
    makeImage(src, 24 * MiB, [
      [0, text(3000)],
      [2 * MiB + 4096, noise(70_000, 'd')],
      [20 * MiB, text(MiB)],
    ]);
    const dense = path.join(tmp, 'alloc-dense.raw');
    execFileSync('cp', ['--sparse=never', src, dense]);
    expect(fs.statSync(dense).blocks * 512).toBeGreaterThanOrEqual(24 * MiB);
    expect(await readableExtents(dense, 24 * MiB)).toEqual([[0, 24 * MiB]]);
    expect((await readableExtents(src, 24 * MiB)).length).toBeGreaterThan(1);
    const outs = async (file: string, tag: string) => {
      const r: Record<string, string> = {};
      for (const f of ['.gz', '.xz', '.zst', '.tar.gz'] as const) {
        const out = path.join(tmp, `alloc-${tag}${f}`);
        await compressOutput({ file, outFormat: f, out });
        r[f] = sha256File(out);
      }
      for (const [f, opts] of [['qcow2', 'cluster_size=8k'], ['vhd', 'subformat=fixed,force_size'], ['ova', '']] as const) {
        const out = path.join(tmp, `alloc-${tag}.${f}`);
        await convertDisk({ raw: file, format: f, formatOptions: opts, diskSizeMiB: 24, out, workDir: path.join(tmp, 'work') });
        r[f] = sha256File(out);
      }
      return r;
    };
    expect(await outs(dense, 'dense')).toEqual(await outs(src, 'sparse'));
  }, 120_000);
});

describe('bounded memory on a 2 GiB sparse image', () => {
  test('every compression and format: small RSS, reasonable time', async () => {
    const big = path.join(tmp, 'big.raw');
    const BIG_MIB = 2048;
    makeImage(big, BIG_MIB * MiB, [
      [0, Buffer.alloc(512, 1)],
      [1 * MiB, noise(2 * MiB, 'big1')],
      [700 * MiB, text(2 * MiB)],
      [1500 * MiB, noise(1 * MiB, 'big2')],
      [BIG_MIB * MiB - 16384, Buffer.alloc(512, 2)],
    ]);
    const want = sha256File(big);
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    const rows: string[] = [];
    const time = async (label: string, fn: () => Promise<string>): Promise<string> => {
      const before = peak;
      peak = process.memoryUsage().rss;
      const t0 = Date.now();
      const out = await fn();
      rows.push(`${label.padEnd(8)} ${((Date.now() - t0) / 1000).toFixed(2).padStart(6)} s  ${String(fs.statSync(out).size).padStart(11)} B  peak RSS +${(Math.max(0, peak - base) / MiB).toFixed(0)} MiB`);
      peak = Math.max(peak, before);
      return out;
    };
    try {
      for (const f of ['raw', '.gz', '.xz', '.zst', '.tar.gz'] as const) {
        const out = path.join(tmp, `big${f === 'raw' ? '.copy' : f}`);
        await time(f, () => compressOutput({ file: big, outFormat: f, out }).then(() => out));
        if (f === '.zst') expect(sha256Of('zstd', ['-q', '-dc', out])).toBe(want); // RLE frames over GiB-sized holes
        fs.rmSync(out);
      }
      for (const [f, opts] of [['qcow2', 'cluster_size=8k'], ['vhd', 'subformat=fixed,force_size'], ['ova', '']] as const) {
        const out = path.join(tmp, `big.${f}`);
        await time(f, () => convertDisk({ raw: big, format: f, formatOptions: opts, diskSizeMiB: BIG_MIB, out, workDir: path.join(tmp, 'work') }).then(() => out));
        fs.rmSync(out);
      }
    } finally {
      clearInterval(timer);
    }
    log(`2 GiB sparse image (~5 MiB data), base RSS ${(base / MiB).toFixed(0)} MiB:\n${rows.join('\n')}`);
    expect(peak - base).toBeLessThan(160 * MiB);
  }, 300_000);
});
