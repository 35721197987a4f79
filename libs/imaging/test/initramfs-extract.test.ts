/**
 * extractLayers: layer formats (plain / gzip / zstd / xz by magic), OCI whiteouts, SELinux PAX labels, and one test
 * per attack an untrusted layer can try (each must fail with UnsafeArchiveError and leave the outside untouched).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { extractLayers, ExtractLimits, UnsafeArchiveError } from '../src/initramfs';

// ---------------------------------------------------------------------------------------------------------------
// a raw tar writer with full control over names, types and PAX records (including malicious ones)

interface RawEntry {
  name: string;
  type?: string; // '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo
  data?: string | Buffer;
  link?: string;
  mode?: number;
  pax?: Record<string, string>;
  /** size written into the header (defaults to the data length) */
  size?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function hdr(name: string, type: string, size: number, mode: number, link = ''): Buffer {
  const h = Buffer.alloc(512, 0);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write(octal(mode, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(1559424892, 12), 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(link.slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

function paxBody(rec: Record<string, string>): Buffer {
  return Buffer.concat(
    Object.entries(rec).map(([k, v]) => {
      const body = Buffer.from(` ${k}=${v}\n`);
      let len = body.length + 1;
      while (String(len).length + body.length !== len) len = String(len).length + body.length;
      return Buffer.concat([Buffer.from(String(len)), body]);
    }),
  );
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512, 0);

function tar(entries: RawEntry[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? '0';
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    if (e.pax) {
      const body = paxBody(e.pax);
      out.push(hdr('PaxHeader', 'x', body.length, 0o644), body, pad(body.length));
    }
    out.push(hdr(e.name, type, e.size ?? data.length, e.mode ?? (type === '5' ? 0o755 : 0o644), e.link));
    if (data.length) out.push(data, pad(data.length));
  }
  out.push(Buffer.alloc(1024, 0));
  return Buffer.concat(out);
}

const layer = (buf: Buffer) => async () => Readable.from([buf]) as NodeJS.ReadableStream;

// ---------------------------------------------------------------------------------------------------------------

let tmp: string;
let n = 0;
/** dest = <case>/dest; <case>/outside exists next to it and must never change */
function newCase(): { dest: string; outside: string } {
  const root = path.join(tmp, `case-${n++}`);
  const outside = path.join(root, 'outside');
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(path.join(outside, 'keep'), 'keep\n');
  return { dest: path.join(root, 'dest'), outside };
}

function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(p);
      if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(p)}`);
      else out.push(`${r} ${fs.readFileSync(p, 'utf8')}`);
    }
  };
  walk(root, '');
  return out;
}

function outsideUntouched(outside: string): void {
  expect(listTree(path.dirname(outside)).filter((l) => !l.startsWith('dest'))).toEqual(['outside/', 'outside/keep keep\n']);
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'initramfs-extract-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sample: RawEntry[] = [
  { name: 'manifest.yaml', data: 'version: v1alpha1\n' },
  { name: 'rootfs/', type: '5' },
  { name: 'rootfs/usr/local/bin/tool', data: '#!/bin/sh\n', mode: 0o755 },
  { name: './rootfs/usr/local/etc/conf', data: 'conf\n', mode: 0o600, pax: { 'SCHILY.xattr.security.selinux': 'system_u:object_r:etc_t:s0' } },
  { name: 'rootfs/usr/local/bin/link', type: '2', link: 'tool' },
  { name: 'rootfs/usr/local/bin/abs', type: '2', link: '/usr/local/bin/tool' },
  { name: 'rootfs/usr/local/bin/hard', type: '1', link: 'rootfs/usr/local/bin/tool' },
  { name: 'rootfs/ro/', type: '5', mode: 0o555 },
  { name: 'rootfs/ro/inside', data: 'x' },
  { name: 'rootfs/' + 'd'.repeat(60) + '/' + 'f'.repeat(80), data: 'long', pax: { path: 'rootfs/' + 'd'.repeat(60) + '/' + 'f'.repeat(80) } },
];

describe('formats', () => {
  test('plain, gzip, zstd and xz layers give the same tree; modes, links, labels', async () => {
    const raw = tar(sample);
    const variants: Record<string, Buffer> = {
      plain: raw,
      gzip: zlib.gzipSync(raw),
      zstd: execFileSync('zstd', ['-q', '-c'], { input: raw }),
      xz: execFileSync('xz', ['-q', '-c'], { input: raw }),
    };
    const trees: string[][] = [];
    for (const [kind, buf] of Object.entries(variants)) {
      const { dest } = newCase();
      const { selinux } = await extractLayers([layer(buf)], dest);
      trees.push(listTree(dest));
      expect([kind, [...selinux]]).toEqual([kind, [['rootfs/usr/local/etc/conf', 'system_u:object_r:etc_t:s0']]]);
      expect(fs.statSync(path.join(dest, 'rootfs/usr/local/bin/tool')).mode & 0o7777).toBe(0o755);
      expect(fs.statSync(path.join(dest, 'rootfs/usr/local/etc/conf')).mode & 0o7777).toBe(0o600);
      expect(fs.statSync(path.join(dest, 'rootfs/ro')).mode & 0o7777).toBe(0o555);
      expect(fs.statSync(path.join(dest, 'rootfs/usr/local/bin/hard')).ino).toBe(fs.statSync(path.join(dest, 'rootfs/usr/local/bin/tool')).ino);
    }
    expect(trees[0]).toContain('rootfs/usr/local/bin/abs -> /usr/local/bin/tool');
    expect(trees[0]).toContain(`rootfs/${'d'.repeat(60)}/${'f'.repeat(80)} long`);
    for (const t of trees) expect(t).toEqual(trees[0]);
  });

  test('multi-chunk streams and a stream without the end-of-archive blocks', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a);
    const raw = tar([{ name: 'rootfs/big', data: big }]);
    const gz = zlib.gzipSync(raw);
    const chunks: Buffer[] = [];
    for (let i = 0; i < gz.length; i += 1000) chunks.push(gz.subarray(i, i + 1000));
    const { dest } = newCase();
    await extractLayers([async () => Readable.from(chunks)], dest);
    expect(fs.readFileSync(path.join(dest, 'rootfs/big')).equals(big)).toBe(true);
    const { dest: d2 } = newCase();
    await extractLayers([layer(raw.subarray(0, raw.length - 1024))], d2);
    expect(fs.statSync(path.join(d2, 'rootfs/big')).size).toBe(big.length);
  });

  test('OCI whiteouts and opaque directories apply to lower layers only; labels follow', async () => {
    const l1 = tar([
      { name: 'rootfs/a/b', data: 'b' },
      { name: 'rootfs/a/c', data: 'c' },
      { name: 'rootfs/d/e', data: 'e', pax: { 'SCHILY.xattr.security.selinux': 'e_t' } },
      { name: 'rootfs/d/sub/f', data: 'f' },
      { name: 'rootfs/gone/x', data: 'x' },
      { name: 'rootfs/keep', data: 'k', pax: { 'SCHILY.xattr.security.selinux': 'k_t' } },
    ]);
    const l2 = tar([
      { name: 'rootfs/a/.wh.b', data: '' },
      { name: 'rootfs/d/new', data: 'new' },
      { name: 'rootfs/d/.wh..wh..opq', data: '' },
      { name: 'rootfs/d/sub/g', data: 'g' },
      { name: 'rootfs/.wh.gone', data: '' },
      { name: 'rootfs/.wh.missing', data: '' },
      { name: 'rootfs/keep', data: 'k2' },
    ]);
    const { dest } = newCase();
    const { selinux } = await extractLayers([layer(zlib.gzipSync(l1)), layer(l2)], dest);
    expect(listTree(dest)).toEqual(['rootfs/', 'rootfs/a/', 'rootfs/a/c c', 'rootfs/d/', 'rootfs/d/new new', 'rootfs/d/sub/', 'rootfs/d/sub/g g', 'rootfs/keep k2']);
    // e was hidden by the opaque marker, keep was replaced by an unlabelled file
    expect([...selinux]).toEqual([]);
  });
});

describe('attacks are rejected', () => {
  const cases: Array<[string, RawEntry[][], ExtractLimits, RegExp]> = [
    ['".." traversal', [[{ name: '../evil', data: 'x' }]], {}, /"\.\." path component/],
    ['".." inside a path', [[{ name: 'rootfs/../../outside/evil', data: 'x' }]], {}, /"\.\." path component/],
    ['absolute path climbing out', [[{ name: '/../outside/evil', data: 'x' }]], {}, /"\.\." path component/],
    ['".." via PAX path', [[{ name: 'harmless', data: 'x', pax: { path: 'a/../../outside/evil' } }]], {}, /"\.\." path component/],
    ['NUL in a PAX path', [[{ name: 'harmless', data: 'x', pax: { path: 'a\0b' } }]], {}, /NUL byte/],
    ['character device', [[{ name: 'rootfs/dev/null', type: '3' }]], {}, /device or FIFO/],
    ['block device', [[{ name: 'rootfs/dev/sda', type: '4' }]], {}, /device or FIFO/],
    ['FIFO', [[{ name: 'rootfs/fifo', type: '6' }]], {}, /device or FIFO/],
    ['unknown entry type', [[{ name: 'rootfs/sparse', type: 'S', data: 'x' }]], {}, /unsupported tar entry type/],
    ['relative symlink escaping', [[{ name: 'rootfs/l', type: '2', link: '../../outside' }]], {}, /escapes the destination/],
    ['relative symlink escaping from a subdirectory', [[{ name: 'a/b/l', type: '2', link: '../../../x' }]], {}, /escapes the destination/],
    ['writing through an absolute symlink', [[{ name: 'l', type: '2', link: '/' }, { name: 'l/outside/evil', data: 'x' }]], {}, /goes through the symbolic link "l"/],
    ['writing through a relative symlink', [[{ name: 'l', type: '2', link: '.' }, { name: 'l/x', data: 'x' }]], {}, /goes through the symbolic link "l"/],
    ['writing through a symlink from a lower layer', [[{ name: 'rootfs/lib', type: '2', link: '/tmp' }], [{ name: 'rootfs/lib/evil', data: 'x' }]], {}, /goes through the symbolic link "rootfs\/lib"/],
    ['hard link escaping', [[{ name: 'h', type: '1', link: '../outside/keep' }]], {}, /escapes the destination/],
    ['hard link through a symlink', [[{ name: 'l', type: '2', link: '/' }, { name: 'h', type: '1', link: 'l/etc/passwd' }]], {}, /goes through the symbolic link "l"/],
    ['hard link to a directory', [[{ name: 'd/', type: '5' }, { name: 'h', type: '1', link: 'd' }]], {}, /does not point at a regular file/],
    ['hard link to nothing', [[{ name: 'h', type: '1', link: 'missing' }]], {}, /does not point at a regular file/],
    ['hard link to a symlink', [[{ name: 'l', type: '2', link: '/etc/passwd' }, { name: 'h', type: '1', link: 'l' }]], {}, /does not point at a regular file/],
    ['whiteout through a symlink', [[{ name: 'l', type: '2', link: '/' }], [{ name: 'l/outside/.wh.keep', data: '' }]], {}, /goes through the symbolic link "l"/],
    ['oversize entry', [[{ name: 'big', data: 'x'.repeat(11) }]], { maxEntryBytes: 10 }, /11 bytes, limit 10/],
    ['oversize total', [[{ name: 'a', data: 'x'.repeat(10) }], [{ name: 'b', data: 'x'.repeat(10) }]], { maxTotalBytes: 15 }, /total limit of 15 bytes/],
    ['too many entries', [[{ name: 'a', data: '' }, { name: 'b', data: '' }, { name: 'c', data: '' }, { name: 'd', data: '' }]], { maxEntries: 3 }, /more than 3 entries/],
  ];
  test.each(cases)('%s', async (_name, layers, limits, message) => {
    const { dest, outside } = newCase();
    const p = extractLayers(layers.map((l) => layer(tar(l))), dest, limits);
    await expect(p).rejects.toThrow(UnsafeArchiveError);
    await expect(p).rejects.toThrow(message);
    outsideUntouched(outside);
    expect(fs.existsSync('/tmp/evil')).toBe(false);
  });

  test('an absolute entry name lands inside dest', async () => {
    const { dest, outside } = newCase();
    await extractLayers([layer(tar([{ name: '/etc/evil', data: 'x' }]))], dest);
    expect(listTree(dest)).toEqual(['etc/', 'etc/evil x']);
    outsideUntouched(outside);
  });

  test('an existing symlink is replaced by a later file, never written through', async () => {
    const { dest, outside } = newCase();
    const l1 = tar([{ name: 'x', type: '2', link: path.join(outside, 'keep') }]);
    const l2 = tar([{ name: 'x', data: 'replaced' }]);
    // an absolute target is accepted (it is rooted at dest on the node) but never followed
    await extractLayers([layer(l1), layer(l2)], dest);
    expect(listTree(dest)).toEqual(['x replaced']);
    outsideUntouched(outside);
  });

  test('garbage, truncated data and bad checksums', async () => {
    const { dest } = newCase();
    await expect(extractLayers([layer(Buffer.from('this is not a tar archive at all'.repeat(40)))], dest)).rejects.toThrow(UnsafeArchiveError);
    const good = tar([{ name: 'f', data: 'y'.repeat(2000) }]);
    await expect(extractLayers([layer(good.subarray(0, 1200))], newCase().dest)).rejects.toThrow(UnsafeArchiveError);
    const bad = Buffer.from(good);
    bad[10] ^= 0xff;
    await expect(extractLayers([layer(bad)], newCase().dest)).rejects.toThrow(/checksum/);
    // truncated / corrupt compressed layers report the decompressor's error
    await expect(extractLayers([layer(zlib.gzipSync(good).subarray(0, 40))], newCase().dest)).rejects.toThrow(/unexpected end of file/);
    const zst = execFileSync('zstd', ['-q', '-c', '--no-check'], { input: Buffer.concat([good, Buffer.alloc(100000, 1)]) });
    await expect(extractLayers([layer(zst.subarray(0, zst.length - 20))], newCase().dest)).rejects.toThrow(/zstd -d -c -q failed/);
  });
});
