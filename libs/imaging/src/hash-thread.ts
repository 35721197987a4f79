/**
 * Digests computed on a worker thread, off the event loop of the process that streams the bytes.
 *
 * Why: a build streams an image to S3 while it is written (digestWhileWritten). Hashing SHA-256 + SHA-512 + MD5 on
 * the same thread that feeds the upload socket takes ~240 ms of CPU per 56 MB ISO, during which the socket is not
 * fed: measured against s3rver, a 56 MB PutObject took 250–315 ms alone and 460–480 ms with the three digests on the
 * sending thread. On a second thread the digests overlap the upload instead of delaying it.
 *
 * One thread per process, started on first use and shared by the builds of that process (unref'd: it never keeps a
 * process alive). Chunks are copied to it (a 4 MiB copy costs well under a millisecond) and acknowledged, and a
 * sender waits once more than MAX_PENDING_BYTES are unacknowledged, so memory stays bounded whatever the file size.
 * Where no worker thread can be started, the digests are computed inline, as before.
 */
import { createHash, Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const MAX_PENDING_BYTES = 32 * 1024 * 1024;

/** The thread's program: named digests per job id; `c` chunks are acknowledged with their length. */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.t === 'start') jobs.set(m.id, m.algorithms.map((a) => createHash(a)));
    else if (m.t === 'chunk') {
      const hashes = jobs.get(m.id);
      if (hashes) { const view = new Uint8Array(m.buf); for (const h of hashes) h.update(view); }
      parentPort.postMessage({ t: 'ack', id: m.id, len: m.buf.byteLength });
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
  pending: number;
  waiter?: () => void;
  done?: { resolve: (hex: string[]) => void; reject: (err: Error) => void };
  failed?: Error;
}

class HashThread {
  private readonly jobs = new Map<number, JobState>();
  private nextId = 1;
  /** the thread failed or exited: a new one is started for the next digester */
  dead = false;

  constructor(private readonly worker: Worker) {
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
    for (const job of this.jobs.values()) {
      job.failed = err;
      job.waiter?.();
      job.done?.reject(err);
    }
    this.jobs.clear();
  }

  private forget(id: number): void {
    if (this.jobs.delete(id) && this.jobs.size === 0) this.worker.unref();
  }

  private onMessage(m: ThreadMessage): void {
    const job = this.jobs.get(m.id);
    if (!job) return;
    if (m.t === 'ack') {
      job.pending -= m.len;
      if (job.pending <= MAX_PENDING_BYTES && job.waiter) {
        const w = job.waiter;
        job.waiter = undefined;
        w();
      }
    } else if (m.t === 'digest') {
      this.forget(m.id);
      if (m.hex) job.done?.resolve(m.hex);
      else job.done?.reject(new Error('hash thread lost the job'));
    } else {
      this.forget(m.id);
      job.failed = new Error(`hash thread: ${m.message}`);
      job.waiter?.();
      job.done?.reject(job.failed);
    }
  }

  digester(algorithms: string[]): Digester {
    const id = this.nextId++;
    const job: JobState = { pending: 0 };
    this.jobs.set(id, job);
    if (this.jobs.size === 1) this.worker.ref();
    this.worker.postMessage({ t: 'start', id, algorithms });
    return {
      update: async (chunk) => {
        if (job.failed) throw job.failed;
        // a copy of its own, transferred (not copied again) to the thread
        const copy = new Uint8Array(chunk.length);
        copy.set(chunk);
        job.pending += copy.byteLength;
        this.worker.postMessage({ t: 'chunk', id, buf: copy.buffer }, [copy.buffer]);
        if (job.pending > MAX_PENDING_BYTES) await new Promise<void>((resolve) => (job.waiter = resolve));
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
    thread = new HashThread(new Worker(THREAD_SOURCE, { eval: true }));
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
