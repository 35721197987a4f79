/**
 * Build records in Redis, shared by every gateway and build-worker of a cluster. Per build:
 *
 * - `<prefix>:builds:<id>`: a hash {rev, build}: the current record (JSON) and its revision (1, 2, 3 …);
 * - `<prefix>:builds:<id>:events`: a stream of every revision, entry ID `0-<rev>` (the SSE event id), the last
 *   MAX_EVENTS kept;
 * - pub/sub channel `<prefix>:builds:<id>`: `<rev> <json>` for each revision, for live followers (watch.ts).
 *
 * Cluster-wide:
 * - `<prefix>:builds:index` and `<prefix>:builds:index:<schematic>`: sorted sets of build IDs by creation time
 *   (listing, newest first);
 * - `<prefix>:builds:events` (BUILD_FEED): a stream of state changes (`id`, `state`, `build`), capped near
 *   FEED_LENGTH — what webhooks and other consumers read (XREAD / XREADGROUP) for build.succeeded / build.failed.
 *
 * Every write is one compare-and-set script on the revision: the change is computed here from the record read, and
 * written with its event, feed entry, publication and expiry only if nobody wrote in between (else it is computed
 * again). Records expire `retentionMs` after their last write once ended, and a day later than that while under way
 * (a record lost meanwhile is written again by the worker that runs the job).
 */
import type IORedis from 'ioredis';
import { Build, BuildChange, isTerminal } from './record';

/** Events kept per build (the contract asks for at least 200). */
export const MAX_EVENTS = 256;
/** Approximate length of the cluster-wide feed of state changes. */
export const FEED_LENGTH = 10_000;
/** How much longer than the retention a record under way lives without a write. */
const LIVE_EXTRA_MS = 24 * 3600_000;
/** Listing reads at most this many index entries (newest first) to find `limit` matches. */
const MAX_SCANNED = 1000;
const MAX_CAS_ATTEMPTS = 20;

// KEYS: record, events, index, schematic index, feed. ARGV: expected rev, build JSON, ttl ms, max events, created
// at (ms), id, state changed (1/0), feed length, channel, state, prune index entries created before (ms).
// Returns the new revision, or -1 when the record changed since it was read.
const WRITE = `
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[1]) then return -1 end
local n = rev + 1
if rev == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[11])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[11])
end
redis.call('HSET', KEYS[1], 'rev', n, 'build', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '0-' .. n, 'build', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
if ARGV[7] == '1' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', 'id', ARGV[6], 'state', ARGV[10], 'build', ARGV[2])
end
redis.call('PUBLISH', ARGV[9], n .. ' ' .. ARGV[2])
return n
`;

/** One revision of a build: `n` is its SSE event id. */
export interface BuildEvent {
  n: number;
  build: Build;
}

export interface BuildListFilter {
  schematic?: string;
  version?: string;
  limit: number;
}

export class BuildStore {
  constructor(
    private readonly redis: IORedis,
    private readonly prefix: string,
    private readonly retentionMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private recordKey = (id: string) => `${this.prefix}:builds:${id}`;
  private eventsKey = (id: string) => `${this.prefix}:builds:${id}:events`;
  private indexKey = (schematic?: string) => `${this.prefix}:builds:index${schematic ? `:${schematic}` : ''}`;
  /** The cluster-wide stream of state changes (see the module comment). */
  get feedKey(): string {
    return `${this.prefix}:builds:events`;
  }
  /** The pub/sub channel of one build's revisions (`<rev> <json>`). */
  channel(id: string): string {
    return `${this.prefix}:builds:${id}`;
  }

  /** The current record and its revision; undefined when unknown or expired. */
  async get(id: string): Promise<BuildEvent | undefined> {
    const [rev, json] = await this.redis.hmget(this.recordKey(id), 'rev', 'build');
    if (!rev || !json) return undefined;
    return { n: Number(rev), build: JSON.parse(json) as Build };
  }

  /**
   * Applies a change atomically: the resulting revision (the current one when the change had nothing to do; undefined
   * when there is no record and the change made none).
   */
  async change(id: string, change: BuildChange): Promise<BuildEvent | undefined> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.get(id);
      const next = change(current?.build, this.now());
      if (!next) return current;
      const stateChanged = next.state !== current?.build.state;
      const ttl = isTerminal(next) ? this.retentionMs : this.retentionMs + LIVE_EXTRA_MS;
      const json = JSON.stringify(next);
      const created = Date.parse(next.createdAt);
      const rev = (await this.redis.eval(
        WRITE,
        5,
        this.recordKey(id),
        this.eventsKey(id),
        this.indexKey(),
        this.indexKey(next.schematic),
        this.feedKey,
        current?.n ?? 0,
        json,
        ttl,
        MAX_EVENTS,
        created,
        id,
        stateChanged ? '1' : '0',
        FEED_LENGTH,
        this.channel(id),
        next.state,
        this.now().getTime() - this.retentionMs - LIVE_EXTRA_MS,
      )) as number;
      if (rev > 0) return { n: rev, build: next };
    }
    throw new Error(`build ${id}: too many concurrent writes`);
  }

  /** The kept revisions after `after` (oldest first). */
  async eventsAfter(id: string, after: number): Promise<BuildEvent[]> {
    const entries = (await this.redis.xrange(this.eventsKey(id), `(0-${Math.max(0, Math.floor(after))}`, '+')) as Array<[string, string[]]>;
    return entries.map(([entryId, fields]) => ({ n: Number(entryId.split('-')[1]), build: JSON.parse(fields[fields.indexOf('build') + 1]) as Build }));
  }

  /** Recent builds, newest first, filtered by schematic and version. */
  async list(filter: BuildListFilter): Promise<Build[]> {
    const index = this.indexKey(filter.schematic);
    const out: Build[] = [];
    const page = 100;
    for (let start = 0; start < MAX_SCANNED && out.length < filter.limit; start += page) {
      const ids = await this.redis.zrevrange(index, start, start + page - 1);
      if (!ids.length) break;
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.recordKey(id), 'build');
      const replies = (await pipeline.exec()) ?? [];
      const gone: string[] = [];
      replies.forEach(([err, json], i) => {
        if (err || typeof json !== 'string') {
          if (!err) gone.push(ids[i]);
          return;
        }
        const b = JSON.parse(json) as Build;
        if ((!filter.schematic || b.schematic === filter.schematic) && (!filter.version || b.version === filter.version) && out.length < filter.limit) out.push(b);
      });
      // expired records leave the index as they are met
      if (gone.length) {
        await this.redis.zrem(index, ...gone);
        if (filter.schematic) await this.redis.zrem(this.indexKey(), ...gone);
        start -= gone.length;
      }
    }
    return out;
  }

  /**
   * How many build jobs start before `jobId` in BullMQ queue `queueKey` (`<prefix>:build`): jobs without a priority
   * (its wait list) first, then prioritized ones by priority and age. Undefined when the job is not waiting.
   */
  async queuePosition(queueKey: string, jobId: string): Promise<number | undefined> {
    const replies = (await this.redis.multi().llen(`${queueKey}:wait`).zrank(`${queueKey}:prioritized`, jobId).lpos(`${queueKey}:wait`, jobId).exec()) ?? [];
    const [waiting, rank, index] = replies.map(([err, v]) => (err ? null : (v as number | null)));
    if (typeof rank === 'number') return (waiting ?? 0) + rank;
    // the wait list is taken from its tail
    if (typeof index === 'number' && typeof waiting === 'number') return waiting - 1 - index;
    return undefined;
  }
}
