import os from 'node:os';
import { Job, Worker } from 'bullmq';
import type IORedis from 'ioredis';
import { isFactoryError } from '@factory/errors';
import type { Logger } from '@factory/telemetry';
import { Counter, Gauge, Histogram, Registry } from '@factory/telemetry';
import { JobName, PayloadOf, QueueName, Reply, ResultOf } from './contracts';
import { redisConnection } from './connection';
import type { JobLocking } from './options';

export type Handlers = { [K in JobName]?: (payload: PayloadOf<K>, job: Job) => Promise<ResultOf<K>> };

/** The job as a sandboxed processor sees it (BullMQ's SandboxedJob): data and name are what handlers use. */
export interface HandledJob {
  id?: string;
  name: string;
  data: unknown;
  attemptsMade: number;
}

export interface ServeOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  concurrency?: number;
  metrics?: Registry;
  /** Lock and stall settings for long jobs (BullMQ's defaults otherwise: 30 s lock, 30 s checks, 1 stall). */
  locking?: JobLocking;
  /** Delay before a failed job's next attempt when its `backoff` names type `custom` (attemptsMade counts from 1). */
  backoffStrategy?: (attemptsMade: number) => number;
  /** Node/V8 flags for the child processes of a sandboxed processor (`processorFile`), after this process's own. */
  sandboxNodeFlags?: readonly string[];
}

/** What serveQueue started: the worker, its blocking connection, and the graceful stop of both. */
export interface ServedQueue {
  worker: Worker;
  connection: IORedis;
  /**
   * Stops taking jobs and lets the running ones finish for up to `graceMs`; jobs of a sandboxed processor still running
   * then are handed back to the queue (waiting again, for another worker, without using up an attempt) and their
   * sandboxes ended. Resolves with the IDs of the jobs handed back once the worker is closed.
   */
  stop(graceMs: number): Promise<string[]>;
}

/**
 * Runs the handler for one job and turns its outcome into a Reply: FactoryErrors become error replies (permanent: the
 * job completes and is never retried); anything else is thrown so BullMQ retries it per the job's attempts. Used
 * in-process by serveQueue and inside sandboxed processors (see sandboxedProcessor).
 */
export async function replyTo<J extends HandledJob>(
  handlers: { [name: string]: ((payload: never, job: J) => Promise<unknown>) | undefined },
  job: J,
  onError?: (err: unknown, job: J) => void,
): Promise<Reply<unknown>> {
  const handler = handlers[job.name] as ((payload: unknown, job: J) => Promise<unknown>) | undefined;
  if (!handler) return { ok: false, status: 500, message: `no handler for job ${job.name}` };
  try {
    return { ok: true, value: await handler(job.data, job) };
  } catch (err) {
    if (isFactoryError(err)) return { ok: false, status: err.status, message: err.message };
    onError?.(err, job);
    throw err;
  }
}

/**
 * The default export of a sandboxed processor file: BullMQ runs it in a child process (a crashing or runaway job
 * cannot take the worker down) and hands its Reply back to the parent's serveQueue.
 */
export function sandboxedProcessor<J extends HandledJob>(handlers: { [name: string]: ((payload: never, job: J) => Promise<unknown>) | undefined }, onError?: (err: unknown, job: J) => void) {
  return (job: J): Promise<Reply<unknown>> => replyTo(handlers, job, onError);
}

/**
 * Consume one queue, either with in-process typed handlers or with a sandboxed processor file (whose default export
 * is a `sandboxedProcessor`). Both answer with Replies; job metrics and error logging are the same for both.
 */
