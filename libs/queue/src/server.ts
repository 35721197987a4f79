import { Job, Worker } from 'bullmq';
import type IORedis from 'ioredis';
import { isFactoryError } from '@factory/errors';
import type { Logger } from '@factory/telemetry';
import { Counter, Gauge, Histogram, Registry } from '@factory/telemetry';
import { JobName, PayloadOf, QueueName, Reply, ResultOf } from './contracts';
import { redisConnection } from './connection';

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
  /** Lock duration for long jobs (ms). */
  lockDuration?: number;
  /** How often this worker looks for stalled jobs (ms): jobs whose worker died and whose lock expired. */
  stalledInterval?: number;
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
export function serveQueue(queue: QueueName, handlers: Handlers | { processorFile: string }, opts: ServeOptions): { worker: Worker; connection: IORedis } {
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
    // Only pass lockDuration when set: an explicit undefined would override BullMQ's default and break its scripts.
    ...(opts.lockDuration ? { lockDuration: opts.lockDuration } : {}),
    ...(opts.stalledInterval ? { stalledInterval: opts.stalledInterval } : {}),
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
  return { worker, connection };
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
 * `factory_queue_jobs{queue,state}`: jobs by state (wait, prioritized, active, delayed), read from Redis at scrape
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
      help: 'Jobs in a queue by state (wait + prioritized = waiting to start), as stored in Redis at scrape time',
      labelNames: ['queue', 'state'],
      registers: [metrics],
      async collect() {
        this.reset();
        await Promise.all(
          [...registered].map(async ([name, source]) => {
            const key = `${source.prefix}:${name}`;
            const read = (async () => {
              const client = await source.worker.client;
              return client.multi().llen(`${key}:wait`).zcard(`${key}:prioritized`).llen(`${key}:active`).zcard(`${key}:delayed`).exec();
            })();
            const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), DEPTH_READ_TIMEOUT_MS).unref());
            const replies = await Promise.race([read.catch(() => undefined), timeout]);
            if (!replies) return; // Redis unreachable: no sample rather than a wrong one
            (['wait', 'prioritized', 'active', 'delayed'] as const).forEach((state, i) => {
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
