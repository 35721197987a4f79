/**
 * Per-client limits and build-queue fairness, shared by every gateway and registry-proxy of a cluster through Redis.
 *
 * - Schematic creation: a token bucket per client (every `POST /schematics` spends one token).
 * - Cold builds: only a request that would queue a *new* build is counted — a cache hit never gets here (the asset is
 *   looked up in storage first) and a request for a build someone already queued joins that job for free. A cold
 *   build spends a token of the client's build bucket and is refused while the client already has
 *   `maxOutstanding` builds queued or running.
 * - Fairness: BullMQ (OSS) has no per-group queues, so a new build job gets priority `1 + the client's outstanding
 *   builds` (lower runs first): one client queuing a hundred builds gets priorities 1..100, and the next client's
 *   single build (priority 1) runs before most of them. A build later joined by others keeps its first priority.
 *
 * Each decision is one Lua script (one round trip, atomic across gateways); time is Redis's own clock, so gateways
 * with skewed clocks agree. Outstanding builds are a sorted set of job IDs scored by when the entry expires: the
 * gateway removes its entry when the wait ends, and an entry whose gateway died expires after the longest a build
 * can be waited for — no counter leaks forever.
 */
import { FactoryError } from '@factory/errors';
import type { LimitSettings, Rate } from '@factory/config';
import type { BuildTicket } from '@factory/asset';

/** BullMQ's largest job priority. */
export const MAX_PRIORITY = 2_097_152;

/** A 429 carrying how long to wait; the gateway sends it as `Retry-After` (seconds). */
export class RateLimitedError extends FactoryError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, message);
  }
}

/** The Redis commands the limiter needs (ioredis' `eval`). */
export interface ScriptRunner {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

/** Retry hint when a client has too many builds outstanding: a build rarely finishes sooner. */
const OUTSTANDING_RETRY_MS = 15_000;

// KEYS[1] bucket; ARGV capacity, periodMs. Returns {1, 0} when a token was taken, {0, ms until one is} otherwise.
const TAKE_TOKEN = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
${bucketLua('KEYS[1]', 'tonumber(ARGV[1])', 'tonumber(ARGV[2])')}
return {1, 0}
`;

// KEYS[1] the build job's hash, KEYS[2] bucket, KEYS[3] outstanding set; ARGV capacity (0: no rate), periodMs,
// maxOutstanding (0: no cap), job ID, how long an outstanding entry lives (ms).
// Returns {2, 0, 0} joined an existing job (or one this client is queuing this instant); {1, 0, outstanding}
// admitted; {0, retryMs, 1} over the rate; {0, retryMs, 2} over the outstanding cap.
const ADMIT_BUILD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {2, 0, 0} end
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZSCORE', KEYS[3], ARGV[4]) then return {2, 0, 0} end
local outstanding = redis.call('ZCARD', KEYS[3])
local maxOutstanding = tonumber(ARGV[3])
if maxOutstanding > 0 and outstanding >= maxOutstanding then return {0, ${OUTSTANDING_RETRY_MS}, 2} end
if tonumber(ARGV[1]) > 0 then
${bucketLua('KEYS[2]', 'tonumber(ARGV[1])', 'tonumber(ARGV[2])', '1')}
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))
return {1, 0, outstanding}
`;

/**
 * Lua: take one token from the bucket at `key` (refilled continuously: `capacity` tokens per `periodMs`), or return
 * {0, ms until a token is there[, extra]}. Needs `now` (ms) in scope. The key expires when the bucket would be full.
 */
function bucketLua(key: string, capacity: string, periodMs: string, extra?: string): string {
  return `
  local cap, period = ${capacity}, ${periodMs}
  local b = redis.call('HMGET', ${key}, 'tokens', 'at')
  local tokens, at = tonumber(b[1]) or cap, tonumber(b[2]) or now
  tokens = math.min(cap, tokens + math.max(0, now - at) * cap / period)
  if tokens < 1 then return {0, math.ceil((1 - tokens) * period / cap)${extra ? `, ${extra}` : ''}} end
  redis.call('HSET', ${key}, 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', ${key}, math.ceil(period))`;
}

/** What admitting a build decided. */
export type BuildAdmission =
  | { kind: 'joined' }
  | { kind: 'admitted'; priority: number; outstanding: number; release: () => Promise<void> };

export interface LimiterOptions {
  redis: ScriptRunner & { zrem(key: string, member: string): Promise<unknown> };
  /** BullMQ key prefix (a job's hash is `<prefix>:<queue>:<jobId>`) */
  prefix: string;
  settings: Pick<LimitSettings, 'schematics' | 'builds' | 'maxOutstanding'>;
  /** the longest a build is waited for: an outstanding entry of a gateway that died expires after it */
  holdMs: number;
  onLimited?: (kind: 'schematics' | 'builds' | 'outstanding') => void;
  /** every build decision: joined, or admitted with the client's outstanding builds before it */
  onAdmission?: (a: { kind: 'joined' } | { kind: 'admitted'; outstanding: number }) => void;
  /** Redis failed: the request goes ahead unlimited (it needs Redis for its job anyway, and says so if it is down) */
  onRedisError?: (err: unknown) => void;
}

/** Turns a script's wait into a Retry-After: whole seconds, at least 1. */
export const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

const per = (r: Rate) => `${r.count} per ${describePeriod(r.periodMs)}`;
function describePeriod(ms: number): string {
  const units: Array<[number, string]> = [[86_400_000, 'day'], [3_600_000, 'hour'], [60_000, 'minute'], [1000, 'second']];
  const [size, name] = units.find(([size]) => ms % size === 0) ?? [1, 'ms'];
  return ms === size ? name : `${ms / size} ${name}s`;
}

export class RateLimiter {
  constructor(private readonly o: LimiterOptions) {}

