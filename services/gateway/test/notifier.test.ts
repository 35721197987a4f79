/**
 * The Notifier over fakes of its adapters (an in-memory Redis, a recording queue; hooks in a local object store): who
 * an event reaches, one delivery ID per hook and event, the delivery handler's retry and log rules, the version check.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import type IORedis from 'ioredis';
import type { NotifySettings, WebhookSpec } from '@factory/config';
import { createObjectStore } from '@factory/storage';
import { createLogger, Registry } from '@factory/telemetry';
import { buildEventOfFeedEntry, DELIVERY_LOG_LENGTH, Notifier } from '../src/notify/service';
import { NotifyStore } from '../src/notify/store';
import { WEBHOOK_ATTEMPTS } from '../src/notify/delivery';

const S1 = '1'.repeat(64);
const S2 = '2'.repeat(64);

/** The few Redis commands the Notifier uses, in memory. */
function fakeRedis(o: { lockTaken?: boolean } = {}) {
  const lists = new Map<string, string[]>();
  const sets = new Map<string, Set<string>>();
  const redis = {
    lists,
    sets,
    async smembers(key: string) {
      return [...(sets.get(key) ?? [])];
    },
    async sadd(key: string, ...members: string[]) {
      const set = sets.get(key) ?? new Set<string>();
      members.forEach((m) => set.add(m));
      sets.set(key, set);
      return members.length;
    },
    async lrange(key: string, start: number, stop: number) {
      return (lists.get(key) ?? []).slice(start, stop + 1);
    },
    async del(key: string) {
      lists.delete(key);
      return 1;
    },
    multi() {
      const ops: Array<() => void> = [];
      const chain = {
        lpush: (key: string, v: string) => (ops.push(() => lists.set(key, [v, ...(lists.get(key) ?? [])])), chain),
        ltrim: (key: string, start: number, stop: number) => (ops.push(() => lists.set(key, (lists.get(key) ?? []).slice(start, stop + 1))), chain),
        expire: () => chain,
        exec: async () => ops.forEach((op) => op()),
      };
      return chain;
    },
    async set() {
      return o.lockTaken ? null : 'OK';
    },
    async eval() {
      return 1;
    },
  };
  return redis;
}

function fakeQueue() {
  const jobs = new Map<string, { name: string; data: { hookId: string; deliveryId: string; event: string; body: string } }>();
  return {
    jobs,
    async add(name: string, data: never, opts: { jobId: string }) {
      // BullMQ ignores a job ID it already has
      if (!jobs.has(opts.jobId)) jobs.set(opts.jobId, { name, data });
    },
  };
}

