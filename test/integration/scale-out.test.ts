/**
 * Issue 11 item 4: scale-out, against real processes sharing one Redis and one S3 server (s3rver). Two gateways and two
 * build-workers: concurrent cold requests through both gateways are one build cluster-wide with identical bytes; a
 * build-worker killed (SIGKILL) mid-build has its job taken over by the other one through BullMQ's stalled-job recovery
 * and the waiting client gets the verified artifact; SIGTERM during a build lets it finish within the grace period,
 * or hands it back to the queue when the grace is over, and no partial object is ever visible in the bucket; a rolling
 * restart of the gateways under load loses no request.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { redisConnection } from '@factory/queue';
import { createS3Store, ObjectStore } from '@factory/storage';
import { ROOT, S3Factory, startFactoryOnS3, waitReady } from '../support/factory';
import { childrenOf, pidAlive } from '../support/pids';
import { freePort } from '../support/procs';
import { until as pollUntil } from '../support/wait';

jest.setTimeout(180_000);

const VERSION = 'v1.11.3';
const PREFIX = 'factory';
// Loads from one address: the per-client limits would otherwise answer 429s.
const UNLIMITED = { FACTORY_RATE_SCHEMATICS: 'off', FACTORY_RATE_BUILDS: 'off', FACTORY_MAX_CLIENT_BUILDS: '0' };

interface Service {
  proc: ChildProcess;
  log: () => string;
}

let env: S3Factory;
let redis: ReturnType<typeof redisConnection>;
let bucket: ObjectStore;
let gateway2Url: string;
let gateway2: Service;
const workers: Service[] = [];
const spawned: Service[] = [];

function spawnService(name: 'gateway' | 'build-worker', overrides: NodeJS.ProcessEnv): Service {
  const proc = spawn(process.execPath, [path.join(ROOT, 'services', name, 'dist', 'main.js')], { env: { ...env.factory.env, ...overrides }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const service = { proc, log: () => out };
  spawned.push(service);
  return service;
}

/** A build-worker that logs each build ("asset built", info level, from its sandbox). */
async function startWorker(overrides: NodeJS.ProcessEnv = {}): Promise<Service> {
  const worker = spawnService('build-worker', { LOG_LEVEL: 'info', ...overrides });
  await until('the build-worker to start', () => worker.log().includes('build-worker ready'), 30_000, 50);
  workers.push(worker);
  return worker;
}

const exited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null;
const waitExit = (p: ChildProcess) => (exited(p) ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r())));
/** "asset built" lines in a worker's log: one per build that ran to its end (an idempotent hit logs nothing). */
const buildsOf = (w: Service) => w.log().split('\n').filter((l) => l.includes('"msg":"asset built"')).length;
const totalBuilds = () => workers.reduce((n, w) => n + buildsOf(w), 0);

const until = <T>(what: string, get: () => T | undefined | false | Promise<T | undefined | false>, ms: number, everyMs = 20) => pollUntil(what, get, { ms, everyMs });