  private key(kind: string, client: string): string {
    return `${this.o.prefix}:ratelimit:${kind}:${client}`;
  }

  /** A script's answer; undefined (fail open) when Redis did not give one. */
  private async run<T>(script: string, keys: string[], args: Array<string | number>): Promise<T | undefined> {
    try {
      return (await this.o.redis.eval(script, keys.length, ...keys, ...args)) as T;
    } catch (err) {
      this.o.onRedisError?.(err);
      return undefined;
    }
  }

  /** Spends one schematic-creation token of `client`, or throws a 429. */
  async takeSchematic(client: string): Promise<void> {
    const rate = this.o.settings.schematics;
    if (!rate) return;
    const answer = await this.run<[number, number]>(TAKE_TOKEN, [this.key('schematics', client)], [rate.count, rate.periodMs]);
    if (!answer || answer[0]) return;
    const waitMs = answer[1];
    this.o.onLimited?.('schematics');
    const seconds = retryAfterSeconds(waitMs);
    throw new RateLimitedError(`too many requests: schematic creation is limited to ${per(rate)} per client; retry in ${seconds} s`, seconds);
  }

  /**
   * Admission of the build job `jobId` (of BullMQ queue `queue`) for `client`: joined when the job is already queued
   * or running (free), else a new build that counts against the client's rate and outstanding cap (429 when over)
   * and gets a fair priority.
   */
  async admitBuild(client: string, jobId: string, queue = 'build'): Promise<BuildAdmission> {
    const { builds, maxOutstanding } = this.o.settings;
    const outstandingKey = this.key('outstanding', client);
    const answer = await this.run<[number, number, number]>(
      ADMIT_BUILD,
      [`${this.o.prefix}:${queue}:${jobId}`, this.key('builds', client), outstandingKey],
      [builds?.count ?? 0, builds?.periodMs ?? 0, maxOutstanding, jobId, this.o.holdMs],
    );
    if (!answer) return { kind: 'joined' };
    const [code, waitMs, detail] = answer;
    if (code === 2) {
      this.o.onAdmission?.({ kind: 'joined' });
      return { kind: 'joined' };
    }
    if (code === 1) {
      this.o.onAdmission?.({ kind: 'admitted', outstanding: detail });
      let released = false;
      return {
        kind: 'admitted',
        outstanding: detail,
        priority: fairPriority(detail),
        release: async () => {
          if (released) return;
          released = true;
          // an entry left behind (Redis down now) expires with holdMs
          await this.o.redis.zrem(outstandingKey, jobId).catch((err: unknown) => this.o.onRedisError?.(err));
        },
      };
    }
    const seconds = retryAfterSeconds(waitMs);
    if (detail === 2) {
      this.o.onLimited?.('outstanding');
      throw new RateLimitedError(`too many requests: at most ${maxOutstanding} builds per client may be queued or running; retry in ${seconds} s`, seconds);
    }
    this.o.onLimited?.('builds');
    throw new RateLimitedError(`too many requests: new builds are limited to ${per(builds!)} per client; retry in ${seconds} s`, seconds);
  }
}

/**
 * The build ticket `ensureAsset` takes: admission, the job's priority, and the release when the wait ends. A joined
 * job keeps its own priority (BullMQ ignores the options of a duplicate); the 1 given then only matters when Redis
 * failed and the limiter let the request through — a job without any priority would run before every fair one.
 */
export async function buildTicket(limiter: RateLimiter, client: string, jobId: string, queue = 'build'): Promise<BuildTicket> {
  const admission = await limiter.admitBuild(client, jobId, queue);
  if (admission.kind === 'joined') return { priority: 1 };
  return { priority: admission.priority, release: () => void admission.release() };
}

/** The BullMQ priority of a client's next build: 1 + the builds it already has queued or running. */
export function fairPriority(outstanding: number): number {
  return Math.min(MAX_PRIORITY, 1 + Math.max(0, Math.floor(outstanding)));
}
