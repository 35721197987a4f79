/** Digests of files the builders just wrote. */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { startDigests } from './hash-thread';

export interface FileDigest {
  /** lower-case hex SHA-256 (what the asset's signed statement names; its SHA-512 is derived on request) */
  sha256: string;
  size: number;
  /** lower-case hex MD5, when the builder computed it on the way (an S3 server's ETag of the same bytes) */
  md5?: string;
}

/**
 * SHA-256 and size of a file (with `md5`, its MD5 too, in the same pass), read in 4 MiB synchronous chunks. For a
 * file just written (in the page cache) this is several times faster than a stream of 64 KiB asynchronous reads; the
 * hash itself runs at ~1.4 GB/s with SHA-NI.
 * It blocks the event loop for the duration (~50 ms per 64 MiB), which build processes can afford.
 */
export function hashFileSync(file: string, o: { md5?: boolean } = {}): FileDigest {
  const [sha256, md5] = digestFileSync(file, o.md5 ? ['sha256', 'md5'] : ['sha256']);
  return { sha256: sha256.hex, size: sha256.size, ...(md5 ? { md5: md5.hex } : {}) };
}

/** MD5 of a file (what an S3 server reports as the ETag of a single-part upload), read like hashFileSync. */
export function md5FileSync(file: string): string {
  return digestFileSync(file, ['md5'])[0].hex;
}

function digestFileSync(file: string, algorithms: string[]): Array<{ hex: string; size: number }> {
  const hashes = algorithms.map((a) => createHash(a));
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  const fd = openSync(file, 'r');
  let size = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      for (const h of hashes) h.update(buf.subarray(0, n));
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  return hashes.map((h) => ({ hex: h.digest('hex'), size }));
}

const FOLLOW_CHUNK = 4 * 1024 * 1024;
const FOLLOW_IDLE_MS = 5;

/**
 * Where the bytes of a file being written also go, as they are read (see digestWhileWritten): e.g. an upload that
 * overlaps the writer. It needs the final size before the first byte (a Content-Length), so it starts only when the
 * file's first `headBytes` bytes declare it.
 */
export interface WhileWrittenConsumer {
  headBytes: number;
  /** The file's final size as its first bytes declare it; undefined: not declared (nothing is streamed). */
  declaredSize(head: Buffer): number | undefined;
  /**
   * Takes the file's bytes: exactly the bytes the digests describe, in order. `body` fails (instead of ending)
   * when the writer failed or the file could not be read, so a consumer never takes a failed file as whole.
   */
  take(size: number, body: Readable): Promise<void>;
}

/**
 * SHA-256 (and with `md5`, MD5) of a file *while another process writes it* front to back, so that hashing
 * overlaps the writer instead of following it (xorriso writes its images sequentially: the GPT completeness check of
 * runXorrisoImage relies on the same order). Reads up to the size the file has at each moment and, once `writerDone`
 * settles, to its end. With `to`, the same bytes also go to a consumer as they are read (`streamed`: they did; the
 * promise settles once the consumer is done). A writer that went back and changed bytes already read would make these
 * digests (and the streamed bytes) describe what was read, not the file: callers that publish the file itself check
 * its SHA-256 again (the object stores do, expectedSha256); streamed bytes are published with these digests.
 */
export async function digestWhileWritten(file: string, writerDone: Promise<unknown>, o: { md5?: boolean; to?: WhileWrittenConsumer } = {}): Promise<FileDigest & { streamed: boolean }> {
  let failure: unknown;
  let finished = false;
  const settled = writerDone.then(
    () => void (finished = true),
    (err: unknown) => {
      failure = err;
      finished = true;
    },
  );
  const idle = () => Promise.race([new Promise((r) => setTimeout(r, FOLLOW_IDLE_MS)), settled]);
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  while (!fh) {
    const wasFinished = finished;
    fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' || wasFinished) throw err;
      return undefined;
    });
    if (!fh) await idle();
  }
  // on the hash thread: the reads, and the consumer's upload, go on while the digests are computed
  const digests = startDigests(o.md5 ? ['sha256', 'md5'] : ['sha256']);
  const consumer = o.to;
  /** the first bytes, kept until they say whether (and how much) to stream */
  let head: Buffer[] | undefined = consumer ? [] : undefined;
  let body: PassThrough | undefined;
  let taking: Promise<void> | undefined;
  let buf = Buffer.allocUnsafe(FOLLOW_CHUNK);
  let size = 0;
  try {
    for (;;) {
      // a failed writer's file is never whole: stop (and fail the consumer's body) at once
      if (failure !== undefined) throw failure;
      // read `finished` before reading: a read that returns 0 after the writer was done is the end
      const wasFinished = finished;
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead > 0) {
        // the consumer keeps the chunk: hand over the buffer when it is mostly used, else a copy
        let chunk: Buffer;
        if (!consumer) chunk = buf.subarray(0, bytesRead);
        else if (bytesRead >= FOLLOW_CHUNK / 2) {
          chunk = buf.subarray(0, bytesRead);
          buf = Buffer.allocUnsafe(FOLLOW_CHUNK);
        } else chunk = Buffer.from(buf.subarray(0, bytesRead));
        await digests.update(chunk);
        size += bytesRead;
        if (head) {
          head.push(chunk);
          if (size >= consumer!.headBytes) {
            const first = Buffer.concat(head);
            head = undefined;
            const declared = consumer!.declaredSize(first);
            if (declared !== undefined) {
              body = new PassThrough({ highWaterMark: 2 * FOLLOW_CHUNK });
              const taken = body;
              taking = consumer!.take(declared, taken);
              // A consumer that is done before the body ended (it failed, or gave up) takes no more: its body goes, so
              // that feeding it fails instead of waiting forever; its failure is reported below.
              const stopped = () => void (taken.writableEnded || taken.destroy());
              taking.then(stopped, stopped);
              await feed(body, first);
            }
          }
        } else if (body) await feed(body, chunk);
        continue;
      }
      if (wasFinished) break;
      await idle();
    }
    if (failure !== undefined) throw failure;
  } catch (err) {
    digests.abort();
    body?.destroy(err instanceof Error ? err : new Error(String(err)));
    const consumerFailure: unknown = await taking?.then(() => undefined, (e: unknown) => e);
    // a consumer that stopped taking says why; else the writer's or the reader's failure
    throw err instanceof ConsumerGone && consumerFailure !== undefined ? consumerFailure : err;
  } finally {
    await fh.close();
  }
  let hex: string[];
  try {
    if (body) body.end();
    [hex] = await Promise.all([digests.digest(), taking]);
  } catch (err) {
    digests.abort();
    throw err;
  }
  const [sha256, md5] = hex;
  return { sha256, ...(md5 ? { md5 } : {}), size, streamed: body !== undefined };
}

class ConsumerGone extends Error {
  constructor() {
    super('the consumer of the file stopped taking it');
  }
}

/** Writes a chunk, waiting while the consumer is behind; fails when the consumer went away. */
async function feed(body: PassThrough, chunk: Buffer): Promise<void> {
  if (body.destroyed) throw new ConsumerGone();
  if (body.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      body.off('drain', done);
      body.off('close', closed);
      if (err) reject(err);
      else resolve();
    };
    const closed = () => done(new ConsumerGone());
    body.on('drain', done);
    body.on('close', closed);
  });
}
