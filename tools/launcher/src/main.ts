/**
 * One command, whole factory: the embedded default. Spawns what is not configured — a Redis when REDIS_URL is
 * unset, the demo Talos releases registry when no upstream is configured — then runs the five services as separate
 * processes (each its own BullMQ participant, exactly as they run when scaled out), and stops everything on
 * SIGINT/SIGTERM. Storage is the local data directory unless S3_BUCKET is set (the services read that themselves).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ConfigError, EnvReader } from '@factory/config';

const ROOT = path.resolve(__dirname, '../../..');
const SERVICES = ['signing', 'schematic-store', 'registry-proxy', 'build-worker', 'gateway'] as const;

function log(msg: string): void {
  process.stderr.write(`[launcher] ${msg}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function waitForPort(port: number, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start listening on port ${port} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Managed {
  name: string;
  proc: ChildProcess;
  critical: boolean;
}

const managed: Managed[] = [];
let stopping = false;

function startProcess(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, critical = true): ChildProcess {
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
  managed.push({ name, proc, critical });
  proc.on('exit', (code, signal) => {
    if (stopping) return;
    log(`${name} exited unexpectedly (code ${code}, signal ${signal}); stopping the factory`);
    void shutdown(1);
  });
  proc.on('error', (err) => {
    log(`${name} could not be started: ${err.message}`);
    void shutdown(1);
  });
  return proc;
}

async function shutdown(code: number): Promise<never> {
  if (stopping) return new Promise(() => undefined);
  stopping = true;
  // Services first (they drain their jobs), infrastructure (registry, Redis) last.
  const services = managed.filter((m) => !['redis', 'demo-registry'].includes(m.name)).reverse();
  const infra = managed.filter((m) => ['redis', 'demo-registry'].includes(m.name));
  for (const group of [services, infra]) {
    await Promise.all(
      group.map(
        (m) =>
          new Promise<void>((resolve) => {
            if (m.proc.exitCode !== null || m.proc.signalCode !== null) return resolve();
            const t = setTimeout(() => m.proc.kill('SIGKILL'), 30_000);
            m.proc.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            m.proc.kill('SIGTERM');
          }),
      ),
    );
  }
  process.exit(code);
}

async function main(): Promise<void> {
  const env = new EnvReader();
  const dataDir = path.resolve(env.string('FACTORY_DATA_DIR', path.join(ROOT, '.data')));
  const port = env.port('PORT', 8080);
  const redisUrl = env.string('REDIS_URL');
  const upstreamRegistry = env.string('FACTORY_UPSTREAM_REGISTRY');
  const demoDir = path.resolve(env.string('FACTORY_DEMO_DIR', path.join(dataDir, 'demo-releases')));
  const s3 = env.string('S3_BUCKET');
  env.done();

  mkdirSync(dataDir, { recursive: true });
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    FACTORY_DATA_DIR: dataDir,
    PORT: String(port),
    FACTORY_EXTERNAL_URL: process.env.FACTORY_EXTERNAL_URL ?? `http://localhost:${port}/`,
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  if (!redisUrl) {
    const redisDir = path.join(dataDir, 'redis');
    mkdirSync(redisDir, { recursive: true });
    const redisPort = await freePort();
    // Append-only persistence keeps queued jobs across restarts of the embedded factory.
    startProcess('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--save', '', '--protected-mode', 'yes'], process.env);
    await waitForPort(redisPort, 'redis-server');
    childEnv.REDIS_URL = `redis://127.0.0.1:${redisPort}`;
    log(`started Redis on 127.0.0.1:${redisPort} (data in ${redisDir})`);
  }

  if (!upstreamRegistry) {
    const cli = path.join(ROOT, 'tools/demo-releases/dist/cli.js');
    const t0 = Date.now();
    for (const step of ['build', 'publish']) {
      const r = spawnSync(process.execPath, [cli, step, '--out', demoDir], { stdio: 'inherit', env: process.env });
      if (r.status !== 0) throw new Error(`demo releases: \`${step}\` failed (exit ${r.status})`);
    }
    log(`demo Talos releases ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (${demoDir})`);
    const regPort = await freePort();
    const cfg = path.join(demoDir, 'serve.yml');
    writeFileSync(
      cfg,
      `version: 0.1\nlog: { level: warn }\nstorage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(demoDir, 'registry'))} }, maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: true } } }\nhttp: { addr: "127.0.0.1:${regPort}" }\n`,
    );
    startProcess('demo-registry', 'docker-registry', ['serve', cfg], process.env);
    await waitForPort(regPort, 'docker-registry');
    Object.assign(childEnv, {
      FACTORY_UPSTREAM_REGISTRY: `127.0.0.1:${regPort}`,
      FACTORY_UPSTREAM_INSECURE: 'true',
      FACTORY_UPSTREAM_PUBLIC_KEY: path.join(demoDir, 'cosign.pub'),
    });
    if (!existsSync(childEnv.FACTORY_UPSTREAM_PUBLIC_KEY as string)) throw new Error(`demo releases have no cosign.pub in ${demoDir}`);
    log(`serving demo Talos releases from 127.0.0.1:${regPort} (read-only docker-registry)`);
  }

  for (const name of SERVICES) {
    const metricsPort = name === 'gateway' ? 0 : await freePort();
    const entry = path.join(ROOT, 'services', name, 'dist', 'main.js');
    startProcess(name, process.execPath, [entry], { ...childEnv, METRICS_PORT: String(metricsPort) });
    if (metricsPort) log(`${name}: metrics on http://127.0.0.1:${metricsPort}/metrics`);
  }
  await waitForPort(port, 'gateway', 30_000);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.status === 200) break;
      if (Date.now() > deadline) {
        log(`not ready after 60s: ${(await res.text()).trim()}`);
        break;
      }
    } catch {
      /* still starting */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`Image Factory ready on http://localhost:${port}/ (storage: ${s3 ? `s3 bucket ${s3}` : path.join(dataDir, 'objects')})`);
}

main().catch((err) => {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else log(`failed to start: ${(err as Error).message}`);
  void shutdown(1);
});