async function newSchematic(tag: string, extensions: string[] = []): Promise<string> {
  const body = JSON.stringify({ customization: { extraKernelArgs: [`scale-out=${tag}-${Date.now()}`], systemExtensions: { officialExtensions: extensions } } });
  const res = await fetch(`${env.factory.url}/schematics`, { method: 'POST', body });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** The artifact a 302 points to: its bytes and their SHA-256. */
async function download(res: Response): Promise<{ size: number; sha256: string }> {
  expect(res.status).toBe(302);
  const object = await fetch(res.headers.get('location')!);
  expect(object.status).toBe(200);
  const bytes = Buffer.from(await object.arrayBuffer());
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The active build job: its ID and the process ID of the build-worker holding it (BullMQ's processedBy). */
async function activeBuild(): Promise<{ jobId: string; workerPid: number } | undefined> {
  const [jobId] = await redis.lrange(`${PREFIX}:build:active`, 0, -1);
  if (!jobId) return undefined;
  const [processedBy, progress] = await redis.hmget(`${PREFIX}:build:${jobId}`, 'pb', 'progress');
  // a build under way: its sandbox reported a stage
  if (!processedBy || !progress) return undefined;
  return { jobId, workerPid: Number(processedBy.split('/').pop()) };
}

/**
 * Watches the bucket's `assets/` listing while builds run. s3rver assembles a completed multipart upload into its
 * object file in place, so its listing can show an object growing while the upload completes (S3 and MinIO do not):
 * what the factory controls, and what this checks, is that an asset is never published before its object is whole
 * (each listing that shows a signature file shows its object at its final size) and that no object is left behind
 * without its signature file (nothing half-written by a killed or stopped writer stays in the bucket).
 */
function watchBucket(): { stop: () => Promise<Map<string, Set<number>>> } {
  // object key -> sizes it was listed at while its signature file was listed too
  const published = new Map<string, Set<number>>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const listing = new Map<string, number>();
      for await (const o of bucket.list('assets/')) listing.set(o.key, o.size);
      for (const key of listing.keys()) {
        if (!key.endsWith('.sig')) continue;
        const object = key.slice(0, -'.sig'.length);
        if (!published.has(object)) published.set(object, new Set());
        published.get(object)!.add(listing.get(object) ?? -1);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return published;
    },
  };
}

/** Every published object was only ever listed whole, and every object in the bucket is published. */
async function expectOnlyWholeObjects(published: Map<string, Set<number>>): Promise<void> {
  for (const [key, sizes] of published) {
    const now = await bucket.head(key);
    expect({ key, sizes: [...sizes] }).toEqual({ key, sizes: [now!.size] });
  }
  const keys: string[] = [];
  for await (const o of bucket.list('assets/')) keys.push(o.key);
  const unsigned = keys.filter((k) => !k.endsWith('.sig') && !keys.includes(`${k}.sig`));
  expect(unsigned).toEqual([]);
}

beforeAll(async () => {
  const workerMetrics = await freePort();
  env = await startFactoryOnS3({
    tmpPrefix: 'scale-out-',
    env: () => ({ ...UNLIMITED, BUILD_CONCURRENCY: '1', FACTORY_SCRUB_INTERVAL: '0' }),
    perService: { 'build-worker': { LOG_LEVEL: 'info', METRICS_PORT: String(workerMetrics) } },
  });
  // The build-worker started with the others is the first of the cluster's two.
  const first = env.factory.procs.get('build-worker')!;
  let firstLog = '';
  first.stdout!.on('data', (d: Buffer) => (firstLog = (firstLog + d.toString()).slice(-200_000)));
  workers.push({ proc: first, log: () => firstLog });
  await startWorker();
  const port2 = await freePort();
  gateway2 = spawnService('gateway', { PORT: String(port2) });
  gateway2Url = `http://127.0.0.1:${port2}`;
  await waitReady(gateway2Url, 30_000);
  redis = redisConnection(env.redis.url, 'producer', 'scale-out-test');
  bucket = createS3Store({ bucket: env.s3.bucket, endpoint: env.s3.endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
}, 150_000);

afterAll(async () => {
  redis?.disconnect();
  for (const s of spawned) if (!exited(s.proc)) s.proc.kill('SIGKILL');
  await env?.stop();
});

test('two gateways, two build-workers: 12 concurrent cold requests are one build, and every client gets the same bytes', async () => {
  const id = await newSchematic('one-build');
  const before = totalBuilds();
  const urls = Array.from({ length: 12 }, (_, i) => `${i % 2 ? gateway2Url : env.factory.url}/image/${id}/${VERSION}/metal-amd64.iso`);
  const responses = await Promise.all(urls.map((u) => fetch(u, { redirect: 'manual', signal: AbortSignal.timeout(120_000) })));
  const artifacts = await Promise.all(responses.map(download));
  expect(new Set(artifacts.map((a) => a.sha256)).size).toBe(1);
  expect(artifacts[0].size).toBeGreaterThan(0);
  expect(totalBuilds() - before).toBe(1);
  process.stdout.write(`[scale-out] 12 requests over 2 gateways: ${totalBuilds() - before} build (${workers.map(buildsOf).join('+')} by worker), ${artifacts[0].size} bytes each\n`);
});

test('kill -9 of the build-worker holding a build: the other worker takes the job over, the waiting client gets the verified artifact', async () => {
  const id = await newSchematic('kill', ['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module']);
  const watch = watchBucket();
  const t0 = Date.now();
  const response = fetch(`${env.factory.url}/image/${id}/${VERSION}/metal-amd64.raw.xz`, { redirect: 'manual', signal: AbortSignal.timeout(150_000) });
  const build = await until('a build to be under way', activeBuild, 60_000);
  const victim = workers.find((w) => w.proc.pid === build.workerPid)!;
  const survivor = workers.find((w) => w !== victim && !exited(w.proc))!;
  expect(victim).toBeDefined();
  const sandboxes = childrenOf(victim.proc.pid!);
  const survivorBuilds = buildsOf(survivor);
  victim.proc.kill('SIGKILL');
  const killedAt = Date.now();
  await until('the sandbox to go with its worker', () => sandboxes.every((pid) => !pidAlive(pid)), 10_000);

  const res = await response;
  const answeredAt = Date.now();
  const artifact = await download(res);
  const seen = await watch.stop();
  // the survivor built it (a verified artifact: the gateway checks its signature file before the 302)
  expect(buildsOf(survivor)).toBe(survivorBuilds + 1);
  expect(artifact.size).toBeGreaterThan(0);
  await expectOnlyWholeObjects(seen);
  process.stdout.write(`[scale-out] worker ${build.workerPid} killed ${killedAt - t0} ms into the request; the other worker's artifact reached the client ${answeredAt - killedAt} ms after the kill\n`);
  // the cluster keeps two workers for the next cases
  await startWorker();
});

test('SIGTERM during a build: finished within the grace period; past it, handed back to the other worker; never a partial object', async () => {
  // Only one worker (the one under test) takes the next build: the other is started after it is busy.
  for (const w of workers) if (!exited(w.proc)) w.proc.kill('SIGTERM');
  await Promise.all(workers.map((w) => waitExit(w.proc)));

  // 1. The grace period covers the build: it finishes where it started, and the worker exits afterwards.
  const patient = await startWorker({ BUILD_SHUTDOWN_GRACE: '120s' });
  const id1 = await newSchematic('sigterm-finish', ['siderolabs/hello']);
  const watch = watchBucket();
  const first = fetch(`${env.factory.url}/image/${id1}/${VERSION}/metal-amd64.raw.xz`, { redirect: 'manual', signal: AbortSignal.timeout(150_000) });
  await until('a build to be under way', activeBuild, 60_000);
  const patientBuilds = buildsOf(patient);
  patient.proc.kill('SIGTERM');
  await waitExit(patient.proc);
  expect(patient.proc.exitCode).toBe(0);
  expect(buildsOf(patient)).toBe(patientBuilds + 1);
  expect((await download(await first)).size).toBeGreaterThan(0);

  // 2. The grace period is over before the build: the job goes back to the queue and the other worker builds it.
  const hasty = await startWorker({ BUILD_SHUTDOWN_GRACE: '0s' });
  const id2 = await newSchematic('sigterm-hand-back', ['siderolabs/hello', 'siderolabs/intel-ucode']);
  const second = fetch(`${env.factory.url}/image/${id2}/${VERSION}/metal-amd64.raw.xz`, { redirect: 'manual', signal: AbortSignal.timeout(150_000) });
  const build = await until('a build to be under way', activeBuild, 60_000);
  expect(build.workerPid).toBe(hasty.proc.pid);
  const other = await startWorker();
  const signalledAt = Date.now();
  hasty.proc.kill('SIGTERM');
  await waitExit(hasty.proc);
  const handedBackMs = Date.now() - signalledAt;
  expect(hasty.proc.exitCode).toBe(0);
  expect(buildsOf(hasty)).toBe(0);
  const artifact = await download(await second);
  expect(buildsOf(other)).toBe(1);
  // handed back, not failed: no attempt was used up and the job never failed
  expect(hasty.log()).toMatch(/handed back/);

  const seen = await watch.stop();
  expect(seen.size).toBeGreaterThanOrEqual(2); // both assets were seen published
  await expectOnlyWholeObjects(seen);
  process.stdout.write(`[scale-out] SIGTERM past the grace: the worker exited ${handedBackMs} ms after the signal, the other built ${artifact.size} bytes; ${seen.size} objects watched, none ever partial\n`);
  await startWorker();
});

test('rolling restart of both gateways under load: no request lost', async () => {
  const id = await newSchematic('rolling');
  const asset = `/image/${id}/${VERSION}/kernel-amd64`;
  expect((await fetch(`${env.factory.url}${asset}`, { redirect: 'manual' })).status).toBe(302);
  const gateways = [env.factory.url, gateway2Url];
  const counts = { ok: 0, retriedRefused: 0, failed: 0 };
  const failures: string[] = [];
  let running = true;
  const requests: Array<[string, RequestInit, number]> = [
    [asset, { redirect: 'manual' }, 302],
    ['/schematics', { method: 'POST', body: JSON.stringify({ customization: { extraKernelArgs: ['scale-out=rolling'] } }) }, 200],
    ['/versions', {}, 200],
  ];
  // Counted: every request sent. A refused connection (the gateway is not listening) is retried once on the other
  // gateway, as a load balancer does, and counted in retriedRefused; any other error (reset, closed without an
  // answer, timeout) or an unexpected status is a failure.
  const client = async (n: number) => {
    for (let i = n; running; i++) {
      const [p, init, want] = requests[i % requests.length];
      const target = i % 2;
      const send = (g: number) => fetch(`${gateways[g]}${p}`, { ...init, signal: AbortSignal.timeout(20_000) });
      let res: Response;
      try {
        try {
          res = await send(target);
        } catch (err) {
          if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') throw err;
          counts.retriedRefused++;
          res = await send(1 - target);
        }
        const text = await res.text();
        // a repeated create answers 200 with the known ID, the first 201
        const ok = res.status === want || (want === 200 && res.status === 201);
        if (ok) counts.ok++;
        else {
          counts.failed++;
          failures.push(`${p} on gateway ${target + 1} at ${Date.now() - t0} ms: ${res.status} ${text.slice(0, 200)}`);
        }
      } catch (err) {
        counts.failed++;
        failures.push(`${p} on gateway ${target + 1} at ${Date.now() - t0} ms: ${String((err as { cause?: unknown }).cause ?? err)}`);
      }
    }
  };
  const t0 = Date.now();
  const clients = Array.from({ length: 8 }, (_, n) => client(n));
  const restarts: string[] = [];
  try {
    await new Promise((r) => setTimeout(r, 1000));
    for (const which of ['gateway', 'gateway2'] as const) {
      const old = which === 'gateway' ? env.factory.procs.get('gateway')! : gateway2.proc;
      const t = Date.now();
      restarts.push(`${which} signalled at ${t - t0} ms`);
      old.kill('SIGTERM');
      await waitExit(old);
      restarts.push(`${which} exited ${old.exitCode} after ${Date.now() - t} ms`);
      expect(old.exitCode).toBe(0);
      expect(Date.now() - t).toBeLessThan(10_000);
      if (which === 'gateway') {
        const next = spawnService('gateway', {});
        env.factory.procs.set('gateway', next.proc);
        await waitReady(env.factory.url, 30_000);
      } else {
        gateway2 = spawnService('gateway', { PORT: new URL(gateway2Url).port });
        await waitReady(gateway2Url, 30_000);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    running = false;
    await Promise.all(clients);
  }
  process.stdout.write(`[scale-out] rolling restart: ${restarts.join('; ')}; requests ok ${counts.ok}, retried after a refused connection ${counts.retriedRefused}, failed ${counts.failed}\n`);
  expect(failures.slice(0, 10)).toEqual([]);
  expect(counts.ok).toBeGreaterThan(200);
});
