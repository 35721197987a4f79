import { Job, Worker } from 'bullmq';
import type IORedis from 'ioredis';
import type { Logger } from '@factory/telemetry';
import { Counter, Histogram, Registry } from '@factory/telemetry';
import { JobName, PayloadOf, QueueName, Reply, ResultOf } from './contracts';
import { isFactoryError } from '@factory/errors';
import { redisConnection } from './connection';

export type Handlers = { [K in JobName]?: (payload: PayloadOf<K>, job: Job) => Promise<ResultOf<K>> };

export interface ServeOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  concurrency?: number;
  metrics?: Registry;
  /** Lock duration for long jobs (ms). */
  lockDuration?: number;
}

/**
 * Consume one queue with typed handlers. FactoryErrors become error Replies (no retry); anything else is thrown so
 * BullMQ retries it per the job's attempts.
 */
export function serveQueue(queue: QueueName, handlers: Handlers, opts: ServeOptions): { worker: Worker; connection: IORedis } {
  const connection = redisConnection(opts.redisUrl, 'blocking', `${opts.prefix}-worker-${queue}`);
  let processed: Counter<string> | undefined;
  let duration: Histogram<string> | undefined;
  if (opts.metrics) {
    // One set of job metrics per registry, shared by every queue this process serves.
    processed = (opts.metrics.getSingleMetric('factory_jobs_processed_total') as Counter<string> | undefined) ??
      new Counter({ name: 'factory_jobs_processed_total', help: 'Jobs handled, by name and outcome', labelNames: ['queue', 'job', 'outcome'], registers: [opts.metrics] });
    duration = (opts.metrics.getSingleMetric('factory_job_duration_seconds') as Histogram<string> | undefined) ??
      new Histogram({ name: 'factory_job_duration_seconds', help: 'Job handling time', labelNames: ['queue', 'job'], buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 60, 300], registers: [opts.metrics] });
  }
  const worker = new Worker(
    queue,
    async (job: Job): Promise<Reply<unknown>> => {
      const handler = (handlers as Record<string, ((p: unknown, j: Job) => Promise<unknown>) | undefined>)[job.name];
      const end = duration?.startTimer({ queue, job: job.name });
      try {
        if (!handler) return { ok: false, status: 500, message: `no handler for job ${job.name}` };
        const value = await handler(job.data, job);
        processed?.inc({ queue, job: job.name, outcome: 'ok' });
        return { ok: true, value };
      } catch (err) {
        if (isFactoryError(err)) {
          processed?.inc({ queue, job: job.name, outcome: String(err.status) });
          return { ok: false, status: err.status, message: err.message };
        }
        processed?.inc({ queue, job: job.name, outcome: 'error' });
        opts.logger.error({ err, job: job.name, jobId: job.id, attempt: job.attemptsMade + 1 }, 'job handler failed');
        throw err;
      } finally {
        end?.();
      }
    },
    // Only pass lockDuration when set: an explicit undefined would override BullMQ's default and break its scripts.
    { connection, prefix: opts.prefix, concurrency: opts.concurrency ?? 8, autorun: true, ...(opts.lockDuration ? { lockDuration: opts.lockDuration } : {}) },
  );
  worker.on('error', (err) => opts.logger.warn({ err, queue }, 'worker error'));
  return { worker, connection };
}
