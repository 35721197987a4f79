/**
 * The build records of `build.asset` jobs (@factory/builds), written where the truth is: from this worker's own job
 * events — taken (running), progress reported by the sandbox (stage, percent, bytes), completed (done with the
 * published record's size and sha256, or failed with a permanent reply's status and message), failed (retried, or
 * failed for good). Writes of one job are applied in order; a record nobody queued (an installer pull through the
 * registry-proxy) is created here.
 */
import type { Job, Worker } from 'bullmq';
import type { AssetRecord } from '@factory/asset';
import { BuildChange, BuildPriority, BuildStore, buildSubject, BuildSubject, failed, PREWARM_PRIORITY, progressed, retrying, started, succeeded } from '@factory/builds';
import type { PayloadOf, Reply } from '@factory/queue';
import type { Logger } from '@factory/telemetry';

type BuildJob = Job<PayloadOf<'build.asset'>>;

export interface BuildRecordOptions {
  builds: BuildStore;
  externalUrl: string;
  logger: Logger;
  /** e.g. `<host>/<pid>`: named in the log of each build this worker takes */
  workerName: string;
}

export function recordBuilds(worker: Worker, o: BuildRecordOptions): void {
  // one chain of writes per job: Redis sees them in the order the worker's events came
  const chains = new Map<string, Promise<void>>();
  const write = (job: BuildJob | undefined, change: (subject: BuildSubject, priority: BuildPriority) => BuildChange) => {
    if (!job || job.name !== 'build.asset' || !job.data?.spec || !job.id) return;
    const subject = { ...buildSubject(job.data.spec, o.externalUrl), id: job.data.key };
    const priority: BuildPriority = (job.opts.priority ?? 0) >= PREWARM_PRIORITY ? 'prewarm' : 'user';
    const id = job.id;
    const next = (chains.get(id) ?? Promise.resolve())
      .then(() => o.builds.change(subject.id, change(subject, priority)))
      .then(
        () => undefined,
        (err: unknown) => o.logger.warn({ err, jobId: id }, 'could not record a build event'),
      );
    chains.set(id, next);
    void next.finally(() => {
      if (chains.get(id) === next) chains.delete(id);
    });
  };
  worker.on('active', (job: BuildJob) => write(job, (s, p) => started(s, job.attemptsMade + 1, p, o.workerName)));
  worker.on('progress', (job: BuildJob, progress: unknown) => {
    if (progress && typeof progress === 'object') write(job, () => progressed(progress as { stage?: string; percent?: number; bytes?: number }));
  });
  worker.on('completed', (job: BuildJob) => {
    const reply = job.returnvalue as Reply<AssetRecord> | undefined;
    if (reply?.ok) write(job, (s, p) => succeeded(s, { size: reply.value.size, sha256: reply.value.sha256 }, p));
    else write(job, (s, p) => failed(s, { status: reply?.status ?? 500, message: reply?.message ?? 'internal server error' }, p));
  });
  worker.on('failed', (job: BuildJob | undefined) => {
    if (!job) return;
    // attemptsMade counts this attempt already; the job is retried while attempts remain
    const final = job.finishedOn !== undefined || job.attemptsMade >= (job.opts.attempts ?? 1);
    // An unexpected failure answers the waiting clients `500 internal server error`: the record says the same.
    if (final) write(job, (s, p) => failed(s, { status: 500, message: 'internal server error' }, p));
    else write(job, () => retrying(job.attemptsMade));
  });
}
