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
  /** Called once the job is in the queue (added, or an existing job of the same ID joined), before the wait. */
  onEnqueued?: () => void;
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
    let outcome: JobOutcome;
    try {
      // Listening starts before the job exists: a job answered in a millisecond announces its end before add()
      // returns, and one removed when done leaves nothing else to read.
      outcome = new JobOutcome(await this.queueEvents(queueName), jobId, timeoutMs);
    } catch (err) {
      this.logger.warn({ err, job: name }, 'could not enqueue job');
      throw new FactoryError(503, 'service temporarily unavailable');
    }
    try {
      await this.queue(queueName).add(name, payload, {
        jobId,
        ...(opts.priority ? { priority: opts.priority } : {}),
        ...(opts.removeWhenDone ? { removeOnComplete: true, removeOnFail: true } : {}),
      });
    } catch (err) {
      outcome.cancel();
      this.logger.warn({ err, job: name }, 'could not enqueue job');
      throw new FactoryError(503, 'service temporarily unavailable');
    }
    opts.onEnqueued?.();
    let reply: Reply<ResultOf<K>>;
    try {
      reply = (await outcome.settle(this.queue(queueName))) as Reply<ResultOf<K>>;
    } catch (err) {
      if (err instanceof JobVanishedError) throw err;
      if (err instanceof JobWaitTimeout) {
        this.logger.warn({ job: name, jobId, timeoutMs }, 'job timed out');
        throw new FactoryError(503, `service temporarily unavailable: ${queueName} did not answer in time`);
      }
      this.logger.error({ job: name, jobId, reason: String((err as Error)?.message ?? err) }, 'job failed');
      throw new FactoryError(500, 'internal server error');
    }
    if (!reply || typeof reply !== 'object' || !('ok' in reply)) throw new FactoryError(500, 'internal server error');
    if (!reply.ok) throw new FactoryError(reply.status, reply.message);
    return reply.value;
  }

  /** Moves a job still waiting to another priority (lower runs first); nothing when it is gone or running. */
  async changePriority(name: QueueName, jobId: string, priority: number): Promise<void> {
    const job = await Job.fromId(this.queue(name), jobId);
    if (!job) return;
    const state = await job.getState();
    if (state === 'prioritized' || state === 'waiting' || state === 'delayed') await job.changePriority({ priority });
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

class JobWaitTimeout extends Error {}

/**
 * How long a job found neither waiting nor finished may still announce its end (its event on its way) before it
 * counts as vanished. With listening started before the job was added this is only a safety net.
 */
const VANISH_GRACE_MS = 2_000;

/**
 * The end of one job: its `completed:<id>` / `failed:<id>` events, listened to from before the job is added, or the
 * job itself when it had already finished (joined late). Unlike BullMQ's `waitUntilFinished`, which starts listening
 * once the job exists, no answer is lost when a job finishes — and is removed — before add() returns.
 */
class JobOutcome {
  private readonly events: NodeJS.EventEmitter;
  private readonly completedEvent: string;
  private readonly failedEvent: string;
  private readonly timers: NodeJS.Timeout[] = [];
  private settled = false;
  private resolveResult!: (value: unknown) => void;
  private rejectResult!: (err: unknown) => void;
  private readonly result: Promise<unknown>;

  constructor(
    queueEvents: QueueEvents,
    private readonly jobId: string,
    timeoutMs: number,
  ) {
    // Per-job event names are emitted by QueueEvents but not in its typed listener map.
    this.events = queueEvents as unknown as NodeJS.EventEmitter;
    this.completedEvent = `completed:${jobId}`;
    this.failedEvent = `failed:${jobId}`;
    this.result = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.events.on(this.completedEvent, this.onCompleted);
    this.events.on(this.failedEvent, this.onFailed);
    this.timers.push(setTimeout(() => this.finish(() => this.rejectResult(new JobWaitTimeout(`no answer within ${timeoutMs} ms`))), timeoutMs));
  }

  private readonly onCompleted = (args: { returnvalue: unknown }) => this.finish(() => this.resolveResult(args.returnvalue));
  private readonly onFailed = (args: { failedReason?: string }) => this.finish(() => this.rejectResult(new Error(args.failedReason ?? 'job failed')));

  private finish(fn: () => void): void {
    if (this.settled) return;
    this.settled = true;
    for (const t of this.timers) clearTimeout(t);
    this.events.removeListener(this.completedEvent, this.onCompleted);
    this.events.removeListener(this.failedEvent, this.onFailed);
    fn();
  }

  /** The job was not added: stop listening. */
  cancel(): void {
    this.finish(() => this.resolveResult(undefined));
  }

  /** The job's answer; a job that had finished before (a deterministic ID joined late) is read from its record. */
  settle(queue: Queue): Promise<unknown> {
    void (async () => {
      const job = await Job.fromId(queue, this.jobId);
      if (this.settled) return;
      if (job?.finishedOn) {
        if (job.failedReason && !job.returnvalue) this.onFailed({ failedReason: job.failedReason });
        else this.onCompleted({ returnvalue: job.returnvalue });
      } else if (!job) {
        this.timers.push(setTimeout(() => this.finish(() => this.rejectResult(new JobVanishedError(this.jobId))), VANISH_GRACE_MS));
      }
    })().catch((err: unknown) => this.finish(() => this.rejectResult(err)));
    return this.result;
  }
}
