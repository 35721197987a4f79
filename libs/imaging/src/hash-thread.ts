/**
 * Digests computed on a worker thread, off the event loop of the process that streams the bytes.
 *
 * Why: a build streams an image to S3 while it is written (digestWhileWritten). Hashing SHA-256 + SHA-512 + MD5 on
 * the same thread that feeds the upload socket takes ~240 ms of CPU per 56 MB ISO, during which the socket is not
 * fed: measured against s3rver, a 56 MB PutObject took 250–315 ms alone and 460–480 ms with the three digests on the
 * sending thread. On a second thread the digests overlap the upload instead of delaying it.
 *
 * One thread per process, started on first use and shared by the builds of that process (unref'd: it never keeps a
 * process alive). Chunks are copied into a ring of shared memory the thread reads from, and acknowledged once
 * hashed; a sender waits while the ring is full, so memory stays bounded (RING_BYTES) whatever the file size. The
 * ring is allocated once: a fresh buffer per chunk cost the sending thread ~75 ms per 56 MB ISO in page faults and
 * garbage collection (and made every child process it spawned slower to fork), which the ring's copy into memory
 * already mapped does not. Where no worker thread can be started, the digests are computed inline, as before.
 */
import { createHash, Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** The shared ring: unacknowledged bytes of all of the process's jobs together never exceed it. */
const RING_BYTES = 32 * 1024 * 1024;
/** Chunks are cut to at most this, so that a few are in flight in the ring at once. */
const MAX_PIECE = 4 * 1024 * 1024;

/**
 * The thread's program: named digests per job id; `c` chunks ([off, off+len) of the shared ring) are acknowledged
 * in the order they came, whether or not their job is still there (the ring's space is the sender's to reuse).
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const ring = new Uint8Array(workerData.ring);
const jobs = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.t === 'start') jobs.set(m.id, m.algorithms.map((a) => createHash(a)));
    else if (m.t === 'chunk') {
      try {
        const hashes = jobs.get(m.id);
        if (hashes) { const view = ring.subarray(m.off, m.off + m.len); for (const h of hashes) h.update(view); }
      } finally {
        parentPort.postMessage({ t: 'ack', id: m.id, len: m.len });
      }
    } else if (m.t === 'end') {
      const hashes = jobs.get(m.id);
      jobs.delete(m.id);
      parentPort.postMessage({ t: 'digest', id: m.id, hex: hashes ? hashes.map((h) => h.digest('hex')) : undefined });
    } else if (m.t === 'abort') jobs.delete(m.id);
  } catch (err) {
    jobs.delete(m.id);
    parentPort.postMessage({ t: 'error', id: m.id, message: String(err && err.message || err) });
  }
});
`;

type ThreadMessage = { t: 'ack'; id: number; len: number } | { t: 'digest'; id: number; hex?: string[] } | { t: 'error'; id: number; message: string };

/** Streaming digests of one byte sequence: feed chunks in order, then ask for the hex digests (in algorithm order). */
export interface Digester {
  /** Takes a chunk (the caller may reuse its buffer afterwards); resolves at once unless the thread is far behind. */
  update(chunk: Buffer): Promise<void>;
  digest(): Promise<string[]>;
  /** Drops the job (the caller failed); never throws. */
  abort(): void;
}

interface JobState {
  done?: { resolve: (hex: string[]) => void; reject: (err: Error) => void };
  failed?: Error;
}

/**
 * Space in the shared ring, handed out front to back and freed in the same order (the thread acknowledges chunks in
 * the order they were posted). A piece that does not fit before the ring's end starts over at 0; the skipped end is
 * freed with it. Waiting senders are served in arrival order.
 */
class RingSpace {
  /** next offset to hand out */
  private head = 0;
  /** bytes in use, the skipped ends included */
  private used = 0;
  /** what each posted piece holds, in posting order (its length plus any skipped end before it) */
  private readonly held: number[] = [];
  private readonly waiting: Array<{ len: number; grant: (off: number) => void; fail: (err: Error) => void }> = [];

  constructor(readonly size: number) {}

  private tryTake(len: number): number | undefined {
    const skip = this.head + len > this.size ? this.size - this.head : 0;
    if (this.used + skip + len > this.size) return undefined;
    const off = skip ? 0 : this.head;
    this.head = off + len === this.size ? 0 : off + len;
    this.used += skip + len;
    this.held.push(skip + len);
    return off;
  }

  /** An offset where `len` (≤ size) bytes may be written, once that much space is free. */
  take(len: number): Promise<number> | number {
    if (this.waiting.length === 0) {
      const off = this.tryTake(len);
      if (off !== undefined) return off;
    }
    return new Promise((grant, fail) => this.waiting.push({ len, grant, fail }));
  }

  /** The oldest piece was hashed. */
  free(): void {
    this.used -= this.held.shift() ?? 0;
    if (this.used === 0) this.head = 0;
    while (this.waiting.length > 0) {
      const off = this.tryTake(this.waiting[0].len);
      if (off === undefined) break;
      this.waiting.shift()!.grant(off);
    }
  }

  failAll(err: Error): void {
    for (const w of this.waiting.splice(0)) w.fail(err);
  }
}

class HashThread {
  private readonly jobs = new Map<number, JobState>();
  private nextId = 1;
  /** the thread failed or exited: a new one is started for the next digester */
  dead = false;

  constructor(
    private readonly worker: Worker,
    private readonly ring: Buffer,
    private readonly space: RingSpace,
  ) {
    // referenced only while it has jobs: an idle thread never keeps its process alive, a busy one does (a caller
    // awaiting a digest may have nothing else pending)
    worker.unref();
    worker.on('message', (m: ThreadMessage) => this.onMessage(m));
    // A dead thread fails its jobs; the next digester starts a new thread (see hashThread()).
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => this.failAll(new Error(`hash thread exited with code ${code}`)));
  }

  private failAll(err: Error): void {
    this.dead = true;
    this.space.failAll(err);
    for (const job of this.jobs.values()) {
      job.failed = err;
      job.done?.reject(err);
    }
    this.jobs.clear();
  }

  private forget(id: number): void {
    if (this.jobs.delete(id) && this.jobs.size === 0) this.worker.unref();
  }

  private onMessage(m: ThreadMessage): void {
    // every chunk is acknowledged, its job gone or not: its space is free again
    if (m.t === 'ack') return this.space.free();
    const job = this.jobs.get(m.id);
    if (!job) return;
    if (m.t === 'digest') {
      this.forget(m.id);
      if (m.hex) job.done?.resolve(m.hex);
      else job.done?.reject(new Error('hash thread lost the job'));
    } else {
      this.forget(m.id);
      job.failed = new Error(`hash thread: ${m.message}`);
      job.done?.reject(job.failed);
    }
  }

  digester(algorithms: string[]): Digester {
    const id = this.nextId++;
    const job: JobState = {};
    this.jobs.set(id, job);
    if (this.jobs.size === 1) this.worker.ref();
    this.worker.postMessage({ t: 'start', id, algorithms });
    return {
      update: async (chunk) => {
        for (let at = 0; at < chunk.length; at += MAX_PIECE) {
          if (job.failed) throw job.failed;
          const piece = chunk.subarray(at, at + MAX_PIECE);
          const taken = this.space.take(piece.length);
          const off = typeof taken === 'number' ? taken : await taken;
          // copied into the ring (the caller may reuse its buffer at once); the thread reads it there
          piece.copy(this.ring, off);
          this.worker.postMessage({ t: 'chunk', id, off, len: piece.length });
        }
        if (job.failed) throw job.failed;
      },
      digest: () =>
        new Promise<string[]>((resolve, reject) => {
          if (job.failed) return reject(job.failed);
          job.done = { resolve, reject };
          this.worker.postMessage({ t: 'end', id });
        }),
      abort: () => {
        if (!this.jobs.has(id)) return;
        this.forget(id);
        if (!this.dead) this.worker.postMessage({ t: 'abort', id });
      },
    };
  }
}

let thread: HashThread | undefined;

function hashThread(): HashThread | undefined {
  if (thread && !thread.dead) return thread;
  try {
    const ring = new SharedArrayBuffer(RING_BYTES);
    thread = new HashThread(new Worker(THREAD_SOURCE, { eval: true, workerData: { ring } }), Buffer.from(ring), new RingSpace(RING_BYTES));
  } catch {
    thread = undefined;
  }
  return thread;
}

function inlineDigester(algorithms: string[]): Digester {
  const hashes: Hash[] = algorithms.map((a) => createHash(a));
  return {
    update: async (chunk) => {
      for (const h of hashes) h.update(chunk);
    },
    digest: async () => hashes.map((h) => h.digest('hex')),
    abort: () => undefined,
  };
}

/** Digests of a byte sequence fed in order, computed on the process's hash thread (inline when there is none). */
export function startDigests(algorithms: string[], o: { inline?: boolean } = {}): Digester {
  const t = o.inline ? undefined : hashThread();
  return t ? t.digester(algorithms) : inlineDigester(algorithms);
}
