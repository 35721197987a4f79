/**
 * @factory/archive: byte parity with the writers it replaced (vectors recorded from them), round trips through the
 * reader, GNU tar / GNU cpio reading what we write, and the reader's guard (end-of-archive, metadata bound,
 * header-only types, truncation).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  ByteReader,
  CpioNode,
  gnuSparseHeaders,
  gnuSparseTar,
  newcArchive,
  readCpio,
  readTar,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  SourceChangedError,
  tarBuffer,
  TarEntry,
  tarEntryHeader,
  TarReadEntry,
  tarStream,
  UnsafeArchiveError,
  ustarBlock,
} from '../src';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const EPOCH = 1559424892;

async function collect(g: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of g) parts.push(c);
  return Buffer.concat(parts);
}

interface ReadBack extends Omit<TarReadEntry, 'body'> {
  data: Buffer;
}

async function readAll(archive: Buffer | ByteReader): Promise<ReadBack[]> {
  const out: ReadBack[] = [];
  const src = Buffer.isBuffer(archive) ? Readable.from([archive]) : archive;
  for await (const e of readTar(src)) {
    const { body, ...rest } = e;
    out.push({ ...rest, data: await collect(body()) });
  }
  return out;
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'archive-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------------------

describe('byte parity with the writers this module replaced (sha256 recorded from them)', () => {
  const long150 = `usr/install/amd64/${'d'.repeat(60)}/${'f'.repeat(70)}`;
  const long300 = `a/${'b'.repeat(200)}/${'c'.repeat(98)}`;

  test('installer layer / docker-save writer (Go archive/tar layout: prefix split, PAX path, octal device fields)', async () => {
    const blob = path.join(tmp, 'blob');
    fs.writeFileSync(blob, Buffer.alloc(5000, 7));
    const entries: TarEntry[] = [
      { type: 'file', name: 'usr/bin/installer', mode: 0o755, data: Buffer.from('#!/bin/sh\n'), size: 10 },
      { type: 'file', name: 'empty', mode: 0, data: Buffer.alloc(0), size: 0 },
      { type: 'file', name: long150, mode: 0o644, data: Buffer.from('x'), size: 1 },
      { type: 'file', name: long300, mode: 0o640, data: Buffer.from('yy'), size: 2 },
      { type: 'file', name: 'overlay/artifacts/amd64/über.bin', mode: 0o640, data: Buffer.from('0123456789'), size: 10 },
      { type: 'file', name: 'usr/install/amd64/vmlinuz', mode: 0, file: blob, size: 5000 },
    ];
    const tar = await collect(tarStream(entries));
    expect(tar.length).toBe(13312);
    expect(sha256(tar)).toBe('650400b2e0655edb5c070111e3ea403528a3c644f8956121622f586648a43053');
    // GNU tar sees the same names (PAX path for the long and the non-ASCII one)
    const f = path.join(tmp, 'installer.tar');
    fs.writeFileSync(f, tar);
    expect(execFileSync('tar', ['-tf', f], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } }).trim().split('\n')).toEqual(entries.map((e) => e.name));
  });

  test('a size beyond 8 GiB goes into a PAX size record', () => {
    const h = tarEntryHeader({ type: 'file', name: 'big.img', mode: 0o644, size: 9 * 1024 ** 3 });
    expect(sha256(h)).toBe('62bf10c8c06f97e663c23963b2e7bafab27ee5556fe6eb31620bbd5ed817a582');
    expect(h.subarray(512, 1024).toString('latin1')).toContain(' size=9663676416\n');
  });

  test('OVA member headers (device fields NUL, base-256 size past 8 GiB)', () => {
    expect(sha256(ustarBlock({ name: 'disk.ovf', mode: 0o644, size: 1234, mtime: EPOCH, type: '0' }))).toBe(
      'b8948ff2b6199a75a425c2aed6dde4da5630ad6e35cd2b97c0f841c4bf0e5d4b',
    );
    const big = ustarBlock({ name: 'disk.vmdk', mode: 0o644, size: 9 * 1024 ** 3 + 5, mtime: EPOCH, type: '0' });
    expect(sha256(big)).toBe('fd6c397851fee01fd62670e8c9f84000558d3018d48c6b2ca9ad4cc019e83e53');
    expect(big[124]).toBe(0x80);
  });

  test('test fixture layers (tarOf: ustar, device fields NUL, mtime 0)', () => {
    const files: Record<string, Buffer> = { 'usr/bin/installer': Buffer.from('#!/bin/sh\necho installer\n'), 'usr/install/amd64/vmlinuz': Buffer.alloc(4096, 1) };
    const tar = tarBuffer(
      Object.keys(files).map((name) => ({ type: 'file' as const, name, mode: 0o644, size: files[name].length, data: files[name] })),
      { deviceNumbers: false },
    );
    expect(sha256(tar)).toBe('98ea617adca7c668195d657077438e84207583927649410460be96d756f07d61');
  });

  test('GNU sparse headers with extension blocks', () => {
    const regions = Array.from({ length: 30 }, (_, i) => ({ offset: i * 8192, size: 512 * (1 + (i % 3)) }));
    const h = gnuSparseHeaders('disk.raw', { size: 30 * 8192 + 4096, regions }, 0o644, EPOCH);
    expect(h.length).toBe(3 * 512); // 4 regions in the header, 21 + 5 in two extension blocks
    expect(sha256(h)).toBe('05691b7e58f715b0e32a51bfeb2d21a026dfc472b5b733b06246d14ec5c78ba6');
  });

  test('GNU sparse member of a file with holes; GNU tar restores the file', async () => {
    const sp = path.join(tmp, 'sparse.raw');
    const fd = fs.openSync(sp, 'w');
    for (let i = 0; i < 7; i++) fs.writeSync(fd, Buffer.alloc(1536, i + 1), 0, 1536, i * 65536 + 512);
    fs.ftruncateSync(fd, 7 * 65536 + 4096);
    fs.closeSync(fd);
    const regions = Array.from({ length: 7 }, (_, i) => ({ offset: i * 65536 + 512, size: 1536 }));
    regions.push({ offset: 7 * 65536 + 4096, size: 0 });
    const tar = await collect(gnuSparseTar(sp, { size: 7 * 65536 + 4096, regions }, { name: 'disk.raw', mtime: EPOCH }));
    expect(tar.length).toBe(20480);
    expect(sha256(tar)).toBe('b6999e97af025f34f83edef323944a2b63e4ec3f120d42de4c84552b226364a0');
    const out = path.join(tmp, 'sparse-x');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(tmp, 'sparse.tar'), tar);
    execFileSync('tar', ['-xSf', path.join(tmp, 'sparse.tar'), '-C', out]);
    expect(fs.readFileSync(path.join(out, 'disk.raw')).equals(fs.readFileSync(sp))).toBe(true);
  });

  test('newc cpio (cpio -H newc --reproducible layout)', async () => {
    const ko = path.join(tmp, 'mod.ko');
    fs.writeFileSync(ko, Buffer.alloc(777, 3));
    const nodes: CpioNode[] = [
      { type: 'dir', path: 'lib', mode: 0o755, nlink: 3 },
      { type: 'dir', path: 'lib/modules', mode: 0o755, nlink: 2 },
      { type: 'file', path: 'lib/modules/a.ko', mode: 0o644, size: 777, sources: [{ path: ko, size: 777 }] },
      { type: 'symlink', path: 'bin', target: 'usr/bin' },
      { type: 'file', path: 'init', mode: 0o755, size: 3, data: Buffer.from('sh\n') },
    ];
    const cpio = await collect(newcArchive(nodes, EPOCH));
    expect(cpio.length).toBe(1536);
    expect(sha256(cpio)).toBe('d4b0fa3ac40c15be5fae441dcc2fe9a08952e7f555e05db68683f0a1f20d7a10');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('tar round trips', () => {
  test('files (memory and disk), directories, symlinks, hard links, PAX long names and records', async () => {
    const onDisk = path.join(tmp, 'ondisk');
    fs.writeFileSync(onDisk, Buffer.alloc(700_000, 0x41));
    const longDir = `${'d'.repeat(120)}/${'e'.repeat(120)}`;
    const longLink = `/${'t'.repeat(150)}`;
    const entries: TarEntry[] = [
      { type: 'dir', name: 'rootfs', mode: 0o755 },
      { type: 'file', name: 'rootfs/a', mode: 0o600, size: 3, data: Buffer.from('abc'), pax: { 'SCHILY.xattr.security.selinux': 'system_u:object_r:etc_t:s0' } },
      { type: 'file', name: 'rootfs/big', mode: 0o644, size: 700_000, file: onDisk, noFollow: true },
      { type: 'hardlink', name: 'rootfs/big-again', mode: 0o644, target: 'rootfs/big' },
      { type: 'symlink', name: 'rootfs/l', mode: 0o777, target: '../a' },
      { type: 'symlink', name: 'rootfs/far', mode: 0o777, target: longLink },
      { type: 'file', name: `rootfs/${longDir}/file`, mode: 0o644, size: 1, data: Buffer.from('z') },
      { type: 'file', name: 'rootfs/naïve', mode: 0o644, size: 0 },
    ];
    const tar = await collect(tarStream(entries, { mtime: EPOCH }));
    expect(tar.length % 512).toBe(0);
    const back = await readAll(tar);
    expect(back.map((e) => [e.path, e.type, e.mode, e.size, e.linkname, e.mtime])).toEqual([
      ['rootfs/', '5', 0o755, 0, '', EPOCH],
      ['rootfs/a', '0', 0o600, 3, '', EPOCH],
      ['rootfs/big', '0', 0o644, 700_000, '', EPOCH],
      ['rootfs/big-again', '1', 0o644, 0, 'rootfs/big', EPOCH],
      ['rootfs/l', '2', 0o777, 0, '../a', EPOCH],
      ['rootfs/far', '2', 0o777, 0, longLink, EPOCH],
      [`rootfs/${longDir}/file`, '0', 0o644, 1, '', EPOCH],
      ['rootfs/naïve', '0', 0o644, 0, '', EPOCH],
    ]);
    expect(back[1].pax['SCHILY.xattr.security.selinux']).toBe('system_u:object_r:etc_t:s0');
    expect(back[1].data.toString()).toBe('abc');
    expect(back[2].data.equals(fs.readFileSync(onDisk))).toBe(true);
    // the same bytes again (determinism), and GNU tar extracts it with the hard link and the long names
    expect((await collect(tarStream(entries, { mtime: EPOCH }))).equals(tar)).toBe(true);
    const x = path.join(tmp, 'rt-x');
    fs.mkdirSync(x);
    fs.writeFileSync(path.join(tmp, 'rt.tar'), tar);
    execFileSync('tar', ['-xf', path.join(tmp, 'rt.tar'), '-C', x]);
    expect(fs.statSync(path.join(x, 'rootfs/big-again')).ino).toBe(fs.statSync(path.join(x, 'rootfs/big')).ino);
    expect(fs.readlinkSync(path.join(x, 'rootfs/far'))).toBe(longLink);
    expect(fs.readFileSync(path.join(x, `rootfs/${longDir}/file`), 'utf8')).toBe('z');
  });

  test('the reader takes GNU tar archives: GNU long names (L/K), old GNU magic, record padding', async () => {
    const src = path.join(tmp, 'gnu-src');
    const deep = `${'x'.repeat(90)}/${'y'.repeat(90)}/${'z'.repeat(90)}`;
    fs.mkdirSync(path.join(src, deep), { recursive: true });
    fs.writeFileSync(path.join(src, deep, 'f'), 'deep\n');
    fs.symlinkSync(`../${'q'.repeat(120)}`, path.join(src, 'sym'));
    const out = path.join(tmp, 'gnu.tar');
    execFileSync('tar', ['--format=gnu', '--sort=name', '-cf', out, '-C', src, '.']);
    const back = await readAll(fs.readFileSync(out));
    const file = back.find((e) => e.path === `./${deep}/f`);
    expect(file?.data.toString()).toBe('deep\n');
    expect(back.find((e) => e.path === './sym')?.linkname).toBe(`../${'q'.repeat(120)}`);
  });

  test('an unread body is skipped; a file that shrinks while archived fails', async () => {
    const tar = tarBuffer([
      { type: 'file', name: 'a', mode: 0o644, size: 2000, data: Buffer.alloc(2000, 1) },
      { type: 'file', name: 'b', mode: 0o644, size: 1, data: Buffer.from('b') },
    ]);
    const names: string[] = [];
    for await (const e of readTar(Readable.from([tar]))) names.push(e.path);
    expect(names).toEqual(['a', 'b']);
    const f = path.join(tmp, 'shrinks');
    fs.writeFileSync(f, 'short');
    await expect(collect(tarStream([{ type: 'file', name: 'f', mode: 0o644, size: 100, file: f }]))).rejects.toThrow(SourceChangedError);
  });
});

describe('tar reader guard', () => {
  const one = tarBuffer([{ type: 'file', name: 'f', mode: 0o644, size: 2000, data: Buffer.alloc(2000, 0x61) }]);

  test('reading stops at the end-of-archive marker and leaves what follows to the caller', async () => {
    const r = ByteReader.from(Readable.from([Buffer.concat([one, Buffer.from('trailing bytes that are not tar')])]));
    expect((await readAll(r)).map((e) => e.path)).toEqual(['f']);
    const rest = await collect(r.rest());
    expect(rest.toString('latin1')).toContain('trailing bytes that are not tar');
  });

  test('a stream that ends without end-of-archive blocks or final padding is accepted', async () => {
    expect((await readAll(one.subarray(0, one.length - 1024))).map((e) => e.data.length)).toEqual([2000]);
    expect((await readAll(one.subarray(0, 512 + 2000))).map((e) => e.data.length)).toEqual([2000]);
  });

  test('truncation, bad checksums, oversized metadata and header-only types with data are refused', async () => {
    await expect(readAll(one.subarray(0, 1200))).rejects.toThrow(/^truncated tar entry "f"/);
    await expect(readAll(one.subarray(0, 300))).rejects.toThrow(/^truncated tar header/);
    const bad = Buffer.from(one);
    bad[3] ^= 0xff;
    await expect(readAll(bad)).rejects.toThrow(/checksum/);
    await expect(readAll(Buffer.from('not a tar archive at all '.repeat(40)))).rejects.toThrow(UnsafeArchiveError);

    const hugePax = ustarBlock({ name: 'PaxHeaders.0/x', mode: 0o644, size: 4 << 20, mtime: 0, type: 'x' });
    await expect(readAll(Buffer.concat([hugePax, Buffer.alloc(8192, 0x31)]))).rejects.toThrow(/metadata record of 4194304 bytes/);

    const symlinkWithData = ustarBlock({ name: 'l', mode: 0o777, size: 512, mtime: 0, type: '2', linkname: 'x' });
    await expect(readAll(Buffer.concat([symlinkWithData, Buffer.alloc(512, 0x41), Buffer.alloc(1024)]))).rejects.toThrow(/is a symlink but records 512 bytes/);
  });

  test('a consumer that stops early releases the archive', async () => {
    const it = readTar(Readable.from([one]));
    const first = await it.next();
    expect(first.done).toBe(false);
    await it.return(undefined);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('cpio', () => {
  const nodes: CpioNode[] = [
    { type: 'dir', path: 'etc', mode: 0o755, nlink: 2 },
    { type: 'file', path: 'etc/hostname', mode: 0o644, size: 6, data: Buffer.from('node1\n') },
    { type: 'symlink', path: 'init', target: 'sbin/init' },
    { type: 'file', path: 'empty', mode: 0o600, size: 0, data: Buffer.alloc(0) },
  ];

  test('round trip, concatenated archives with zero padding in between', async () => {
    const one = await collect(newcArchive(nodes, EPOCH));
    expect(one.length % 512).toBe(0);
    const both = Buffer.concat([one, Buffer.alloc(1024), one]);
    const back: Array<[string, number, number, string]> = [];
    for await (const e of readCpio(Readable.from([both]))) {
      back.push([e.path, e.mode & S_IFMT, e.mode & 0o7777, (await collect(e.body())).toString()]);
    }
    const once: Array<[string, number, number, string]> = [
      ['etc', S_IFDIR, 0o755, ''],
      ['etc/hostname', S_IFREG, 0o644, 'node1\n'],
      ['init', S_IFLNK, 0o777, 'sbin/init'],
      ['empty', S_IFREG, 0o600, ''],
    ];
    expect(back).toEqual([...once, ...once]);
  });

  test('GNU cpio reads what we write, and we read what GNU cpio writes', async () => {
    const ours = path.join(tmp, 'ours.cpio');
    fs.writeFileSync(ours, await collect(newcArchive(nodes, EPOCH)));
    const x = path.join(tmp, 'cpio-x');
    fs.mkdirSync(x);
    execFileSync('cpio', ['-idm', '--quiet', '-F', ours], { cwd: x });
    expect(fs.readFileSync(path.join(x, 'etc/hostname'), 'utf8')).toBe('node1\n');
    expect(fs.readlinkSync(path.join(x, 'init'))).toBe('sbin/init');

    const theirs = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet', '--reproducible'], { cwd: x, input: 'etc\netc/hostname\ninit\n' });
    const read: string[] = [];
    for await (const e of readCpio(Readable.from([theirs]))) read.push(`${e.path}:${(await collect(e.body())).toString()}`);
    expect(read).toEqual(['etc:', 'etc/hostname:node1\n', 'init:sbin/init']);
  });

  test('bad magic and truncation are refused', async () => {
    const one = await collect(newcArchive(nodes, EPOCH));
    const drain = async (b: Buffer) => {
      for await (const e of readCpio(Readable.from([b]))) await collect(e.body());
    };
    await expect(drain(Buffer.from('070707' + '0'.repeat(200)))).rejects.toThrow(/bad cpio magic/);
    await expect(drain(one.subarray(0, 200))).rejects.toThrow(/truncated cpio archive/);
  });
});
