/**
 * Pre-warm and webhooks (issue 14 items 2 and 3), run by the gateway.
 *
 * Why the gateway delivers: delivering means making HTTP requests to URLs that clients chose. The gateway already is
 * the factory's HTTP edge, holds no keys (unlike signing) and runs no build tooling or upstream-registry client, so a
 * request led astray reaches the least; it already has what delivery needs (the hooks in the object store, Redis) and
 * it is where the routes and the pre-warm seam live. Where egress is narrowed per component, only the gateway needs to
 * reach receivers. Deliveries are still jobs on the `notify` queue — retried with backoff, shared by all gateway
 * replicas — and the hook's secret is read from the object store at delivery time, never carried in Redis.
 *
 * Seams to the build resources (@factory/builds): `queuePrewarmBuild` (BuildRoutes.queueBuild at priority `prewarm`)
 * and the cluster-wide feed of build state changes (BuildStore.feedKey), read through a consumer group.
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Queue } from 'bullmq';
import type IORedis from 'ioredis';
import type { Build } from '@factory/builds';
import type { NotifySettings, WebhookEvent, WebhookSpec } from '@factory/config';
import type { PayloadOf, ResultOf } from '@factory/queue';
import type { Logger } from '@factory/telemetry';
import { Counter, Registry } from '@factory/telemetry';
import { attemptDelivery, WEBHOOK_ATTEMPTS } from './delivery';
import { NotifyStore, StoredWebhook } from './store';

/** The longest a version check may hold its lock (a gateway that died holding it is waited out). */
const VERSION_CHECK_LOCK_MS = 5 * 60_000;
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Deliveries kept per hook in its log. */
export const DELIVERY_LOG_LENGTH = 100;

/**
 * Queues the build of `/image/<schematic>/<version>/<asset>` at pre-warm priority without waiting for it (nothing when
 * the asset is stored already; 4xx FactoryErrors as that route answers them): the seam to the build resources.
 */
export type QueuePrewarmBuild = (schematic: string, version: string, asset: string) => Promise<unknown>;

/** The consumer group every gateway reads the build feed in: each state change is handled by one of them. */
const FEED_GROUP = 'notify-webhooks';
/** A feed entry a consumer took and did not acknowledge for this long (its gateway died) is taken over. */
const FEED_CLAIM_IDLE_MS = 60_000;

export interface DeliveryLogEntry {
  id: string;
  event: string;
  attempt: number;
  /** the receiver's HTTP status; null when none was received */
  status: number | null;
  /** why the attempt did not deliver; null when it did */
  error: string | null;
  at: string;
}

/** What a hook's API shows: everything but the secret. */
export interface WebhookView {
  id: string;
  url: string;
  events: WebhookEvent[];
  schematic: string | null;
  createdAt: string;
}

export const isWebhookId = (id: string) => /^([0-9a-f]{32}|global-\d{1,4})$/.test(id);

export function webhookView(hook: StoredWebhook): WebhookView {
  return { id: hook.id, url: hook.url, events: hook.events, schematic: hook.schematic ?? null, createdAt: hook.createdAt };
}

export interface NotifierOptions {
  store: NotifyStore;
  /** producer connection: delivery logs, the version check's lock */
  redis: IORedis;
  /** where deliveries are queued */
  notifyQueue: Queue;
  prefix: string;
  settings: NotifySettings;
  versions: () => Promise<string[]>;
  queuePrewarmBuild: QueuePrewarmBuild;
  /** the stream of build state changes (entries `id`, `state`, `build`: BuildStore.feedKey) */
  buildFeedKey: string;
  userAgent: string;
  metrics: Registry;
  logger: Logger;
  /** opens the blocking connection the build feed is read with */
  blockingConnection: () => IORedis;
}

export class Notifier {
  private readonly globals: StoredWebhook[];
  private readonly deliveries: Counter<string>;
  private readonly versionChecks: Counter<string>;
  private feed?: { connection: IORedis; done: Promise<void> };
  private closed = false;