let dir: string;
let store: NotifyStore;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'notifier-'));
  store = new NotifyStore(createObjectStore({ kind: 'local', dir }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function notifier(o: { globals?: WebhookSpec[]; versions?: string[][]; queued?: string[]; failing?: string; lockTaken?: boolean } = {}) {
  const redis = fakeRedis({ lockTaken: o.lockTaken });
  const queue = fakeQueue();
  const metrics = new Registry();
  const settings: NotifySettings = { globalWebhooks: o.globals ?? [], allowPrivateTargets: true, deliveryTimeoutMs: 2000, retryBaseDelayMs: 10 };
  const offered = o.versions ?? [];
  const n = new Notifier({
    store,
    redis: redis as unknown as IORedis,
    notifyQueue: queue as unknown as Queue,
    prefix: 'test',
    settings,
    versions: async () => offered.shift() ?? [],
    queuePrewarmBuild: async (schematic, version, asset) => {
      if (asset === o.failing) throw new Error('not for this version');
      o.queued?.push(`${schematic.slice(0, 1)} ${version} ${asset}`);
    },
    buildFeedKey: 'test:builds:events',
    userAgent: 'test',
    metrics,
    logger: createLogger('test', 'silent'),
    blockingConnection: () => redis as unknown as IORedis,
  });
  return { n, redis, queue, metrics };
}

const hook = (id: string, spec: Partial<WebhookSpec>) => ({ id, url: `http://127.0.0.1:9/${id}`, secret: 's', events: ['build.succeeded' as const], createdAt: new Date().toISOString(), ...spec });

describe('events reach the hooks they are for, once', () => {
  it('build events: the schematic’s hooks, hooks for all schematics and global hooks (scoped or not)', async () => {
    await store.putWebhook(hook('a'.repeat(32), { schematic: S1 }));
    await store.putWebhook(hook('b'.repeat(32), { schematic: S2 }));
    await store.putWebhook(hook('c'.repeat(32), {}));
    await store.putWebhook(hook('d'.repeat(32), { schematic: S1, events: ['build.failed'] }));
    const { n, queue } = notifier({ globals: [{ url: 'http://127.0.0.1:9/g0', secret: 's', events: ['build.succeeded'] }, { url: 'http://127.0.0.1:9/g1', secret: 's', events: ['build.succeeded'], schematic: S2 }] });
    expect(await n.emit('build.succeeded', { id: 'x' }, 'build-x-1-0', S1)).toBe(3);
    expect([...queue.jobs.values()].map((j) => j.data.hookId).sort()).toEqual(['a'.repeat(32), 'c'.repeat(32), 'global-0']);
    // the same occurrence seen again (another gateway, a retried feed entry): the same jobs
    await n.emit('build.succeeded', { id: 'x' }, 'build-x-1-0', S1);
    expect(queue.jobs.size).toBe(3);
    const [first] = queue.jobs.values();
    expect(JSON.parse(first.data.body)).toEqual({ id: first.data.deliveryId, event: 'build.succeeded', createdAt: expect.any(String), data: { id: 'x' } });
    expect(queue.jobs.has(first.data.deliveryId)).toBe(true);
  });
  it('version.available: every hook subscribed to it, whatever its schematic', async () => {
    await store.putWebhook(hook('a'.repeat(32), { schematic: S1, events: ['version.available'] }));
    await store.putWebhook(hook('c'.repeat(32), { events: ['version.available', 'build.failed'] }));
    await store.putWebhook(hook('e'.repeat(32), {}));
    const { n, queue } = notifier();
    expect(await n.emit('version.available', { version: 'v1.12.2' }, 'version-v1.12.2', undefined)).toBe(2);
    expect([...queue.jobs.values()].map((j) => j.data.hookId).sort()).toEqual(['a'.repeat(32), 'c'.repeat(32)]);
  });
});

describe('the build feed', () => {
  const build = (state: string, stages: unknown[]) => JSON.stringify({ id: 'f'.repeat(64), schematic: S1, state, stages });
  it('a build that ran and ended is an event; an asset found already stored or a build under way is not', () => {
    expect(buildEventOfFeedEntry(['id', 'x', 'state', 'done', 'build', build('done', [{ name: 'starting' }])])?.event).toBe('build.succeeded');
    expect(buildEventOfFeedEntry(['id', 'x', 'state', 'failed', 'build', build('failed', [])])?.event).toBe('build.failed');
    expect(buildEventOfFeedEntry(['id', 'x', 'state', 'done', 'build', build('done', [])])).toBeUndefined();
    expect(buildEventOfFeedEntry(['id', 'x', 'state', 'running', 'build', build('running', [{ name: 'starting' }])])).toBeUndefined();
    expect(buildEventOfFeedEntry(['id', 'x', 'state', 'done', 'build', '{oops'])).toBeUndefined();
  });
});

describe('the delivery handler', () => {
  let server: http.Server;
  let base: string;
  let status = 204;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(status).end(status >= 400 ? 'nope' : undefined));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const payload = (hookId: string) => ({ hookId, deliveryId: 'd-1', event: 'build.failed', body: '{}' });
  const counter = async (metrics: Registry, outcome: string) =>
    (await metrics.getSingleMetricAsString('image_factory_webhook_deliveries_total')).split('\n').find((l) => l.includes(`outcome="${outcome}"`))?.split(' ').pop();

  it('a transient failure throws (BullMQ retries) until the last attempt, which is final; every attempt is logged', async () => {
    const id = 'a'.repeat(32);
    await store.putWebhook(hook(id, { url: `${base}/hook` }));
    const { n, metrics } = notifier();
    status = 503;
    for (let made = 0; made < WEBHOOK_ATTEMPTS - 1; made++) await expect(n.deliver(payload(id), { attemptsMade: made })).rejects.toThrow(/attempt \d: HTTP 503: nope/);
    expect(await n.deliver(payload(id), { attemptsMade: WEBHOOK_ATTEMPTS - 1 })).toEqual({ delivered: false, status: 503, error: 'HTTP 503: nope' });
    const log = await n.deliveryLog(id);
    expect(log.map((e) => e.attempt)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(log[0]).toEqual({ id: 'd-1', event: 'build.failed', attempt: 6, status: 503, error: 'HTTP 503: nope', at: expect.any(String) });
    expect(await counter(metrics, 'retried')).toBe('5');
    expect(await counter(metrics, 'failed')).toBe('1');
  });
  it('a permanent refusal is final at once; a delivery is logged with no error', async () => {
    const id = 'b'.repeat(32);
    await store.putWebhook(hook(id, { url: `${base}/hook` }));
    const { n, metrics } = notifier();
    status = 410;
    expect(await n.deliver(payload(id), { attemptsMade: 0 })).toEqual({ delivered: false, status: 410, error: 'HTTP 410: nope' });
    status = 200;
    expect(await n.deliver(payload(id), { attemptsMade: 0 })).toEqual({ delivered: true, status: 200 });
    expect((await n.deliveryLog(id)).map((e) => [e.status, e.error])).toEqual([
      [200, null],
      [410, 'HTTP 410: nope'],
    ]);
    expect(await counter(metrics, 'delivered')).toBe('1');
  });
  it('a hook deleted meanwhile is not delivered to, nor retried; the log keeps the last 100', async () => {
    const { n, redis } = notifier();
    expect(await n.deliver(payload('c'.repeat(32)), { attemptsMade: 0 })).toEqual({ delivered: false, error: 'webhook deleted' });
    const id = 'd'.repeat(32);
    await store.putWebhook(hook(id, { url: `${base}/hook` }));
    status = 204;
    for (let i = 0; i < DELIVERY_LOG_LENGTH + 5; i++) await n.deliver(payload(id), { attemptsMade: 0 });
    expect(redis.lists.get(`test:notify:deliveries:${id}`)).toHaveLength(DELIVERY_LOG_LENGTH);
  });
});

describe('the version check', () => {
  it('records what is offered on its first run; later, new versions get their pre-warm builds and one announcement', async () => {
    await store.putPrewarm({ schematic: S1, assets: ['kernel-amd64', 'metal-amd64.iso'], updatedAt: '' });
    await store.putPrewarm({ schematic: S2, assets: ['kernel-arm64', 'metal-arm64.raw.xz'], updatedAt: '' });
    await store.putWebhook(hook('a'.repeat(32), { events: ['version.available'] }));
    const queued: string[] = [];
    const { n, queue, redis } = notifier({
      versions: [['v1.11.3'], ['v1.11.3'], ['v1.11.3', 'v1.12.2'], ['v1.12.2'], ['v1.11.3', 'v1.12.2'], ['v1.12.2', 'v1.13.0'], ['v1.11.3', 'v1.12.2', 'v1.13.0']],
      queued,
      failing: 'metal-arm64.raw.xz',
    });
    expect(await n.checkVersions()).toEqual({ newVersions: [] });
    const seen = () => [...(redis.sets.get('test:notify:talos-versions-seen') ?? [])].sort();
    expect(seen()).toEqual(['v1.11.3']);
    expect(await n.checkVersions()).toEqual({ newVersions: [] });
    expect(await n.checkVersions()).toEqual({ newVersions: ['v1.12.2'] });
    // every set's assets, one failing asset not stopping the others
    expect(queued.sort()).toEqual(['1 v1.12.2 kernel-amd64', '1 v1.12.2 metal-amd64.iso', '2 v1.12.2 kernel-arm64']);
    expect([...queue.jobs.values()].map((j) => [j.data.event, JSON.parse(j.data.body).data])).toEqual([['version.available', { version: 'v1.12.2' }]]);
    // a version withdrawn and offered again is not new, even when something else was new meanwhile
    expect(await n.checkVersions()).toEqual({ newVersions: [] });
    expect(await n.checkVersions()).toEqual({ newVersions: [] });
    expect(await n.checkVersions()).toEqual({ newVersions: ['v1.13.0'] });
    expect(await n.checkVersions()).toEqual({ newVersions: [] });
    expect(seen()).toEqual(['v1.11.3', 'v1.12.2', 'v1.13.0']);
    expect(queued).toHaveLength(6);
  });
  it('does nothing while another check holds the lock', async () => {
    const queued: string[] = [];
    const { n, redis } = notifier({ versions: [['v1.11.3']], queued, lockTaken: true });
    expect(await n.checkVersions()).toEqual({ newVersions: [] });
    expect(redis.sets.size).toBe(0);
  });
});
