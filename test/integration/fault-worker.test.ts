/**
 * Issue 10 item 2 (build-worker part): kill -9 of the build-worker in the middle of a build. Its sandbox dies with
 * it (no orphan building on), the stalled job is retried by the next build-worker, the client that was waiting gets
 * the asset from the retried build, and the dead sandbox's scratch directory is removed when a worker starts.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, S3Factory, startFactoryOnS3 } from '../support/factory';
import { childrenOf, pidAlive } from '../support/pids';
import { until as pollUntil } from '../support/wait';

jest.setTimeout(180_000);

let env: S3Factory;
let restarted: ChildProcess | undefined;

beforeAll(async () => {
  env = await startFactoryOnS3({ tmpPrefix: 'fault-worker-', env: () => ({ FACTORY_REDIRECT_CACHE_TTL: '0' }) });
}, 120_000);

afterAll(async () => {
  restarted?.kill('SIGKILL');
  await env?.stop();
});

const scratchDirs = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('factory-build-'));

const until = <T>(what: string, get: () => T | undefined | false, ms: number, everyMs = 10) => pollUntil(what, get, { ms, everyMs });

test('kill -9 mid-build: no orphan, the client gets the asset from the retried job, the scratch is cleaned at the next start', async () => {
  const { factory } = env;
  const body = JSON.stringify({ customization: { systemExtensions: { officialExtensions: ['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module'] } } });
  const { id } = (await (await fetch(`${factory.url}/schematics`, { method: 'POST', body })).json()) as { id: string };
  const worker = factory.procs.get('build-worker')!;
  const before = new Set(scratchDirs());

  const t0 = Date.now();
  const response = fetch(`${factory.url}/image/${id}/v1.11.3/metal-amd64.raw.xz`, { redirect: 'manual', signal: AbortSignal.timeout(150_000) });
  // A sandbox has started building once its scratch directory exists.
  const scratch = await until('a build to start', () => scratchDirs().find((d) => !before.has(d)), 60_000);
  const sandboxes = childrenOf(worker.pid!);
  expect(sandboxes.length).toBeGreaterThan(0);
  process.kill(worker.pid!, 'SIGKILL');
  const killedAt = Date.now();

  // The sandbox goes with its worker instead of building on as an orphan.
  await until('the sandbox to exit', () => sandboxes.every((pid) => !pidAlive(pid)), 10_000);
  process.stdout.write(`[fault-worker] sandbox(es) ${sandboxes.join(',')} gone ${Date.now() - killedAt} ms after the worker was killed\n`);

  // The next build-worker removes the dead sandbox's scratch and picks up the stalled job.
  restarted = spawn(process.execPath, [path.join(ROOT, 'services/build-worker/dist/main.js')], { env: factory.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let restartedLog = '';
  restarted.stdout!.on('data', (d) => (restartedLog += d));
  restarted.stderr!.on('data', (d) => (restartedLog += d));
  await until('the orphaned scratch directory to be removed', () => !existsSync(path.join(os.tmpdir(), scratch)), 30_000, 50).catch((err) => {
    throw new Error(`${(err as Error).message}\n${restartedLog.slice(-3000)}`);
  });

  const res = await response;
  const elapsed = Date.now() - t0;
  process.stdout.write(`[fault-worker] the waiting client got ${res.status} ${elapsed} ms after asking (worker killed at ${killedAt - t0} ms)\n`);
  expect(res.status).toBe(302);
  const object = await fetch(res.headers.get('location')!);
  expect(object.status).toBe(200);
  const bytes = Buffer.from(await object.arrayBuffer());
  // an xz stream: magic at the start, footer magic "YZ" at the end
  expect(bytes.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe(true);
  expect(bytes.subarray(-2).toString('latin1')).toBe('YZ');
});