  constructor(private readonly o: NotifierOptions) {
    this.globals = o.settings.globalWebhooks.map((spec: WebhookSpec, i) => ({ ...spec, id: `global-${i}`, createdAt: new Date(0).toISOString() }));
    this.deliveries = new Counter({
      name: 'image_factory_webhook_deliveries_total',
      help: 'Webhook delivery attempts by event and outcome (delivered, retried, failed: refused for good or out of attempts)',
      labelNames: ['event', 'outcome'],
      registers: [o.metrics],
    });
    this.versionChecks = new Counter({
      name: 'image_factory_version_checks_total',
      help: 'Talos version checks by result (first: offered versions recorded; unchanged; new: versions announced; busy: another check was running)',
      labelNames: ['result'],
      registers: [o.metrics],
    });
  }

  // --- hooks --------------------------------------------------------------------------------------------------------
  async webhook(id: string): Promise<StoredWebhook | undefined> {
    return this.globals.find((h) => h.id === id) ?? (id.startsWith('global-') ? undefined : this.o.store.getWebhook(id));
  }

  isGlobal(id: string): boolean {
    return id.startsWith('global-');
  }

  newWebhookId(): string {
    return randomBytes(16).toString('hex');
  }

  async deliveryLog(id: string): Promise<DeliveryLogEntry[]> {
    const entries = await this.o.redis.lrange(this.logKey(id), 0, DELIVERY_LOG_LENGTH - 1);
    return entries.map((e) => JSON.parse(e) as DeliveryLogEntry);
  }

  async forgetDeliveryLog(id: string): Promise<void> {
    await this.o.redis.del(this.logKey(id));
  }

  private logKey(hookId: string): string {
    return `${this.o.prefix}:notify:deliveries:${hookId}`;
  }

  // --- events -------------------------------------------------------------------------------------------------------
  /**
   * Queues one delivery of `event` per hook it reaches. `eventKey` names the occurrence (the same in every gateway
   * that sees it), so the delivery IDs — and the jobs — are the same everywhere: an event is delivered once per hook.
   */
  async emit(event: WebhookEvent, data: unknown, eventKey: string, schematic: string | undefined): Promise<number> {
    const reaches = (h: StoredWebhook) => h.events.includes(event) && (schematic === undefined || h.schematic === undefined || h.schematic === schematic);
    const hooks = [...this.globals.filter(reaches), ...(await this.o.store.webhooksFor(event, schematic))];
    const createdAt = new Date().toISOString();
    await Promise.all(
      hooks.map((hook) => {
        const deliveryId = `d-${createHash('sha256').update(`${hook.id}\n${event}\n${eventKey}`).digest('hex').slice(0, 32)}`;
        const body = JSON.stringify({ id: deliveryId, event, createdAt, data });
        const payload: PayloadOf<'notify.deliver'> = { hookId: hook.id, deliveryId, event, body };
        return this.o.notifyQueue.add('notify.deliver', payload, {
          jobId: deliveryId,
          attempts: WEBHOOK_ATTEMPTS,
          backoff: { type: 'custom' },
          // kept for a day: a gateway that sees the event later adds a duplicate, which BullMQ ignores
          removeOnComplete: { age: 24 * 3600 },
          removeOnFail: { age: 7 * 24 * 3600 },
        });
      }),
    );
    if (hooks.length) this.o.logger.info({ event, eventKey, hooks: hooks.length }, 'webhook deliveries queued');
    return hooks.length;
  }

