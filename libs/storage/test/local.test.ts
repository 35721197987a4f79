import { mkdtempSync, promises as fsp, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createLocalStore, LocalObjectStore } from '../src';
import { collect, expectBytes, expectStorageError, MiB, objectStoreSuite, readAll, sha256 } from './suite';

const roots: string[] = [];
function tempRoot(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'factory-storage-local-'));
  roots.push(dir);
  return dir;
}
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

objectStoreSuite('local directory', {
  async setup() {
    const dir = tempRoot();
    return { store: createLocalStore(path.join(dir, 'objects')), teardown: async () => {} };
  },
  streamMemoryBudget: 12 * MiB,
  atomicServer: true,
  longSegments: true,
});

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(dir);
  return out;
}

describe('local store specifics', () => {
  test('kind and lazy creation of the root directory', async () => {
    const root = path.join(tempRoot(), 'nested', 'root');
    const store = createLocalStore(root);
    expect(store.kind).toBe('local');
    await store.ping();
    expect((await fsp.stat(path.join(root, '.tmp'))).isDirectory()).toBe(true);
  });

  test('ping fails with UNAVAILABLE when the directory cannot be created', async () => {
    const base = tempRoot();
    writeFileSync(path.join(base, 'file'), 'not a directory');
    const store = createLocalStore(path.join(base, 'file', 'root'));
    await expectStorageError(store.ping(), 'UNAVAILABLE');
    await expectStorageError(store.put('k', Buffer.from('x')), 'UNAVAILABLE');
  });

  test('object files stay inside rootDir and temp files are gone after success and failure', async () => {
    const root = tempRoot();
    const store = new LocalObjectStore(root);
    const keys = ['a', 'a/b', '.hidden/x', 'x/.tmp/y', '..x/y..', '%2e%2e/z', 'sp ace/\u00fc'];
    for (const k of keys) await store.put(k, Buffer.from(k));
    await expect(store.put('broken', new Readable({ read() { this.destroy(new Error('boom')); } }))).rejects.toThrow('boom');
    await expectStorageError(store.put('big', Buffer.alloc(10), { maxBytes: 5 }), 'TOO_LARGE');
    await expectStorageError(store.put('dig', Buffer.alloc(10), { expectedSha256: sha256(Buffer.alloc(11)) }), 'DIGEST_MISMATCH');

    const files = await filesUnder(root);
    for (const f of files) expect(f.startsWith(root + path.sep)).toBe(true);
    expect(files.filter((f) => f.startsWith(path.join(root, '.tmp') + path.sep))).toEqual([]);
    expect(files.filter((f) => f.endsWith('~obj'))).toHaveLength(keys.length);
    for (const k of keys) expect(files).toContain(store.pathFor(k));
    // Nothing outside the object files and the temp folder.
    expect(files.length).toBe(keys.length);
    // No name starts with '.', so no key can reach the temp folder or a parent directory.
    for (const f of files) for (const seg of path.relative(root, f).split(path.sep)) expect(seg.startsWith('.')).toBe(false);
  });

  test('file layout: data followed by the metadata trailer, published by one rename', async () => {
    const root = tempRoot();
    const store = new LocalObjectStore(root);
    await store.put('assets/abc', Buffer.from('DATA'), { contentType: 'text/plain' });
    const file = store.pathFor('assets/abc');
    expect(path.relative(root, file)).toBe(path.join('assets', 'abc~obj'));
    const raw = await fsp.readFile(file);
    expect(raw.subarray(0, 4).toString()).toBe('DATA');
    expect(raw.subarray(-8).toString('latin1')).toBe('\nFSOBJ1\n');
    const meta = JSON.parse(raw.subarray(4, raw.length - 12).toString());
    expect(meta).toMatchObject({ v: 1, key: 'assets/abc', size: 4, sha256: sha256(Buffer.from('DATA')), contentType: 'text/plain' });
  });

  test('an open reader keeps reading the version it opened while the key is replaced or deleted', async () => {
    const store = createLocalStore(tempRoot());
    const v1 = Buffer.alloc(3 * MiB, 1);
    const v2 = Buffer.alloc(2 * MiB, 2);
    await store.put('k', v1);
    const reader = await store.get('k');
    const ranged = await store.get('k', { start: MiB, end: 2 * MiB - 1 });
    await store.put('k', v2);
    const reader2 = await store.get('k');
    await store.delete('k');
    expectBytes(await readAll(reader!.body), v1);
    expectBytes(await readAll(ranged!.body), v1.subarray(MiB, 2 * MiB));
    expectBytes(await readAll(reader2!.body), v2);
    expect(await store.head('k')).toBeNull();
  });

  test('stray and foreign files are ignored by list and head', async () => {
    const root = tempRoot();
    const store = new LocalObjectStore(root);
    await store.put('real/one', Buffer.from('1'));
    await store.put('real/two', Buffer.from('2'));
    writeFileSync(path.join(root, 'real', 'README'), 'not an object');
    writeFileSync(path.join(root, 'real', 'junk~obj'), 'no trailer here');
    // An object file copied to another key's path is not served as that key.
    await fsp.copyFile(store.pathFor('real/one'), path.join(root, 'real', 'three~obj'));
    writeFileSync(path.join(root, '.tmp', 'leftover.part'), 'partial write');
    expect((await collect(store.list(''))).map((i) => i.key)).toEqual(['real/one', 'real/two']);
    expect(await store.head('real/junk')).toBeNull();
  });

  test('delete prunes empty directories and a concurrent put into them still lands', async () => {
    const root = tempRoot();
    const store = new LocalObjectStore(root);
    await store.put('d1/d2/d3/k', Buffer.from('x'));
    await store.delete('d1/d2/d3/k');
    expect(await fsp.readdir(root)).toEqual(['.tmp']);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 2 ? store.put(`p/q/k${i}`, Buffer.from(String(i))) : store.put('p/q/k0', Buffer.from('0')).then(() => store.delete('p/q/k0')),
      ),
    );
    const keys = (await collect(store.list('p/'))).map((i) => i.key);
    expect(keys).toHaveLength(15);
  });

  test('list with a partial segment prefix and shortened long segments', async () => {
    const store = createLocalStore(tempRoot());
    const long1 = `dir/${'y'.repeat(250)}-one`;
    const long2 = `dir/${'y'.repeat(250)}-two/child`;
    await store.put(long1, Buffer.from('1'));
    await store.put(long2, Buffer.from('2'));
    await store.put('dir/yz', Buffer.from('3'));
    expect((await collect(store.list('dir/yy'))).map((i) => i.key)).toEqual([long1, long2]);
    expect((await collect(store.list(`dir/${'y'.repeat(250)}-t`))).map((i) => i.key)).toEqual([long2]);
    expect((await collect(store.list('dir/y'))).map((i) => i.key)).toEqual([long1, long2, 'dir/yz']);
  });
});
