/** Digests of files the builders just wrote. */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

export interface FileDigest {
  /** lower-case hex SHA-256 */
  sha256: string;
  /** lower-case hex SHA-512 (the asset's `.sha512`, computed once here rather than from stored bytes later) */
  sha512: string;
  size: number;
  /** lower-case hex MD5, when the builder computed it on the way (an S3 server's ETag of the same bytes) */
  md5?: string;
}

/**
 * SHA-256, SHA-512 and size of a file, read in 4 MiB synchronous chunks. For a file just written (in the page cache) this is
 * several times faster than a stream of 64 KiB asynchronous reads; the hash itself runs at ~1.4 GB/s with SHA-NI.
 * It blocks the event loop for the duration (~50 ms per 64 MiB), which build processes can afford.
 */
export function hashFileSync(file: string): FileDigest {
  const [sha256, sha512] = digestFileSync(file, ['sha256', 'sha512']);
  return { sha256: sha256.hex, sha512: sha512.hex, size: sha256.size };
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
 * SHA-256, SHA-512 (and with `md5`, MD5) of a file *while another process writes it* front to back, so that hashing overlaps the
 * writer instead of following it (xorriso writes its images sequentially: the GPT completeness check of
 * runXorrisoImage relies on the same order). Reads up to the size the file has at each moment and, once `writerDone`
 * settles, to its end. A writer that went back and changed bytes already read would make these digests wrong: they
 * describe the bytes read, so whoever publishes the file checks the SHA-256 against the file again (the object
 * stores do, expectedSha256) and fails instead of publishing.
 */
export async function digestWhileWritten(file: string, writerDone: Promise<unknown>, o: { md5?: boolean } = {}): Promise<FileDigest> {
  let finished = false;
  const settled = writerDone.then(
    () => void (finished = true),
    () => void (finished = true),
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
  const sha256 = createHash('sha256');
  const sha512 = createHash('sha512');
  const md5 = o.md5 ? createHash('md5') : undefined;
  const buf = Buffer.allocUnsafe(FOLLOW_CHUNK);
  let size = 0;
  try {
    for (;;) {
      // read `finished` before reading: a read that returns 0 after the writer was done is the end
      const wasFinished = finished;
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead > 0) {
        const chunk = buf.subarray(0, bytesRead);
        sha256.update(chunk);
        sha512.update(chunk);
        md5?.update(chunk);
        size += bytesRead;
        continue;
      }
      if (wasFinished) break;
      await idle();
    }
  } finally {
    await fh.close();
  }
  return { sha256: sha256.digest('hex'), sha512: sha512.digest('hex'), ...(md5 ? { md5: md5.digest('hex') } : {}), size };
}
