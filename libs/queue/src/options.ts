import type { JobsOptions } from 'bullmq';

/**
 * Completed jobs are kept for a while so that waitUntilFinished never races a deletion and so that a repeated
 * deterministic jobId finds its answer; failed ones stay longer for inspection. Transient failures are retried
 * with exponential backoff; permanent ones are Replies and never fail the job.
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 300, count: 5000 },
  removeOnFail: { age: 24 * 3600, count: 5000 },
};

/** How a worker holds its running jobs and finds those of dead workers (see BUILD_JOB_LOCKING). */
export interface JobLocking {
  /** A running job's lock lives this long unless renewed; the worker renews it about every lockDuration/2. */
  lockDuration: number;
  /** How often each worker looks for stalled jobs: active jobs whose lock expired (their worker is gone). */
  stalledInterval: number;
  /** Stalls a job survives; one more and it fails (the client gets a 500). */
  maxStalledCount: number;
}

/**
 * Lock and stall settings of the build queue (README, "Scaling out"). A build-worker that dies without a word (kill -9,
 * OOM kill of the worker itself, a lost node) leaves its job active with a lock nobody renews: another worker moves it
 * back to the queue at its next stall check after the lock expired, and the job's waiting clients get the rebuilt
 * asset. Detection takes at most lockDuration + stalledInterval (35 s), on average about 25 s.
 *
 * - lockDuration 30 s: the lock is renewed by the worker's main process, whose event loop does nothing but IPC with the
 *   sandboxes and Redis calls, so only CPU starvation (builds' tool threads saturating the cores, a container's CPU
 *   quota throttling it), a long GC or a slow Redis can delay a renewal. A renewal more than ~15 s late (lockDuration/2)
 *   is a false stall: a second worker starts the same build while the first still runs it (wasted work, not wrong
 *   bytes: both publish the same verified object). 15 s is about 75× the largest event-loop lag measured during
 *   builds on 2 overloaded cores (206 ms, bench/scale-out.js prints it); a shorter lock would buy faster takeover of a
 *   crash, which is rare, with a risk of duplicated builds under load, which is common.
 * - stalledInterval 5 s: the check is one short Lua script per worker; checking often keeps the takeover close to the
 *   lock's expiry at a negligible cost (N workers: N scripts every 5 s).
 * - maxStalledCount 2: a stall is never the build's own fault (a crashing or runaway build kills its sandbox, which fails
 *   the job normally, with retries and backoff), so a build survives two lost workers before its clients get an error.
 *
 * A graceful stop (SIGTERM) never goes through stall detection: the worker finishes its builds within
 * BUILD_SHUTDOWN_GRACE or hands them back at once (serveQueue's `stop`).
 */
export const BUILD_JOB_LOCKING: JobLocking = { lockDuration: 30_000, stalledInterval: 5_000, maxStalledCount: 2 };

/**
 * V8 flags of the build sandboxes (the child processes builds run in).
 *
 * `--initial-old-space-size=256`: a build reads its image through ~57 MB of fresh buffers (the upload that overlaps
 * the writer keeps each chunk until sent), and V8 counts them towards the heap's growth. With the default starting
 * limit a 26 MB heap was collected in full ~3 times per ISO build (V8's trace: "GC in old space requested"), ~100 ms
 * of marking per build on the cores xorriso and the upload need. Starting the old generation at 256 MB: 5 full
 * collections in 10 builds instead of 31, the sandbox's CPU per build ~20 % lower (0.44 vs 0.55 CPU-s per cold ISO),
 * at a sandbox RSS of ~300 MB after 10 builds (~240 MB before). Dead buffers are still freed by the young
 * generation's collections and by the full ones that do run.
 */
export const BUILD_SANDBOX_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=256'];
