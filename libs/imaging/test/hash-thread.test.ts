/**
 * The hash thread (hash-thread.ts): digests equal to node:crypto's inline ones whatever the chunking, jobs kept apart
 * (also when they share the ring's space and its wrap-around), memory bounded by acknowledgements, an aborted job leaves the thread usable, and a process with only a digest
 * pending is kept alive until it arrives.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { startDigests } from '../src/hash-thread';

const inline = (data: Buffer, algorithms: string[]) => algorithms.map((a) => createHash(a).update(data).digest('hex'));

test('same digests as inline hashing, for any chunking; concurrent jobs do not mix', async () => {
  const data = randomBytes(9 * 1024 * 1024 + 17);
  const algorithms = ['sha256', 'sha512', 'md5'];
  const a = startDigests(algorithms);
  const b = startDigests(['sha256']);
  for (let off = 0, n = 1; off < data.length; off += n, n = n * 3 + 1) {
    const chunk = Buffer.from(data.subarray(off, off + n));
    await a.update(chunk);
    chunk.fill(0); // the caller may reuse its buffer at once: the thread reads its own copy in the ring
    await b.update(Buffer.alloc(1, 7));
  }
  expect(await a.digest()).toEqual(inline(data, algorithms));
  expect((await b.digest())[0]).toHaveLength(64);
  expect(await startDigests(algorithms, { inline: true }).digest()).toEqual(inline(Buffer.alloc(0), algorithms));
});

test('concurrent jobs sharing the ring: pieces that wrap around its end and senders that wait for space keep every digest exact', async () => {
  // 3 MiB + 1 pieces never tile the 32 MiB ring: each lap skips its end and starts over at 0
  const piece = 3 * 1024 * 1024 + 1;
  const datas = [randomBytes(40 * piece), randomBytes(40 * piece)];
  const jobs = datas.map(() => startDigests(['sha256', 'md5']));
  await Promise.all(jobs.map(async (d, j) => {
    for (let off = 0; off < datas[j].length; off += piece) {
      const chunk = Buffer.from(datas[j].subarray(off, off + piece));
      await d.update(chunk);
      chunk.fill(0xff);
    }
  }));
  expect(await Promise.all(jobs.map((d) => d.digest()))).toEqual(datas.map((data) => inline(data, ['sha256', 'md5'])));
});

test('a fast producer waits for the thread: unacknowledged bytes stay bounded (the 32 MiB ring, not all of it)', async () => {
  const chunk = Buffer.alloc(4 * 1024 * 1024, 1);
  const d = startDigests(['sha512']);
  // unhashed bytes live in the ring until hashed: the process's RSS shows them wherever they are
  let maxGrowth = 0;
  const base = process.memoryUsage().rss;
  for (let i = 0; i < 128; i++) {
    await d.update(chunk);
    maxGrowth = Math.max(maxGrowth, process.memoryUsage().rss - base);
  }
  const h = createHash('sha512');
  for (let i = 0; i < 128; i++) h.update(chunk);
  expect(await d.digest()).toEqual([h.digest('hex')]);
  // 512 MiB went through; what is held at any time is far below that (the thread itself costs some 40 MB of RSS)
  expect(maxGrowth).toBeLessThan(200 * 1024 * 1024);
});

test('an aborted job is dropped; the thread keeps serving others', async () => {
  const gone = startDigests(['sha256']);
  await gone.update(Buffer.from('half'));
  gone.abort();
  gone.abort(); // twice is harmless
  const next = startDigests(['sha256']);
  await next.update(Buffer.from('abc'));
  expect(await next.digest()).toEqual(inline(Buffer.from('abc'), ['sha256']));
});

test('a process whose only pending work is a digest stays alive until it arrives (the thread is referenced while busy)', () => {
  const lib = path.join(__dirname, '..', 'dist', 'hash-thread.js');
  const out = execFileSync(process.execPath, ['-e', `const {startDigests}=require(${JSON.stringify(lib)});const d=startDigests(['sha256']);d.update(Buffer.from('abc')).then(()=>d.digest()).then((h)=>console.log(h[0]));`], { encoding: 'utf8' });
  expect(out.trim()).toBe(inline(Buffer.from('abc'), ['sha256'])[0]);
});