export function serveQueue(queue: QueueName, handlers: Handlers | { processorFile: string }, opts: ServeOptions): ServedQueue {
  const connection = redisConnection(opts.redisUrl, 'blocking', `${opts.prefix}-worker-${queue}`);
  const processor =
    'processorFile' in handlers && typeof handlers.processorFile === 'string'
      ? handlers.processorFile
      : (job: Job): Promise<Reply<unknown>> =>
          replyTo(handlers as Record<string, (payload: never, job: Job) => Promise<unknown>>, job, (err, j) =>
            opts.logger.error({ err, job: j.name, jobId: j.id, attempt: j.attemptsMade + 1 }, 'job handler failed'),
          );
  const worker = new Worker(queue, processor, {
    connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 8,
    autorun: true,
    // Recorded with each job it takes (BullMQ's processedBy): which process of which host (pod) ran a job.
    name: `${os.hostname()}/${process.pid}`,
    // Only pass the settings when set: an explicit undefined would override BullMQ's defaults and break its scripts.
    ...(opts.locking ?? {}),
    ...(opts.backoffStrategy ? { settings: { backoffStrategy: opts.backoffStrategy } } : {}),
    // Given flags replace BullMQ's copy of this process's flags: the copy is kept, less debugger flags (whose ports
    // BullMQ would otherwise move on for each child).
    ...(opts.sandboxNodeFlags?.length
      ? { workerForkOptions: { execArgv: [...process.execArgv.filter((a) => !/^--(inspect|debug)/.test(a)), ...opts.sandboxNodeFlags] } }
      : {}),
  });
  worker.on('error', (err) => opts.logger.warn({ err, queue }, 'worker error'));
  if (opts.metrics) {
    observeJobs(worker, queue, opts.metrics);
    observeQueueDepth(worker, queue, opts.prefix, opts.metrics);
  }
  if (typeof processor === 'string') {
    // In-process handlers log their own failures; a sandbox's are seen here.
    worker.on('failed', (job, err) => opts.logger.error({ err: err?.message, job: job?.name, jobId: job?.id, attempt: job?.attemptsMade }, 'job failed'));
  }
  const running = new Map<string, Job>();
  worker.on('active', (job: Job) => running.set(String(job.id), job));
  worker.on('completed', (job: Job) => running.delete(String(job.id)));
  worker.on('failed', (job: Job | undefined) => job && running.delete(String(job.id)));
  const stop = async (graceMs: number): Promise<string[]> => {
    const closed = worker.close();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (!graceOver || typeof processor !== 'string') {
      // In-process handlers cannot be taken back from: the caller's shutdown deadline bounds them.
      await closed;
      return [];
    }
    const handedBack = await handBack(worker, [...running.values()], opts.logger);
    // A job taken just before the stop may still be starting its sandbox: end those too, as they appear.
    const sweep = setInterval(() => endSandboxes(worker), 100);
    try {
      await closed;
    } finally {
      clearInterval(sweep);
    }
    return handedBack;
  };
  return { worker, connection, stop };
}

/** The part of BullMQ's sandbox pool this module uses: the child processes running jobs right now. */
interface SandboxPool {
  retained: Record<string, { childProcess?: { connected: boolean; disconnect(): void } }>;
}

/**
 * Moves the worker's running jobs back to the queue with their lock tokens (no stall, no failed attempt, their
 * waiting clients keep waiting), then ends the sandboxes that ran them: closing a sandbox's IPC channel makes it exit,
 * which kills its tools' process groups (see the build processor). Whatever the sandbox had written is either
 * complete and verified or not visible in storage (objects appear whole or not at all); the next worker starts over.
 */
async function handBack(worker: Worker, jobs: Job[], logger: Logger): Promise<string[]> {
  const handedBack: string[] = [];
  for (const job of jobs) {
    try {
      await job.moveToWait(job.token);
      handedBack.push(String(job.id));
    } catch (err) {
      // finished or lost its lock meanwhile: nothing to give back
      logger.warn({ err, jobId: job.id }, 'could not hand a job back');
    }
  }
  endSandboxes(worker);
  if (handedBack.length) logger.warn({ jobIds: handedBack, queue: worker.name }, 'shutdown grace over: running jobs handed back to the queue');
  return handedBack;
}

