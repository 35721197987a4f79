/**
 * digestWhileWritten (libs/imaging/src/digest.ts): a file hashed, and handed to a consumer, while another writer
 * appends to it — the consumer gets exactly the bytes the digests describe, and a failed writer fails its body.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { digestWhileWritten, WhileWrittenConsumer } from '../src/digest';

let tmp: string;
beforeEach(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'while-written-'))));
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A writer appending `parts` with pauses (after a first part that declares the total size in its first 4 bytes). */
async function write(file: string, parts: Buffer[], o: { failAfter?: number } = {}): Promise<void> {
  writeFileSync(file, Buffer.alloc(0));
  for (const [i, p] of parts.entries()) {
    if (o.failAfter === i) throw new Error('the writer failed');
    appendFileSync(file, p);
    await pause(15);
  }
}

function sizedParts(total: number, n: number): { whole: Buffer; parts: Buffer[] } {
  const whole = randomBytes(total);
  whole.writeUInt32LE(total, 0);
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(whole.subarray(Math.floor((i * total) / n), Math.floor(((i + 1) * total) / n)));
  return { whole, parts };
}

/** A consumer that collects what it is handed; the size comes from the first 4 bytes. */
function collector(o: { declares?: boolean } = {}) {
  const got: { size?: number; bytes?: Buffer; error?: Error } = {};
  const consumer: WhileWrittenConsumer = {
    headBytes: 4,
    declaredSize: (head) => (o.declares === false ? undefined : head.readUInt32LE(0)),
    take: async (size: number, body: Readable) => {
      got.size = size;
      const chunks: Buffer[] = [];
      try {
        for await (const c of body) chunks.push(c as Buffer);
      } catch (err) {
        got.error = err as Error;
        throw err;
      }
      got.bytes = Buffer.concat(chunks);
    },
  };
  return { got, consumer };
}

test('the consumer takes exactly the bytes written, starting before the writer is done', async () => {
  const file = path.join(tmp, 'img');
  const { whole, parts } = sizedParts(3 * 1024 * 1024 + 17, 6);
  const { got, consumer } = collector();
  let writerDone = false;
  let takenBeforeDone = false;
  const writing = write(file, parts).then(() => void (writerDone = true));
  const wrapped = { ...consumer, take: (size: number, body: Readable) => ((takenBeforeDone = !writerDone), consumer.take(size, body)) };
  const d = await digestWhileWritten(file, writing, { md5: true, to: wrapped });
  expect(takenBeforeDone).toBe(true);
  expect(d).toEqual({ size: whole.length, sha256: hex('sha256', whole), md5: hex('md5', whole), streamed: true });
  expect(got.size).toBe(whole.length);
  expect(got.bytes!.equals(whole)).toBe(true);
});

test('a writer that fails fails the consumer body (it never sees a clean end) and the digest', async () => {
  const file = path.join(tmp, 'img');
  const { parts } = sizedParts(1024 * 1024, 4);
  const { got, consumer } = collector();
  await expect(digestWhileWritten(file, write(file, parts, { failAfter: 2 }), { to: consumer })).rejects.toThrow('the writer failed');
  expect(got.size).toBe(1024 * 1024);
  expect(got.error).toBeDefined();
  expect(got.bytes).toBeUndefined();
});

test('a consumer that fails fails the digest with its own error', async () => {
  const file = path.join(tmp, 'img');
  const { parts } = sizedParts(2 * 1024 * 1024, 8);
  const consumer: WhileWrittenConsumer = {
    headBytes: 4,
    declaredSize: (head) => head.readUInt32LE(0),
    take: async (_size, body) => {
      for await (const _c of body) throw new Error('the upload broke');
    },
  };
  await expect(digestWhileWritten(file, write(file, parts), { to: consumer })).rejects.toThrow('the upload broke');
});

test('a file whose first bytes declare no size is hashed only', async () => {
  const file = path.join(tmp, 'img');
  const { whole, parts } = sizedParts(64 * 1024, 3);
  const { got, consumer } = collector({ declares: false });
  const d = await digestWhileWritten(file, write(file, parts), { to: consumer });
  expect(d).toMatchObject({ size: whole.length, sha256: hex('sha256', whole), streamed: false });
  expect(got.size).toBeUndefined();
});

test('a consumer that returns without taking everything fails the digest instead of stalling it', async () => {
  const file = path.join(tmp, 'img');
  const { parts } = sizedParts(24 * 1024 * 1024, 6);
  const consumer: WhileWrittenConsumer = { headBytes: 4, declaredSize: (head) => head.readUInt32LE(0), take: async () => undefined };
  await expect(digestWhileWritten(file, write(file, parts), { to: consumer })).rejects.toThrow('stopped taking');
});
