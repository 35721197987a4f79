import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
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
  private readonly events = new Map<QueueName, Promise<QueueEvents>>();
  private readonly opened: QueueEvents[] = [];
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
      // each waiting call listens for the queue's closing: thousands may wait at once
      q.setMaxListeners(100_000);
      this.queues.set(name, q);
    }
    return q;
  }

  private queueEvents(name: QueueName): Promise<QueueEvents> {
    let ev = this.events.get(name);
    if (!ev) {
      ev = this.openQueueEvents(name);
      // one per queue, shared by concurrent first callers; opened again after a failure
      ev.catch(() => this.events.delete(name));
      this.events.set(name, ev);
    }
    return ev;
  }

  private async openQueueEvents(name: QueueName): Promise<QueueEvents> {
    // QueueEvents starts reading at '$' only once its connection is up and named: an event written meanwhile (a job
    // added by the first call and answered at once) would be missed, and its caller would wait until its timeout.
    // Reading on from the last event that exists now leaves no gap.
    // (Asked on the events connection: it waits for Redis where the producer, failing fast, would give no answer.)
    const conn = redisConnection(this.redisUrl, 'blocking', `${this.prefix}-events-${name}`);
    this.eventConns.push(conn);
    const last = (await conn.xrevrange(this.queue(name).keys.events, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    const ev = new QueueEvents(name, { connection: conn, prefix: this.prefix, lastEventId: last });
    ev.setMaxListeners(100_000);
    ev.on('error', (err) => this.logger.warn({ err, queue: name }, 'queue events error'));
    this.opened.push(ev);
    await ev.waitUntilReady();
    return ev;
  }

  async call<K extends JobName>(name: K, payload: PayloadOf<K>, opts: CallOptions = {}): Promise<ResultOf<K>> {
    const queueName = JOB_QUEUE[name];
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const jobId = opts.jobId ?? randomUUID();
    let events: QueueEvents;
    let job;
    let outcome: FinishEvent | undefined;
    try {
      events = await this.queueEvents(queueName);
      outcome = finishEvent(events, jobId);
      job = await this.queue(queueName).add(name, payload, {
        jobId,
        ...(opts.priority ? { priority: opts.priority } : {}),
        ...(opts.removeWhenDone ? { removeOnComplete: true, removeOnFail: true } : {}),
      });
    } catch (err) {
      outcome?.cancel();
      this.logger.warn({ err, job: name }, 'could not enqueue job');
      throw new FactoryError(503, 'service temporarily unavailable');
    }
    let reply: Reply<ResultOf<K>>;
    try {
      reply = (await job.waitUntilFinished(events, timeoutMs)) as Reply<ResultOf<K>>;
    } catch (err) {
      const msg = String((err as Error)?.message ?? err);
      if (/Missing key for job/i.test(msg)) {
        // Finished and removed before the wait looked: its completion event (written by the same Redis script that
        // removed it) is on its way to the listener attached before the job was added.
        const seen = await outcome.within(EVENT_AFTER_REMOVAL_MS);
        if (!seen) throw new JobVanishedError(String(job.id));
        if ('failedReason' in seen) {
          this.logger.error({ job: name, jobId: job.id, reason: seen.failedReason }, 'job failed');
          throw new FactoryError(500, 'internal server error');
        }
        reply = seen.returnvalue as Reply<ResultOf<K>>;
      } else if (/timed out|timeout/i.test(msg)) {
        this.logger.warn({ job: name, jobId: job.id, timeoutMs }, 'job timed out');
        throw new FactoryError(503, `service temporarily unavailable: ${queueName} did not answer in time`);
      } else {
        this.logger.error({ job: name, jobId: job.id, reason: msg }, 'job failed');
        throw new FactoryError(500, 'internal server error');
      }
    } finally {
      outcome.cancel();
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
    await Promise.allSettled(this.opened.map((e) => e.close()));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.producer.disconnect();
    for (const c of this.eventConns) c.disconnect();
  }
}

/** How long a job found removed may take to announce its completion through QueueEvents (normally milliseconds). */
const EVENT_AFTER_REMOVAL_MS = 2000;

type Finished = { returnvalue: unknown } | { failedReason: string };

interface FinishEvent {
  /** The job's completion or failure if it is announced within `ms` (or was already). */
  within(ms: number): Promise<Finished | undefined>;
  cancel(): void;
}

/**
 * Listens for one job's completion or failure from before the job is added: a job removed on completion
 * (removeWhenDone) can finish and vanish before BullMQ's waitUntilFinished checks its state, and then only its event
 * tells the result.
 */
function finishEvent(events: QueueEvents, jobId: string): FinishEvent {
  let seen: Finished | undefined;
  let wake: (() => void) | undefined;
  const onCompleted = (args: { returnvalue: unknown }) => {
    seen = { returnvalue: args.returnvalue };
    wake?.();
  };
  const onFailed = (args: { failedReason: string }) => {
    seen = { failedReason: args.failedReason };
    wake?.();
  };
  events.on(`completed:${jobId}` as 'completed', onCompleted as never);
  events.on(`failed:${jobId}` as 'failed', onFailed as never);
  return {
    async within(ms) {
      if (!seen) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, ms);
        });
        clearTimeout(timer);
      }
      return seen;
    },
    cancel() {
      events.off(`completed:${jobId}` as 'completed', onCompleted as never);
      events.off(`failed:${jobId}` as 'failed', onFailed as never);
    },
  };
}
