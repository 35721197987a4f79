/**
 * The limiter's Redis scripts against a real Redis: token buckets, joining an existing build for free, the
 * outstanding cap, fair priorities, expiry of entries a dead gateway left, failing open when Redis does not answer.
 */
import { redisConnection } from '@factory/queue';
import { buildTicket, fairPriority, MAX_PRIORITY, RateLimitedError, RateLimiter, retryAfterSeconds } from '../src';
import { ProcHandle, startRedis } from '../../../test/support/procs';
import { rejectionOf } from '../../../test/support/expect';

test('priorities: 1 + outstanding, within BullMQ bounds; Retry-After in whole seconds, at least 1', () => {
  expect(fairPriority(0)).toBe(1);
  expect(fairPriority(7)).toBe(8);
  expect(fairPriority(10 ** 9)).toBe(MAX_PRIORITY);
  expect(retryAfterSeconds(1)).toBe(1);
  expect(retryAfterSeconds(12_001)).toBe(13);
});

describe('against Redis', () => {
  let redisProc: ProcHandle & { url: string };
  let redis: ReturnType<typeof redisConnection>;
  let n = 0;
  /** a limiter on a key prefix of its own */
  const limiterWith = (settings: ConstructorParameters<typeof RateLimiter>[0]['settings'], more: Partial<ConstructorParameters<typeof RateLimiter>[0]> = {}) => {
    const prefix = `t${++n}`;
    const limited: string[] = [];
    const limiter = new RateLimiter({ redis, prefix, settings, holdMs: 60_000, onLimited: (k) => limited.push(k), ...more });
    return { limiter, prefix, limited };
  };

  beforeAll(async () => {
    redisProc = await startRedis();
    redis = redisConnection(redisProc.url, 'blocking', 'limits-test');
  });
  afterAll(async () => {
    redis?.disconnect();
    await redisProc?.stop();
  });

  test('schematics: a burst of the rate passes, the next is a 429 with a retry time; other clients are unaffected', async () => {
    const { limiter, limited } = limiterWith({ schematics: { count: 3, periodMs: 60_000 }, maxOutstanding: 0 });
    for (let i = 0; i < 3; i++) await limiter.takeSchematic('198.51.100.1');
    const err = await rejectionOf(limiter.takeSchematic('198.51.100.1'), RateLimitedError);
    expect(err.status).toBe(429);
    // one token per 20 s
    expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(19);
    expect(err.retryAfterSeconds).toBeLessThanOrEqual(20);
    expect(err.message).toBe(`too many requests: schematic creation is limited to 3 per minute per client; retry in ${err.retryAfterSeconds} s`);
    await limiter.takeSchematic('198.51.100.2');
    expect(limited).toEqual(['schematics']);
  });

  test('tokens come back with time', async () => {
    const { limiter } = limiterWith({ schematics: { count: 2, periodMs: 400 }, maxOutstanding: 0 });
    await limiter.takeSchematic('c');
    await limiter.takeSchematic('c');
    await rejectionOf(limiter.takeSchematic('c'), RateLimitedError);
    await new Promise((r) => setTimeout(r, 250));
    await limiter.takeSchematic('c');
  });

  test('no rate: never limited, nothing stored', async () => {
    const { limiter, prefix } = limiterWith({ maxOutstanding: 0 });
    for (let i = 0; i < 50; i++) await limiter.takeSchematic('c');
    expect(await redis.keys(`${prefix}:*`)).toEqual([]);
  });

  test('builds: joining a queued build is free; new builds count, get rising priorities, and are limited', async () => {
    const { limiter, prefix, limited } = limiterWith({ builds: { count: 3, periodMs: 60_000 }, maxOutstanding: 0 });
    const admitted = [];
    for (const job of ['a', 'b', 'c']) admitted.push(await limiter.admitBuild('A', job));
    expect(admitted.map((a) => a.kind === 'admitted' && a.priority)).toEqual([1, 2, 3]);
    // another client's first build runs before A's second
    const other = await limiter.admitBuild('B', 'x');
    expect(other).toMatchObject({ kind: 'admitted', priority: 1 });
    const err = await rejectionOf(limiter.admitBuild('A', 'd'), RateLimitedError);
    expect(err.message).toMatch(/^too many requests: new builds are limited to 3 per minute per client; retry in \d+ s$/);
    expect(limited).toEqual(['builds']);
    // a job someone queued already (its BullMQ hash exists): joined, whatever A's budget
    await redis.hset(`${prefix}:build:d`, 'name', 'build.asset');
    expect(await limiter.admitBuild('A', 'd')).toEqual({ kind: 'joined' });
    // the same client asking for a build it is queuing this instant joins it too (counted once)
    expect(await limiter.admitBuild('A', 'a')).toEqual({ kind: 'joined' });
  });

  test('outstanding cap: refused while the client has that many builds, admitted again once one finishes', async () => {
    const { limiter, prefix, limited } = limiterWith({ maxOutstanding: 2 });
    const first = await limiter.admitBuild('A', 'a');
    const second = await limiter.admitBuild('A', 'b');
    const err = await rejectionOf(limiter.admitBuild('A', 'c'), RateLimitedError);
    expect(err.message).toBe('too many requests: at most 2 builds per client may be queued or running; retry in 15 s');
    expect(limited).toEqual(['outstanding']);
    expect(await limiter.admitBuild('B', 'c')).toMatchObject({ kind: 'admitted', priority: 1 });
    if (first.kind !== 'admitted' || second.kind !== 'admitted') throw new Error('expected admissions');
    await first.release();
    await first.release(); // idempotent
    expect(await limiter.admitBuild('A', 'c')).toMatchObject({ kind: 'admitted', priority: 2 });
    await second.release();
    expect(await redis.zcard(`${prefix}:ratelimit:outstanding:A`)).toBe(1);
  });

  test('entries a dead gateway never released expire after holdMs (no counter leaks), and so does the set', async () => {
    const { limiter, prefix } = limiterWith({ maxOutstanding: 1 }, { holdMs: 300 });
    await limiter.admitBuild('A', 'a');
    await rejectionOf(limiter.admitBuild('A', 'b'), RateLimitedError);
    await new Promise((r) => setTimeout(r, 350));
    expect(await limiter.admitBuild('A', 'b')).toMatchObject({ kind: 'admitted', priority: 1 });
    expect(await redis.pttl(`${prefix}:ratelimit:outstanding:A`)).toBeLessThanOrEqual(300);
  });

  test('buildTicket: the priority for a new build and its release; nothing to release for a joined one', async () => {
    const { limiter, prefix } = limiterWith({ maxOutstanding: 5 });
    const ticket = await buildTicket(limiter, 'A', 'a');
    expect(ticket.priority).toBe(1);
    expect(await redis.zcard(`${prefix}:ratelimit:outstanding:A`)).toBe(1);
    ticket.release!();
    await new Promise((r) => setTimeout(r, 50));
    expect(await redis.zcard(`${prefix}:ratelimit:outstanding:A`)).toBe(0);
    await redis.hset(`${prefix}:build:b`, 'name', 'build.asset');
    expect(await buildTicket(limiter, 'A', 'b')).toEqual({ priority: 1 });
  });

  test('Redis failing: requests go ahead unlimited, the failure is reported', async () => {
    const errors: unknown[] = [];
    const broken = { eval: async () => Promise.reject(new Error('connection is closed')), zrem: async () => 0 };
    const limiter = new RateLimiter({ redis: broken, prefix: 'x', settings: { schematics: { count: 1, periodMs: 1000 }, maxOutstanding: 1 }, holdMs: 1000, onRedisError: (e) => errors.push(e) });
    await limiter.takeSchematic('A');
    await limiter.takeSchematic('A');
    expect(await limiter.admitBuild('A', 'a')).toEqual({ kind: 'joined' });
    expect(errors).toHaveLength(3);
  });
});