  /** The `notify.deliver` handler: one attempt, logged; a transient failure throws so BullMQ retries it. */
  async deliver(payload: PayloadOf<'notify.deliver'>, job: { attemptsMade: number }): Promise<ResultOf<'notify.deliver'>> {
    const attempt = job.attemptsMade + 1;
    const hook = await this.webhook(payload.hookId);
    const at = () => new Date().toISOString();
    if (!hook) {
      // deleted since the event: nothing to deliver, nothing to retry
      return { delivered: false, error: 'webhook deleted' };
    }
    const result = await attemptDelivery(
      { url: hook.url, secret: hook.secret, event: payload.event, deliveryId: payload.deliveryId, body: payload.body },
      { timeoutMs: this.o.settings.deliveryTimeoutMs, allowPrivate: this.o.settings.allowPrivateTargets, userAgent: this.o.userAgent },
    );
    const entry: DeliveryLogEntry = { id: payload.deliveryId, event: payload.event, attempt, status: result.status ?? null, error: result.error ?? null, at: at() };
    await this.o.redis
      .multi()
      .lpush(this.logKey(hook.id), JSON.stringify(entry))
      .ltrim(this.logKey(hook.id), 0, DELIVERY_LOG_LENGTH - 1)
      .expire(this.logKey(hook.id), 30 * 24 * 3600)
      .exec()
      .catch((err: unknown) => this.o.logger.warn({ err, hookId: hook.id }, 'could not log a webhook delivery'));
    if (result.verdict === 'retry' && attempt < WEBHOOK_ATTEMPTS) {
      this.deliveries.inc({ event: payload.event, outcome: 'retried' });
      throw new Error(`webhook ${hook.id} delivery ${payload.deliveryId} attempt ${attempt}: ${result.error}`);
    }
    this.deliveries.inc({ event: payload.event, outcome: result.verdict === 'delivered' ? 'delivered' : 'failed' });
    if (result.verdict !== 'delivered') this.o.logger.warn({ hookId: hook.id, deliveryId: payload.deliveryId, attempt, error: result.error }, 'webhook delivery failed for good');
    return { delivered: result.verdict === 'delivered', ...(result.status !== undefined ? { status: result.status } : {}), ...(result.error ? { error: result.error } : {}) };
  }

  // --- versions -----------------------------------------------------------------------------------------------------
  /**
   * The `notify.versionCheck` handler. The first check of a factory records what is offered (nothing is "new" on a
   * fresh install); later checks queue the pre-warm builds of every version never seen before, then announce it. What
   * was seen is only added to, so a version withdrawn and offered again is not announced twice.
   *
   * What was seen is kept in Redis, not in the object store: losing it is safe (the next check is a first check again:
   * it records, announces nothing and builds nothing; at worst a version that appeared meanwhile is not pre-warmed),
   * and a factory nobody asked for pre-warm or webhooks writes nothing to its object store.
   */
  async checkVersions(): Promise<ResultOf<'notify.versionCheck'>> {
    // One check at a time cluster-wide: a check may outlast the interval (pre-warm builds to resolve and queue), and
    // the scheduler starts the next one on time in whichever gateway is free.
    const lockKey = `${this.o.prefix}:notify:version-check-lock`;
    const token = randomBytes(8).toString('hex');
    if ((await this.o.redis.set(lockKey, token, 'PX', VERSION_CHECK_LOCK_MS, 'NX')) !== 'OK') {
      this.versionChecks.inc({ result: 'busy' });
      return { newVersions: [] };
    }
    try {
      return await this.checkVersionsLocked();
    } finally {
      // released only by its holder (an expired lock may have a new one)
      await this.o.redis.eval(RELEASE_LOCK, 1, lockKey, token).catch(() => undefined);
    }
  }

  private async checkVersionsLocked(): Promise<ResultOf<'notify.versionCheck'>> {
    const offered = await this.o.versions();
    const seenKey = `${this.o.prefix}:notify:talos-versions-seen`;
    const seen = await this.o.redis.smembers(seenKey);
    if (seen.length === 0) {
      if (offered.length) await this.o.redis.sadd(seenKey, ...offered);
      this.o.logger.info({ versions: offered.length }, 'version check: first run, offered versions recorded');
      this.versionChecks.inc({ result: 'first' });
      return { newVersions: [] };
    }
    const fresh = offered.filter((v) => !seen.includes(v));
    if (fresh.length === 0) {
      this.versionChecks.inc({ result: 'unchanged' });
      return { newVersions: [] };
    }
    const sets = await this.o.store.listPrewarm();
    for (const version of fresh) {
      for (const set of sets) {
        for (const asset of set.assets) {
          try {
            await this.o.queuePrewarmBuild(set.schematic, version, asset);
          } catch (err) {
            // an asset this version cannot build (too old/new for it) is skipped; the others are queued
            this.o.logger.warn({ schematic: set.schematic, version, asset, err: (err as Error).message }, 'pre-warm build not queued');
          }
        }
      }
      await this.emit('version.available', { version }, `version-${version}`, undefined);
    }
    await this.o.redis.sadd(seenKey, ...fresh);
    this.versionChecks.inc({ result: 'new' });
    this.o.logger.info({ newVersions: fresh, prewarmSchematics: sets.length }, 'version check: new Talos versions');
    return { newVersions: fresh };
  }

