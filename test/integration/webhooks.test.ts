/**
 * Issue 14 items 2 and 3 against the real services (Redis, s3rver, the demo upstream): webhooks receive signed
 * deliveries of build events and are retried with backoff from the `notify` queue; a pre-warm set is built at low
 * priority when a Talos version appears, and a user's request still starts before the pre-warm batch.
 *
 * A new version appears as it would upstream: the registry-proxy starts with v1.12.2 listed as broken (not offered)
 * and is restarted without that setting.
 */
import { ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from '../../libs/queue/node_modules/bullmq';
import IORedis from '../../libs/queue/node_modules/ioredis';
import { verifyWebhookSignature } from '../../services/gateway/src/notify/signature';
import { ROOT, S3Factory, startFactoryOnS3 } from '../support/factory';
import { freePort } from '../support/procs';
import { until } from '../support/wait';

jest.setTimeout(300_000);

const OLD = 'v1.11.3';
const NEW = 'v1.12.2';
const SECRET = 'top-secret-of-the-receiver';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

let env: S3Factory;
let receiver: http.Server;
let receiverUrl: string;
const received: Received[] = [];
/** answers by receiver path: `/flaky` fails its first two requests */
let flakyCalls = 0;
let redis: IORedis;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let status = 204;
      if (req.url === '/flaky' && ++flakyCalls <= 2) status = 500;
      received.push({ path: req.url ?? '', headers: req.headers, body, answered: status });
      res.writeHead(status).end(status === 500 ? 'receiver is down' : undefined);
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  env = await startFactoryOnS3({
    tmpPrefix: 'webhooks-',
    env: () => ({
      BUILD_CONCURRENCY: '1',
      FACTORY_WEBHOOK_ALLOW_PRIVATE: 'on',
      // retries after 0.3 s, 0.6 s, … instead of 30 s, 60 s, …
      FACTORY_WEBHOOK_RETRY_DELAY: '300ms',
      FACTORY_VERSION_RECHECK_INTERVAL: '1s',
    }),
    perService: { 'registry-proxy': { FACTORY_BROKEN_TALOS_VERSIONS: NEW } },
  });
  redis = new IORedis(env.redis.url, { maxRetriesPerRequest: null });
}, 240_000);

afterAll(async () => {
  redis?.disconnect();
  await env?.stop();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
});

const url = (p: string) => `${env.factory.url}${p}`;
const context = () => [...env.factory.logs].map(([n, l]) => `--- ${n}\n${l.slice(-2500)}`).join('\n');

