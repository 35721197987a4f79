/**
 * Runs the real, compiled services as separate processes — exactly as they run in production — for black-box
 * tests, plus access to the demo Talos releases (built once and cached in FACTORY_TEST_DEMO_DIR).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findCheckout } from './checkout';
import { freePort, ProcHandle, startRedis, startRegistry, startS3, waitForPort } from './procs';
import { announceFactory } from './response-hooks';

export const ROOT = findCheckout(__dirname);
export const SERVICE_NAMES = ['signing', 'schematic-store', 'registry-proxy', 'build-worker', 'gateway'] as const;

/** Builds and publishes the demo releases once (cached across runs), returning their directory. */
export function ensureDemoReleases(): string {
  const dir = process.env.FACTORY_TEST_DEMO_DIR ?? path.join(ROOT, '.cache/demo-releases');
  const cli = path.join(ROOT, 'tools/demo-releases/dist/cli.js');
  for (const step of ['build', 'publish']) {
    const r = spawnSync(process.execPath, [cli, step, '--out', dir], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 15 * 60_000 });
    if (r.status !== 0) throw new Error(`demo releases ${step} failed: ${r.stderr?.slice(-4000)}`);
  }
  if (!existsSync(path.join(dir, 'registry')) || !existsSync(path.join(dir, 'cosign.pub'))) throw new Error(`demo releases incomplete in ${dir}`);
  return dir;
}

export interface RunningFactory {
  url: string;
  port: number;
  env: NodeJS.ProcessEnv;
  procs: Map<string, ChildProcess>;
  logs: Map<string, string>;
  stop(): Promise<void>;
}

export async function startServices(
  env: NodeJS.ProcessEnv,
  opts: { waitReady?: boolean; perService?: Partial<Record<(typeof SERVICE_NAMES)[number], NodeJS.ProcessEnv>>; port?: number } = {},
): Promise<RunningFactory> {
  const port = opts.port ?? (await freePort());
  const registryPort = await freePort();
  const fullEnv: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    // the registry-proxy's /v2 server, reached through the gateway
    REGISTRY_PORT: String(registryPort),
    FACTORY_REGISTRY_URL: `http://127.0.0.1:${registryPort}`,
    ...env,
  };
  const procs = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();
  for (const name of SERVICE_NAMES) {
    const proc = spawn(process.execPath, [path.join(ROOT, 'services', name, 'dist', 'main.js')], { env: { ...fullEnv, ...opts.perService?.[name] }, stdio: ['ignore', 'pipe', 'pipe'] });
    logs.set(name, '');
    const keep = (d: Buffer) => logs.set(name, (logs.get(name)! + d.toString()).slice(-20000));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    procs.set(name, proc);
  }
  const url = `http://127.0.0.1:${port}`;
  // every response of this gateway is checked against the OpenAPI document (test/support/openapi-setup.ts)
  announceFactory(url);
  const factory: RunningFactory = {
    url,
    port,
    env: fullEnv,
    procs,
    logs,
    async stop() {
      await Promise.all(
        [...procs.values()].map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null || p.signalCode !== null) return resolve();
              const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
              p.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              p.kill('SIGTERM');
            }),
        ),
      );
    },
  };
  try {
    await waitForPort(port, { timeoutMs: 20_000 });
    if (opts.waitReady !== false) await waitReady(url, 60_000);
  } catch (err) {
    await factory.stop();
    const dump = [...logs].map(([n, l]) => `--- ${n}\n${l.slice(-3000)}`).join('\n');
    throw new Error(`${(err as Error).message}\n${dump}`);
  }
  return factory;
}

export async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
      last = await res.text();
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`factory not ready after ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The five services against real Redis, s3rver and the demo releases served by a docker-registry. */
export interface S3Factory {
  factory: RunningFactory;
  redis: ProcHandle & { url: string };
  s3: ProcHandle & { endpoint: string; bucket: string };
  upstream: ProcHandle & { host: string };
  demoDir: string;
  /** scratch directory of the test (data dir inside), removed by stop() */
  tmp: string;
  /** `127.0.0.1:<port>` of the gateway */
  host: string;
  stop(): Promise<void>;
}

/**
 * Starts Redis, s3rver and the demo upstream, then the services with S3 storage and signature verification on.
 * `env` gets the gateway port (for URLs that name it) and adds to or overrides the defaults.
 */
export async function startFactoryOnS3(opts: {
  tmpPrefix: string;
  env?: (port: number) => NodeJS.ProcessEnv;
  perService?: Partial<Record<(typeof SERVICE_NAMES)[number], NodeJS.ProcessEnv>>;
}): Promise<S3Factory> {
  const demoDir = ensureDemoReleases();
  const [redis, s3, upstream] = await Promise.all([startRedis(), startS3(), startRegistry(path.join(demoDir, 'registry'))]);
  const tmp = mkdtempSync(path.join(os.tmpdir(), opts.tmpPrefix));
  const stopDeps = async () => {
    await Promise.all([redis.stop(), s3.stop(), upstream.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  };
  const port = await freePort();
  let factory: RunningFactory;
  try {
    factory = await startServices(
      {
        REDIS_URL: redis.url,
        S3_BUCKET: s3.bucket,
        S3_ENDPOINT: s3.endpoint,
        S3_ACCESS_KEY_ID: 'S3RVER',
        S3_SECRET_ACCESS_KEY: 'S3RVER',
        FACTORY_DATA_DIR: path.join(tmp, 'data'),
        FACTORY_UPSTREAM_REGISTRY: upstream.host,
        FACTORY_UPSTREAM_INSECURE: 'true',
        FACTORY_UPSTREAM_PUBLIC_KEY: path.join(demoDir, 'cosign.pub'),
        FACTORY_EXTERNAL_URL: `http://127.0.0.1:${port}/`,
        BUILD_CONCURRENCY: '2',
        ...opts.env?.(port),
      },
      { port, perService: opts.perService },
    );
  } catch (err) {
    await stopDeps();
    throw err;
  }
  return {
    factory, redis, s3, upstream, demoDir, tmp, host: `127.0.0.1:${port}`,
    async stop() {
      await factory.stop();
      await stopDeps();
    },
  };
}