  // --- builds -------------------------------------------------------------------------------------------------------
  /**
   * Reads the build feed in a consumer group shared by every gateway: each state change is handled by one of them, and
   * a change taken by a gateway that died before acknowledging it is taken over after FEED_CLAIM_IDLE_MS. A change
   * handled twice anyway is delivered once per hook (the delivery ID derives from the feed entry's ID). The group
   * starts at the feed's end when first created; from then on a gateway restart misses nothing.
   */
  watchBuilds(): void {
    const connection = this.o.blockingConnection();
    const key = this.o.buildFeedKey;
    const consumer = `${os.hostname()}/${process.pid}`;
    const done = (async () => {
      let lastClaim = 0;
      // made on the first read, and again when Redis lost it (a restart without persistence): NOGROUP
      let grouped = false;
      while (!this.closed) {
        try {
          if (!grouped) {
            await connection.xgroup('CREATE', key, FEED_GROUP, '$', 'MKSTREAM').catch((err: Error) => {
              if (!/BUSYGROUP/.test(err.message)) throw err;
            });
            grouped = true;
          }
          let entries: Array<[string, string[]]> = [];
          if (Date.now() - lastClaim > FEED_CLAIM_IDLE_MS / 2) {
            lastClaim = Date.now();
            const claimed = (await connection.xautoclaim(key, FEED_GROUP, consumer, FEED_CLAIM_IDLE_MS, '0-0', 'COUNT', 100)) as [string, Array<[string, string[]] | null>];
            entries = claimed[1].filter((e): e is [string, string[]] => !!e);
          }
          if (entries.length === 0) {
            const read = (await connection.xreadgroup('GROUP', FEED_GROUP, consumer, 'COUNT', 100, 'BLOCK', 5000, 'STREAMS', key, '>')) as Array<[string, Array<[string, string[]]>]> | null;
            entries = read?.[0]?.[1] ?? [];
          }
          for (const [entryId, fields] of entries) {
            // unacknowledged on failure: taken over (by this gateway or another) once idle
            if (await this.buildChanged(entryId, fields)) await connection.xack(key, FEED_GROUP, entryId);
          }
        } catch (err) {
          if (this.closed) break;
          if (/NOGROUP/.test(String((err as Error)?.message))) grouped = false;
          this.o.logger.warn({ err }, 'could not read the build feed; retrying');
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })();
    this.feed = { connection, done };
  }

  /** One feed entry: a build that ended becomes build.succeeded / build.failed. True once handled. */
  private async buildChanged(entryId: string, fields: string[]): Promise<boolean> {
    const ended = buildEventOfFeedEntry(fields);
    if (!ended) return true;
    try {
      await this.emit(ended.event, ended.build, `build-${ended.build.id}-${entryId}`, ended.build.schematic);
      return true;
    } catch (err) {
      this.o.logger.warn({ err, build: ended.build.id }, 'could not queue build webhooks');
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.feed?.connection.disconnect();
    await this.feed?.done;
  }
}

/**
 * The webhook event of one build feed entry (fields `id`, `state`, `build`): build.succeeded for a build that ran and
 * is done, build.failed for one that failed; nothing for other states, for a `done` that never ran (asked for when the
 * asset was already stored: no stages) and for an entry that is not a build.
 */
export function buildEventOfFeedEntry(fields: string[]): { event: 'build.succeeded' | 'build.failed'; build: Build } | undefined {
  const entry: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]] = fields[i + 1];
  if (entry.state !== 'done' && entry.state !== 'failed') return undefined;
  let build: Build;
  try {
    build = JSON.parse(entry.build) as Build;
  } catch {
    return undefined;
  }
  if (typeof build !== 'object' || build === null || typeof build.id !== 'string' || typeof build.schematic !== 'string') return undefined;
  if (entry.state === 'done' && !(build.stages?.length > 0)) return undefined;
  return { event: entry.state === 'done' ? 'build.succeeded' : 'build.failed', build };
}