async function createSchematic(arg: string): Promise<string> {
  const res = await fetch(url('/schematics'), { method: 'POST', body: `customization:\n  extraKernelArgs: [${arg}]\n` });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function send(method: string, p: string, body?: unknown): Promise<{ status: number; text: string; json: () => any; headers: Headers }> {
  const res = await fetch(url(p), { method, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text), headers: res.headers };
}

async function register(hook: Record<string, unknown>): Promise<string> {
  const res = await send('POST', '/webhooks', hook);
  expect([res.status, res.text]).toEqual([201, expect.any(String)]);
  return res.json().id as string;
}

const deliveriesTo = (p: string, event: string) => received.filter((r) => r.path === p && r.headers['x-factory-event'] === event);

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(url('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a cold build is announced to the schematic’s hook with a correctly signed build.succeeded delivery', async () => {
  const schematic = await createSchematic('hooks-signed');
  const id = await register({ url: `${receiverUrl}/signed`, secret: SECRET, events: ['build.succeeded'], schematic });
  const shown = await send('GET', `/webhooks/${id}`);
  expect(shown.status).toBe(200);
  expect(shown.json()).toEqual({ id, url: `${receiverUrl}/signed`, events: ['build.succeeded'], schematic, createdAt: expect.any(String) });
  expect(shown.text).not.toContain(SECRET);

  const asset = await fetch(url(`/image/${schematic}/${OLD}/cmdline-metal-amd64`));
  expect(asset.status).toBe(200);
  const sha256 = (await (await fetch(url(`/image/${schematic}/${OLD}/cmdline-metal-amd64.sha256`))).text()).split(' ')[0];

  const [delivery] = await until('the build.succeeded delivery', () => deliveriesTo('/signed', 'build.succeeded').length > 0 && deliveriesTo('/signed', 'build.succeeded'), { ms: 30_000, context });
  const signature = delivery.headers['x-factory-signature'] as string;
  expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
  expect(verifyWebhookSignature(SECRET, delivery.body, signature)).toBe(true);
  // a receiver holding another secret rejects it
  expect(verifyWebhookSignature('not-the-secret', delivery.body, signature)).toBe(false);
  expect(delivery.headers['content-type']).toBe('application/json');
  const payload = JSON.parse(delivery.body);
  expect(payload).toEqual({
    id: delivery.headers['x-factory-delivery'],
    event: 'build.succeeded',
    createdAt: expect.any(String),
    data: expect.objectContaining({
      id: expect.stringMatching(/^[0-9a-f]{64}$/),
      schematic,
      version: OLD,
      asset: 'cmdline-metal-amd64',
      state: 'done',
      sha256,
      priority: 'user',
      url: `${env.factory.url}/image/${schematic}/${OLD}/cmdline-metal-amd64`,
    }),
  });

  const log = await until('the delivery log', async () => {
    const r = await send('GET', `/webhooks/${id}/deliveries`);
    return r.json().deliveries.length > 0 && r.json().deliveries;
  }, { ms: 10_000 });
  expect(log).toEqual([{ id: payload.id, event: 'build.succeeded', attempt: 1, status: 204, error: null, at: expect.any(String) }]);
  // exactly one delivery, though the gateway saw the build's events
  expect(deliveriesTo('/signed', 'build.succeeded')).toHaveLength(1);
});

test('a receiver that fails its first two tries still gets the delivery (retried with backoff, each attempt logged)', async () => {
  const schematic = await createSchematic('hooks-flaky');
  const id = await register({ url: `${receiverUrl}/flaky`, secret: SECRET, events: ['build.succeeded', 'build.failed'], schematic });
  expect((await fetch(url(`/image/${schematic}/${OLD}/cmdline-metal-amd64`))).status).toBe(200);
  await until('the third delivery attempt', () => deliveriesTo('/flaky', 'build.succeeded').length >= 3, { ms: 30_000, context });
  const attempts = deliveriesTo('/flaky', 'build.succeeded');
  expect(attempts.map((a) => a.answered)).toEqual([500, 500, 204]);
  // the same delivery, byte for byte, on every attempt
  expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
  expect(new Set(attempts.map((a) => a.headers['x-factory-delivery'])).size).toBe(1);
  expect(verifyWebhookSignature(SECRET, attempts[2].body, attempts[2].headers['x-factory-signature'] as string)).toBe(true);

  const log = await until('three logged attempts', async () => {
    const d = (await send('GET', `/webhooks/${id}/deliveries`)).json().deliveries;
    return d.length >= 3 && d;
  }, { ms: 10_000 });
  expect(log.map((e: { attempt: number; status: number; error: string | null }) => [e.attempt, e.status, e.error])).toEqual([
    [3, 204, null],
    [2, 500, 'HTTP 500: receiver is down'],
    [1, 500, 'HTTP 500: receiver is down'],
  ]);
  expect(await metric('image_factory_webhook_deliveries_total', 'event="build.succeeded",outcome="retried"')).toBe(2);
  await new Promise((r) => setTimeout(r, 1500));
  expect(deliveriesTo('/flaky', 'build.succeeded')).toHaveLength(3);
});

test('registration and pre-warm routes answer bad input with the anchor’s style of errors', async () => {
  const schematic = await createSchematic('hooks-input');
  const unknown = 'f'.repeat(64);
  const cases: Array<[string, string, unknown, number, string]> = [
    ['POST', '/webhooks', '{not json', 400, 'invalid webhook request: body is not JSON\n'],
    ['POST', '/webhooks', { url: `${receiverUrl}/x`, secret: 's', events: ['build.started'] }, 400, 'invalid webhook request: unknown event "build.started" (one of build.succeeded, build.failed, version.available)\n'],
    ['POST', '/webhooks', { url: 'gopher://x', secret: 's', events: ['build.failed'] }, 400, 'invalid webhook request: "url" must be an http or https URL\n'],
    ['POST', '/webhooks', { url: `${receiverUrl}/x`, secret: 's', events: ['build.failed'], schematic: unknown }, 404, `schematic ID "${unknown}" not found\n`],
    ['GET', '/webhooks/nope', undefined, 400, 'invalid webhook ID "nope"\n'],
    ['GET', `/webhooks/${'0'.repeat(32)}`, undefined, 404, `webhook ${'0'.repeat(32)} not found\n`],
    ['PUT', `/prewarm/${unknown}`, { assets: ['kernel-amd64'] }, 404, `schematic ID "${unknown}" not found\n`],
    ['PUT', `/prewarm/${schematic}`, { assets: ['kernel-amd64'], extra: true }, 400, 'invalid prewarm request: unknown field "extra"\n'],
    ['PUT', `/prewarm/${schematic}`, { assets: ['metal-amd64.exe'] }, 400, 'error parsing profile from path: invalid profile path: "metal-amd64.exe"\n'],
    ['GET', `/prewarm/${schematic}`, undefined, 404, `no prewarm set for schematic ${schematic}\n`],
    ['GET', '/prewarm/not%0Aan-id', undefined, 404, 'schematic ID "not\\nan-id" not found\n'],
  ];
  for (const [method, p, body, status, text] of cases) {
    const res = await send(method, p, body);
    expect([method, p, res.status, res.text]).toEqual([method, p, status, text]);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  }
  const big = await send('POST', '/webhooks', JSON.stringify({ url: `${receiverUrl}/x`, secret: 'x'.repeat(70_000), events: ['build.failed'] }));
  expect(big.status).toBe(413);

  const put = await send('PUT', `/prewarm/${schematic}`, { assets: ['kernel-amd64', 'metal-amd64.iso'] });
  expect(put.status).toBe(200);
  expect(put.json()).toEqual({ schematic, assets: ['kernel-amd64', 'metal-amd64.iso'], updatedAt: expect.any(String) });
  expect((await send('GET', `/prewarm/${schematic}`)).json()).toEqual(put.json());
  expect((await send('DELETE', `/prewarm/${schematic}`)).status).toBe(204);
  expect((await send('GET', `/prewarm/${schematic}`)).status).toBe(404);

  const id = await register({ url: `${receiverUrl}/gone`, secret: 's', events: ['build.failed'] });
  expect((await send('DELETE', `/webhooks/${id}`)).status).toBe(204);
  expect((await send('GET', `/webhooks/${id}`)).status).toBe(404);
});

/** Build job IDs in the order of the build queue's `added` and `active` events, from the queue's event stream. */
async function buildEvents(): Promise<Array<{ event: string; jobId: string; name?: string }>> {
  const entries = (await redis.xrange('factory:build:events', '-', '+')) as Array<[string, string[]]>;
  return entries.map(([, fields]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) o[fields[i]] = fields[i + 1];
    return { event: o.event, jobId: o.jobId, name: o.name };
  });
}

/** The ID of the latest build job added for `schematic` that is still in the queue (waiting or running). */
async function queuedJobOf(schematic: string, events: Array<{ event: string; jobId: string }>): Promise<string | undefined> {
  for (const { event, jobId } of [...events].reverse()) {
    if (event !== 'added') continue;
    const data = await redis.hget(`factory:build:${jobId}`, 'data');
    if (data && JSON.parse(data).spec?.schematicId === schematic) return jobId;
  }
  return undefined;
}

/**
 * Replaces the registry-proxy with one started with the common environment (without its broken-versions setting): the
 * new one is started first and the old one stopped once the new one serves the upstream queue.
 */
async function restartRegistryProxy(): Promise<void> {
  const old = env.factory.procs.get('registry-proxy')!;
  const upstream = new Queue('upstream', { connection: redis, prefix: 'factory' });
  const before = await upstream.getWorkersCount();
  // its own /v2 port while both run (this test pulls no installer)
  const proc: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'services/registry-proxy/dist/main.js')], {
    env: { ...env.factory.env, REGISTRY_PORT: String(await freePort()) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => env.factory.logs.set('registry-proxy', (env.factory.logs.get('registry-proxy')! + d.toString()).slice(-20000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  env.factory.procs.set('registry-proxy', proc);
  try {
    await until('the new registry-proxy to serve', async () => (await upstream.getWorkersCount()) > before, { ms: 30_000, everyMs: 50, context });
  } finally {
    await upstream.close();
  }
  await new Promise<void>((resolve) => {
    old.once('exit', () => resolve());
    old.kill('SIGTERM');
  });
}

const PREWARM_ASSETS = [
  'kernel-amd64',
  'kernel-arm64',
  'initramfs-amd64.xz',
  'initramfs-arm64.xz',
  'cmdline-metal-amd64',
  'cmdline-metal-arm64',
  'cmdline-aws-amd64',
  'cmdline-gcp-amd64',
  'cmdline-azure-amd64',
  'cmdline-openstack-amd64',
];

test('a new Talos version: version.available is delivered, the pre-warm batch is queued, and a user request then starts before it', async () => {
  const prewarmed = await createSchematic('hooks-prewarm');
  // a disk image with extensions: the slowest build of the demo releases
  const slowRes = await fetch(url('/schematics'), {
    method: 'POST',
    body: JSON.stringify({ customization: { extraKernelArgs: ['hooks-slow'], systemExtensions: { officialExtensions: ['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module'] } } }),
  });
  const slow = ((await slowRes.json()) as { id: string }).id;
  const user = await createSchematic('hooks-user');
  expect((await send('PUT', `/prewarm/${prewarmed}`, { assets: PREWARM_ASSETS })).status).toBe(200);
  await register({ url: `${receiverUrl}/versions`, secret: SECRET, events: ['version.available'] });
  await register({ url: `${receiverUrl}/prewarmed`, secret: SECRET, events: ['build.succeeded'], schematic: prewarmed });
  // the factory has recorded the versions it offers (nothing is new on its first check)
  await until('the first version check', async () => (await metric('image_factory_version_checks_total', 'result="first"')) >= 1, { ms: 30_000, context });
  expect(((await (await fetch(url('/versions'))).json()) as string[]).includes(NEW)).toBe(false);

  // the only build slot is busy with a slow build (a disk image)
  const slowBuild = fetch(url(`/image/${slow}/${OLD}/metal-amd64.raw.xz`), { method: 'HEAD', signal: AbortSignal.timeout(240_000) }).then(
    (r) => r.status,
    (err: unknown) => String(err),
  );
  const slowJob = await until('the slow build to start', async () => {
    const events = await buildEvents();
    const job = await queuedJobOf(slow, events);
    return job && events.some((e) => e.event === 'active' && e.jobId === job) && job;
  }, { ms: 60_000, context });

  // The build-worker is held (SIGSTOP) while the pre-warm batch and then the user's request are queued: its only slot
  // stays taken by the slow build however fast that build is on this machine (its sandbox builds on; the worker takes
  // no other job until continued, well within its 30 s job lock).
  const worker = env.factory.procs.get('build-worker')!;
  let restartedAt = 0;
  let prewarmJobs: string[] = [];
  let userBuild: Promise<number | string> = Promise.resolve('not asked');
  let userJob = '';
  process.kill(worker.pid!, 'SIGSTOP');
  try {
    restartedAt = Date.now();
    await restartRegistryProxy();
    const [announced] = await until('version.available', () => deliveriesTo('/versions', 'version.available').length > 0 && deliveriesTo('/versions', 'version.available'), { ms: 60_000, context });
    process.stdout.write(`[webhooks] version.available delivered ${Date.now() - restartedAt} ms after the registry-proxy restart began\n`);
    expect(JSON.parse(announced.body)).toEqual({ id: announced.headers['x-factory-delivery'], event: 'version.available', createdAt: expect.any(String), data: { version: NEW } });
    expect(verifyWebhookSignature(SECRET, announced.body, announced.headers['x-factory-signature'] as string)).toBe(true);

    // the pre-warm batch was queued before the announcement, at priority 100
    const queued = await Promise.all(
      (await buildEvents())
        .filter((e) => e.event === 'added')
        .map(async ({ jobId }) => ({ jobId, data: await redis.hget(`factory:build:${jobId}`, 'data'), priority: await redis.hget(`factory:build:${jobId}`, 'priority') })),
    );
    const prewarm = queued.filter((j) => j.data && JSON.parse(j.data).spec?.schematicId === prewarmed);
    expect(prewarm.map((j) => [JSON.parse(j.data!).spec.version, JSON.parse(j.data!).spec.path, Number(j.priority)])).toEqual(PREWARM_ASSETS.map((a) => [NEW, a, 100]));
    prewarmJobs = prewarm.map((j) => j.jobId);
    // the slow build still holds the slot (else the order below would prove nothing)
    expect((await buildEvents()).some((e) => e.event === 'completed' && e.jobId === slowJob)).toBe(false);

    userBuild = fetch(url(`/image/${user}/${OLD}/cmdline-metal-amd64`), { signal: AbortSignal.timeout(240_000) }).then(
      (r) => r.status,
      (err: unknown) => String(err),
    );
    userJob = await until('the user’s build to be queued', async () => queuedJobOf(user, await buildEvents()), { ms: 30_000, context });
  } finally {
    process.kill(worker.pid!, 'SIGCONT');
  }
  expect(await userBuild).toBe(200);
  expect(await slowBuild).toBe(200);
  process.stdout.write(`[webhooks] the slow build ended ${Date.now() - restartedAt} ms after the registry-proxy restart began\n`);

  const events = await buildEvents();
  const slowActive = events.findIndex((e) => e.event === 'active' && e.jobId === slowJob);
  const started = events.slice(slowActive + 1).filter((e) => e.event === 'active').map((e) => e.jobId);
  process.stdout.write(`[webhooks] after the slow build, builds started in this order: ${started.map((j) => (j === userJob ? 'USER' : prewarmJobs.includes(j) ? 'prewarm' : j)).join(', ')}\n`);
  expect(started[0]).toBe(userJob);

  // the pre-warm builds run afterwards; their build events say so
  const [prewarmBuilt] = await until('a pre-warm build.succeeded', () => deliveriesTo('/prewarmed', 'build.succeeded').length > 0 && deliveriesTo('/prewarmed', 'build.succeeded'), { ms: 60_000, context });
  expect(JSON.parse(prewarmBuilt.body).data).toEqual(expect.objectContaining({ schematic: prewarmed, version: NEW, priority: 'prewarm', state: 'done' }));
  expect(PREWARM_ASSETS).toContain(JSON.parse(prewarmBuilt.body).data.asset);
  expect(await metric('image_factory_version_checks_total', 'result="new"')).toBe(1);
});

test('a build that fails is announced as build.failed, with its error (a second factory, refusing assets over 1 KiB)', async () => {
  redis.disconnect();
  await env.stop();
  env = await startFactoryOnS3({
    tmpPrefix: 'webhooks-failed-',
    env: () => ({ FACTORY_WEBHOOK_ALLOW_PRIVATE: 'on' }),
    // a kernel is megabytes: its build fails for good (422); a kernel command line fits
    perService: { 'build-worker': { FACTORY_MAX_ASSET_BYTES: '1KiB' } },
  });
  redis = new IORedis(env.redis.url, { maxRetriesPerRequest: null });
  const schematic = await createSchematic('hooks-failed');
  await register({ url: `${receiverUrl}/failed`, secret: SECRET, events: ['build.succeeded', 'build.failed'], schematic });

  const refused = await fetch(url(`/image/${schematic}/${OLD}/kernel-amd64`));
  expect(refused.status).toBe(422);
  const message = (await refused.text()).trim();
  const [failed] = await until('the build.failed delivery', () => deliveriesTo('/failed', 'build.failed').length > 0 && deliveriesTo('/failed', 'build.failed'), { ms: 30_000, context });
  expect(verifyWebhookSignature(SECRET, failed.body, failed.headers['x-factory-signature'] as string)).toBe(true);
  expect(JSON.parse(failed.body).data).toEqual(
    expect.objectContaining({ schematic, version: OLD, asset: 'kernel-amd64', state: 'failed', error: { status: 422, message }, priority: 'user' }),
  );

  expect((await fetch(url(`/image/${schematic}/${OLD}/cmdline-metal-amd64`))).status).toBe(200);
  await until('the build.succeeded delivery', () => deliveriesTo('/failed', 'build.succeeded').length > 0, { ms: 30_000, context });
  expect(deliveriesTo('/failed', 'build.failed')).toHaveLength(1);
});
