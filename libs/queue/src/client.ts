import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents } from 'bullmq';
import type IORedis from 'ioredis';
import type { Logger } from '@factory/telemetry';
import { JOB_QUEUE, JobName, PayloadOf, QueueName, Reply, ResultOf } from './contracts';
import { FactoryError, JobVanishedError } from '@factory/errors';
import { redisConnection } from './connection';
import { DEFAULT_JOB_OPTIONS } from './options';

export interface CallOptions {
  /** How long to wait for the answer; on expiry the caller gets a 503. */
  timeoutMs?: number;
  /** Deterministic job ID: concurrent identical requests anywhere in the cluster share one job. */
  jobId?: string;
  /** Remove the job once finished (its result lives elsewhere, e.g. in object storage). */
  removeWhenDone?: boolean;
  priority?: number;
}

/**
 * Request/response over BullMQ: add a job, wait for it through QueueEvents, unwrap the Reply. Failures map to
 * FactoryErrors: the handler's own status for permanent errors, 503 when no answer arrives in time or Redis is
 * unreachable, 500 when the job failed for good.
 */
export class JobClient {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly events = new Map<QueueName, QueueEvents>();
  private readonly producer: IORedis;
  private readonly eventConns: IORedis[] = [];

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    private readonly logger: Logger,
    private readonly defaultTimeoutMs = 30_000,
  ) {
    this.producer = redisConnection(redisUrl, 'producer', `${prefix}-client`);
  }

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.producer, prefix: this.prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS });
      q.on('error', (err) => this.logger.warn({ err, queue: name }, 'queue error'));
      this.queues.set(name, q);
    }
    return q;
  }

  private async queueEvents(name: QueueName): Promise<QueueEvents> {
    let ev = this.events.get(name);
    if (!ev) {
      const conn = redisConnection(this.redisUrl, 'blocking', `${this.prefix}-events-${name}`);
      this.eventConns.push(conn);
      ev = new QueueEvents(name, { connection: conn, prefix: this.prefix });
      ev.setMaxListeners(100_000);
      ev.on('error', (err) => this.logger.warn({ err, queue: name }, 'queue events error'));
      this.events.set(name, ev);
      await ev.waitUntilReady();
    }
    return ev;
  }

  async call<K extends JobName>(name: K, payload: PayloadOf<K>, opts: CallOptions = {}): Promise<ResultOf<K>> {
    const queueName = JOB_QUEUE[name];
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    let events: QueueEvents;
    let job;
    try {
      events = await this.queueEvents(queueName);
      job = await this.queue(queueName).add(name, payload, {
        jobId: opts.jobId ?? randomUUID(),
        ...(opts.priority ? { priority: opts.priority } : {}),
        ...(opts.removeWhenDone ? { removeOnComplete: true, removeOnFail: true } : {}),
      });
    } catch (err) {
      this.logger.warn({ err, job: name }, 'could not enqueue job');
      throw new FactoryError(503, 'service temporarily unavailable');
    }
    let reply: Reply<ResultOf<K>>;
    try {
      reply = (await outcomeOf(events, this.queue(queueName), String(job.id), timeoutMs)) as Reply<ResultOf<K>>;
    } catch (err) {
      if (err instanceof JobVanishedError) throw err;
      if (err instanceof JobWaitTimeout) {
        this.logger.warn({ job: name, jobId: job.id, timeoutMs }, 'job timed out');
        throw new FactoryError(503, `service temporarily unavailable: ${queueName} did not answer in time`);
      }
      this.logger.error({ job: name, jobId: job.id, reason: String((err as Error)?.message ?? err) }, 'job failed');
      throw new FactoryError(500, 'internal server error');
    }
    if (!reply || typeof reply !== 'object' || !('ok' in reply)) throw new FactoryError(500, 'internal server error');
    if (!reply.ok) throw new FactoryError(reply.status, reply.message);
    return reply.value;
  }

  /** Number of workers currently connected to a queue (used by readiness checks). */
  async workerCount(name: QueueName): Promise<number> {
    return (await this.queue(name).getWorkers()).length;
  }

  async ping(): Promise<void> {
    await this.producer.ping();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.events.values()].map((e) => e.close()));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.producer.disconnect();
    for (const c of this.eventConns) c.disconnect();
  }
}

class JobWaitTimeout extends Error {}

/**
 * How long a job found neither waiting nor finished may still announce its end: a job removed when done can finish
 * (and be removed) between being added and being looked at, and its `completed` event is then still on its way.
 */
const VANISH_GRACE_MS = 5_000;

/**
 * The job's result (or its failure): from its `completed:<id>` / `failed:<id>` events, or from the job itself when it
 * had already finished. Unlike BullMQ's `waitUntilFinished`, a job that is already gone is not a failure at once —
 * the listeners stay for a grace period, since its event may still arrive (jobs removed when done, answered in a
 * millisecond, are gone by the time they are looked at). Only then is it JobVanishedError.
 */
function outcomeOf(queueEvents: QueueEvents, queue: Queue, jobId: string, timeoutMs: number): Promise<unknown> {
  // Per-job event names (`completed:<id>`) are emitted by QueueEvents but not in its typed listener map.
  const events = queueEvents as unknown as NodeJS.EventEmitter;
  return new Promise((resolve, reject) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const completedEvent = `completed:${jobId}`;
    const failedEvent = `failed:${jobId}`;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      events.removeListener(completedEvent, onCompleted);
      events.removeListener(failedEvent, onFailed);
      fn();
    };
    const onCompleted = (args: { returnvalue: unknown }) => settle(() => resolve(args.returnvalue));
    const onFailed = (args: { failedReason?: string }) => settle(() => reject(new Error(args.failedReason ?? 'job failed')));
    events.on(completedEvent, onCompleted);
    events.on(failedEvent, onFailed);
    timers.push(setTimeout(() => settle(() => reject(new JobWaitTimeout(`no answer within ${timeoutMs} ms`))), timeoutMs));
    // The events may have gone by before the listeners were added: look at the job itself once.
    (async () => {
      const finished = await Job.fromId(queue, jobId);
      if (settled) return;
      if (finished?.finishedOn) {
        if (finished.failedReason && !finished.returnvalue) onFailed({ failedReason: finished.failedReason });
        else onCompleted({ returnvalue: finished.returnvalue });
      } else if (!finished) {
        timers.push(setTimeout(() => settle(() => reject(new JobVanishedError(jobId))), Math.min(VANISH_GRACE_MS, timeoutMs)));
      }
    })().catch((err: unknown) => settle(() => reject(err)));
  });
}
