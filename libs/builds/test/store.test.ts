/**
 * The build store against a real Redis: revisions as contiguous event ids (kept, trimmed, expiring), concurrent
 * writers never losing a change, the state-change feed, listing, and queue positions read from BullMQ's own keys
 * (with JobClient.changePriority moving a job up).
 */
import IORedis from 'ioredis';
import { BuildStore, buildSubject, BuildWatcher, MAX_EVENTS, positioned, progressed, queued, started, succeeded } from '@factory/builds';
import { JobClient } from '@factory/queue';
import { createLogger } from '@factory/telemetry';
import { startRedis, ProcHandle } from '../../../test/support/procs';

jest.setTimeout(30_000);
let redis: ProcHandle & { url: string };
let conn: IORedis;
const subjectFor = (n: number, version = 'v1.11.3') =>
  buildSubject({ schematicId: String(n).padStart(64, '0'), version, path: 'kernel-amd64', kind: 'kernel', platform: 'metal', arch: 'amd64', secureboot: false, outFormat: 'raw' } as never, 'http://f.test/');

beforeAll(async () => {
  redis = await startRedis();
  conn = new IORedis(redis.url);
});
afterAll(async () => {
  conn.disconnect();
  await redis.stop();
});

test('each change is one revision and one event (ids 1, 2, 3 …); no change, no event; the history is capped', async () => {
  const store = new BuildStore(conn, 't1', 60_000);
  const s = subjectFor(1);
  expect((await store.change(s.id, queued(s, 'user')))!.n).toBe(1);
  expect((await store.change(s.id, queued(s, 'user')))!.n).toBe(1);
  await store.change(s.id, started(s, 1, 'user', 'w'));
  for (let p = 1; p <= MAX_EVENTS + 20; p++) await store.change(s.id, progressed({ percent: p / 3, bytes: p }));
  const current = (await store.get(s.id))!;
  expect(current.n).toBe(MAX_EVENTS + 22);
  const kept = await store.eventsAfter(s.id, 0);
  expect(kept).toHaveLength(MAX_EVENTS);
  expect(kept.map((e) => e.n)).toEqual(Array.from({ length: MAX_EVENTS }, (_, i) => current.n - MAX_EVENTS + 1 + i));
  expect((await store.eventsAfter(s.id, current.n - 2)).map((e) => e.n)).toEqual([current.n - 1, current.n]);
  // under way: kept a day longer than the retention; ended: the retention
  expect(await conn.pttl(`t1:builds:${s.id}`)).toBeGreaterThan(60_000);
  await store.change(s.id, succeeded(s, { size: 1, sha256: 'a'.repeat(64) }, 'user'));
  expect(await conn.pttl(`t1:builds:${s.id}`)).toBeLessThanOrEqual(60_000);
  expect(await conn.pttl(`t1:builds:${s.id}:events`)).toBeLessThanOrEqual(60_000);
  // the feed has the state changes only
  const feed = await conn.xrange(store.feedKey, '-', '+');
  expect(feed.map(([, f]) => f[f.indexOf('state') + 1])).toEqual(['queued', 'running', 'done']);
});

test('concurrent writers (two workers and gateways) lose no change: every revision is one of them, in order', async () => {
  const a = new BuildStore(conn, 't2', 60_000);
  const second = new IORedis(redis.url);
  const b = new BuildStore(second, 't2', 60_000);
  const s = subjectFor(2);
  await a.change(s.id, queued(s, 'user'));
  await a.change(s.id, started(s, 1, 'user', 'w'));
  await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).change(s.id, progressed({ bytes: 1000 + i }))));
  const events = await a.eventsAfter(s.id, 2);
  expect(events).toHaveLength(20);
  expect(new Set(events.map((e) => e.build.bytes)).size).toBe(20);
  second.disconnect();
});

test('a watcher gets each revision published; listing is newest first and filtered', async () => {
  const store = new BuildStore(conn, 't3', 60_000);
  const watcher = new BuildWatcher(new IORedis(redis.url), store);
  const s = subjectFor(3);
  const seen: number[] = [];
  const stop = await watcher.watch(s.id, (e) => seen.push(e.n));
  await store.change(s.id, queued(s, 'user'));
  await store.change(s.id, positioned(4));
  for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  expect(seen).toEqual([1, 2]);
  stop();
  await watcher.close();
  const other = subjectFor(4, 'v1.12.2');
  await new Promise((r) => setTimeout(r, 5));
  await store.change(other.id, queued(other, 'prewarm'));
  expect((await store.list({ limit: 10 })).map((b) => b.id)).toEqual([other.id, s.id]);
  expect((await store.list({ limit: 10, version: 'v1.11.3' })).map((b) => b.id)).toEqual([s.id]);
  expect((await store.list({ limit: 10, schematic: other.schematic })).map((b) => b.id)).toEqual([other.id]);
  expect(await store.list({ limit: 1 })).toHaveLength(1);
  // an expired record leaves the listing
  await conn.del(`t3:builds:${other.id}`);
  expect((await store.list({ limit: 10 })).map((b) => b.id)).toEqual([s.id]);
});

test('queue positions follow BullMQ priorities; changePriority moves a waiting job up', async () => {
  const jobs = new JobClient(redis.url, 't4', createLogger('test', 'silent'));
  const store = new BuildStore(conn, 't4', 60_000);
  try {
    const q = jobs.queue('build');
    await q.add('build.asset', {} as never, { jobId: 'asset-a', priority: 100 });
    await q.add('build.asset', {} as never, { jobId: 'asset-b', priority: 100 });
    await q.add('build.asset', {} as never, { jobId: 'asset-c', priority: 2 });
    await q.add('build.asset', {} as never, { jobId: 'asset-d', priority: 100 });
    const positions = async () => Promise.all(['a', 'b', 'c', 'd'].map((j) => store.queuePosition('t4:build', `asset-${j}`)));
    expect(await positions()).toEqual([1, 2, 0, 3]);
    await jobs.changePriority('build', 'asset-d', 1);
    expect(await positions()).toEqual([2, 3, 1, 0]);
    expect(await store.queuePosition('t4:build', 'asset-none')).toBeUndefined();
  } finally {
    await jobs.close();
  }
});