/** One set of job metrics per registry, shared by every queue the process serves, fed from the worker's events. */
function observeJobs(worker: Worker, queue: QueueName, metrics: Registry): void {
  const processed =
    (metrics.getSingleMetric('factory_jobs_processed_total') as Counter<string> | undefined) ??
    new Counter({ name: 'factory_jobs_processed_total', help: 'Jobs handled, by name and outcome', labelNames: ['queue', 'job', 'outcome'], registers: [metrics] });
  const duration =
    (metrics.getSingleMetric('factory_job_duration_seconds') as Histogram<string> | undefined) ??
    new Histogram({ name: 'factory_job_duration_seconds', help: 'Job handling time', labelNames: ['queue', 'job'], buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 60, 300], registers: [metrics] });
  const timing = (job: Job) => {
    if (job.processedOn && job.finishedOn) duration.observe({ queue, job: job.name }, (job.finishedOn - job.processedOn) / 1000);
  };
  worker.on('completed', (job: Job) => {
    const reply = job.returnvalue as Reply<unknown> | undefined;
    processed.inc({ queue, job: job.name, outcome: reply?.ok ? 'ok' : String(reply?.status ?? 'error') });
    timing(job);
  });
  worker.on('failed', (job: Job | undefined) => {
    if (!job) return;
    processed.inc({ queue, job: job.name, outcome: 'error' });
    timing(job);
  });
}

/** The queues each registry reports the depth of (a process may serve several). */
const depthSources = new WeakMap<Registry, Map<QueueName, { worker: Worker; prefix: string }>>();
/** A scrape never waits longer than this for Redis (the worker's connection retries forever while Redis is away). */
const DEPTH_READ_TIMEOUT_MS = 2000;

/**
 * `factory_queue_jobs{queue,state}`: jobs by state (wait, prioritized, active, delayed, failed: kept failed jobs), read from Redis at scrape
 * time. Every consumer of a queue reports the same numbers (take `max` across them): the backlog alert and KEDA
 * autoscaling of build-workers use it. BullMQ keeps prioritized jobs (all builds) in a zset beside the wait list.
 */
function observeQueueDepth(worker: Worker, queue: QueueName, prefix: string, metrics: Registry): void {
  let sources = depthSources.get(metrics);
  if (!sources) {
    const registered = new Map<QueueName, { worker: Worker; prefix: string }>();
    depthSources.set(metrics, registered);
    sources = registered;
    new Gauge({
      name: 'factory_queue_jobs',
      help: 'Jobs in a queue by state (wait + prioritized = waiting to start, the queue depth; failed = failed jobs kept), as stored in Redis at scrape time',
      labelNames: ['queue', 'state'],
      registers: [metrics],
      async collect() {
        this.reset();
        await Promise.all(
          [...registered].map(async ([name, source]) => {
            const key = `${source.prefix}:${name}`;
            const read = (async () => {
              const client = await source.worker.client;
              return client.multi().llen(`${key}:wait`).zcard(`${key}:prioritized`).llen(`${key}:active`).zcard(`${key}:delayed`).zcard(`${key}:failed`).exec();
            })();
            const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), DEPTH_READ_TIMEOUT_MS).unref());
            const replies = await Promise.race([read.catch(() => undefined), timeout]);
            if (!replies) return; // Redis unreachable: no sample rather than a wrong one
            (['wait', 'prioritized', 'active', 'delayed', 'failed'] as const).forEach((state, i) => {
              const [err, count] = replies[i];
              if (!err) this.set({ queue: name, state }, Number(count));
            });
          }),
        );
      },
    });
  }
  sources.set(queue, { worker, prefix });
}

/** Closes the IPC channel of every sandbox running a job: the sandbox exits (see handBack). */
function endSandboxes(worker: Worker): void {
  const pool = (worker as unknown as { childPool?: SandboxPool }).childPool;
  for (const child of Object.values(pool?.retained ?? {})) if (child.childProcess?.connected) child.childProcess.disconnect();
}
