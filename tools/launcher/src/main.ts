/**
 * One command, whole factory: the embedded default. Spawns what is not configured — a Redis when REDIS_URL is
 * unset (on loopback, requiring a password generated at each start: see redis.ts), the demo Talos releases
 * registry when no upstream is configured — then runs the five services as separate processes (each its own BullMQ
 * participant, exactly as they run when scaled out), and stops everything on SIGINT/SIGTERM. Storage is the local data directory unless S3_BUCKET is set (the services read that themselves).
 *
 * Run as root, it separates privileges (see privsep.ts): only the signing service stays root and can open the
 * private keys; the other services, Redis and the demo registry run as an unprivileged user. Variables naming key
 * files or the key directory reach the signing service only, whoever runs the launcher.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, EnvReader } from '@factory/config';
import { freePort, waitForPort } from '@factory/process';
import { Identity, PrivsepPlan, preparePrivsep, resolveUser, signingOnlyEnv, withoutKeyEnv } from './privsep';
import { checkRedisAuth, generateRedisPassword, redisUrlWithPassword, writeRedisConfig } from './redis';

const ROOT = path.resolve(__dirname, '../../..');
const SERVICES = ['signing', 'schematic-store', 'registry-proxy', 'build-worker', 'gateway'] as const;

function log(msg: string): void {
  process.stderr.write(`[launcher] ${msg}\n`);
}

/**
 * Supervision: a process that exits unexpectedly is started again (same command, environment and ports; Redis
 * recovers from its append-only file) after a backoff that doubles with each recent crash. A process that crashes
 * CRASH_LOOP_LIMIT times within CRASH_WINDOW_MS is in a crash loop: then the factory stops, saying so. Meanwhile the
 * others keep running, and the gateway answers 503 with the reason for what depends on the missing process.
 */
const CRASH_WINDOW_MS = 60_000;
const CRASH_LOOP_LIMIT = 5;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;

interface Managed {
  name: string;
  proc: ChildProcess;
  /** when it exited unexpectedly, within the crash window */
  crashes: number[];
}

const managed: Managed[] = [];
let stopping = false;
/** Until the factory was ready once, an exit is a start-up failure (bad config, missing tool): stop, do not retry. */
let supervising = false;

function startProcess(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, as?: Identity): ChildProcess {
  const m: Managed = { name, proc: undefined as unknown as ChildProcess, crashes: [] };
  const run = () => {
    // With uid/gid set, libuv also drops the supplementary groups (setgroups(0)) before exec.
    const proc = spawn(cmd, args, { env, stdio: ['ignore', 'inherit', 'inherit'], ...(as ? { uid: as.uid, gid: as.gid } : {}) });
    m.proc = proc;
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      if (!supervising) {
        log(`${name} exited during start-up (code ${code}, signal ${signal}); stopping the factory`);
        void shutdown(1);
        return;
      }
      const now = Date.now();
      m.crashes = [...m.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
      if (m.crashes.length >= CRASH_LOOP_LIMIT) {
        log(`${name} exited unexpectedly (code ${code}, signal ${signal}), ${m.crashes.length} times within ${CRASH_WINDOW_MS / 1000} s: crash loop, stopping the factory`);
        void shutdown(1);
        return;
      }
      const delay = Math.min(BACKOFF_FIRST_MS * 2 ** (m.crashes.length - 1), BACKOFF_MAX_MS);
      log(`${name} exited unexpectedly (code ${code}, signal ${signal}); restarting it in ${delay} ms (crash ${m.crashes.length} of ${CRASH_LOOP_LIMIT} allowed within ${CRASH_WINDOW_MS / 1000} s)`);
      setTimeout(() => {
        if (!stopping) run();
      }, delay);
    });
    proc.on('error', (err) => {
      log(`${name} could not be started: ${err.message}`);
      void shutdown(1);
    });
  };
  run();
  managed.push(m);
  return m.proc;
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
  // The same defaults the services apply, so the launcher prepares the directories they will use.
  const keyDir = path.resolve(env.string('FACTORY_SIGNING_KEY_DIR', path.join(dataDir, 'keys')));
  const keyFile = env.string('FACTORY_COSIGN_KEY_FILE');
  const storageDir = path.resolve(env.string('FACTORY_STORAGE_DIR', path.join(dataDir, 'objects')));
  const cacheDir = path.resolve(env.string('FACTORY_CACHE_DIR', path.join(dataDir, 'cache')));
  const privsepMode = env.oneOf('FACTORY_PRIVILEGE_SEPARATION', ['auto', 'on', 'off'] as const, 'auto');
  const serviceUser = env.string('FACTORY_SERVICE_USER', 'nobody');
  env.done();

  mkdirSync(dataDir, { recursive: true });
  const baseEnv: NodeJS.ProcessEnv = {
    ...withoutKeyEnv(process.env),
    FACTORY_DATA_DIR: dataDir,
    PORT: String(port),
    FACTORY_EXTERNAL_URL: process.env.FACTORY_EXTERNAL_URL ?? `http://localhost:${port}/`,
  };
  // Key locations go to the signing service alone; the other services' environments never name them.
  // Secure Boot is on in the embedded factory: keys not configured are generated into the key directory on first start.
  const signingEnv: NodeJS.ProcessEnv = {
    FACTORY_SECUREBOOT_GENERATE_KEYS: 'true',
    ...signingOnlyEnv(process.env),
    FACTORY_SIGNING_KEY_DIR: keyDir,
    ...(keyFile ? { FACTORY_COSIGN_KEY_FILE: keyFile } : {}),
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  // Demo releases first: separation checks that the unprivileged user can read them.
  if (!upstreamRegistry) {
    const cli = path.join(ROOT, 'tools/demo-releases/dist/cli.js');
    const t0 = Date.now();
    for (const step of ['build', 'publish']) {
      const r = spawnSync(process.execPath, [cli, step, '--out', demoDir], { stdio: 'inherit', env: withoutKeyEnv(process.env) });
      if (r.status !== 0) throw new Error(`demo releases: \`${step}\` failed (exit ${r.status})`);
    }
    log(`demo Talos releases ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (${demoDir})`);
    if (!existsSync(path.join(demoDir, 'cosign.pub'))) throw new Error(`demo releases have no cosign.pub in ${demoDir}`);
  }

  const redisDir = path.join(dataDir, 'redis');
  let plan: PrivsepPlan | undefined;
  const isRoot = process.getuid?.() === 0;
  if (privsepMode === 'off') {
    log('privilege separation is off (FACTORY_PRIVILEGE_SEPARATION=off): every service runs as this user');
  } else if (!isRoot) {
    if (privsepMode === 'on') throw new Error('FACTORY_PRIVILEGE_SEPARATION=on needs the launcher to run as root');
    log(`privilege separation is off (the launcher is not root): every service runs as uid ${process.getuid?.()}, which can read the keys in ${keyFile ?? keyDir}`);
  } else {
    const who = resolveUser(serviceUser);
    try {
      plan = preparePrivsep({
        who,
        dataDir,
        keyDir,
        keyFile,
        writable: [...(s3 ? [] : [storageDir]), cacheDir, ...(redisUrl ? [] : [redisDir])],
        readable: upstreamRegistry ? [] : [path.join(demoDir, 'registry'), path.join(demoDir, 'cosign.pub')],
        entries: SERVICES.filter((n) => n !== 'signing').map((n) => path.join(ROOT, 'services', n, 'dist', 'main.js')),
        ports: [port],
      });
      for (const w of plan.warnings) log(`warning: ${w}`);
      log(`privilege separation on: signing runs as root (keys in ${keyFile ?? keyDir}, mode 0700/0600); the other services, Redis and the demo registry run as ${who.name} (${who.uid}:${who.gid})`);
    } catch (err) {
      const why = (err as Error).message;
      if (privsepMode === 'on') throw new Error(`privilege separation (FACTORY_PRIVILEGE_SEPARATION=on) cannot work: ${why}`);
      log(`WARNING: privilege separation is off, so every service runs as root and could read the keys. For the service user ${who.name} (${who.uid}:${who.gid}): ${why}. Fix that, or set FACTORY_PRIVILEGE_SEPARATION=off to silence this.`);
    }
  }
  // What every service shares (more is added below); the unprivileged processes also get their own HOME etc.
  const childEnv: NodeJS.ProcessEnv = { ...baseEnv };
  const unprivileged = (e: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...e, ...plan?.env });
  const as = plan?.who;

  // Ports picked below are bound only when their process starts: never the gateway's (freePort never repeats itself).
  const reserved = new Set<number>([port]);
  const pickPort = () => freePort({ exclude: reserved });

  if (!redisUrl) {
    const redis = { port: await pickPort(), dir: redisDir, password: generateRedisPassword() };
    // The password goes into a file only Redis' identity can read, never onto its command line (see redis.ts).
    const confFile = writeRedisConfig(redis, as);
    startProcess('redis', 'redis-server', [confFile], unprivileged(withoutKeyEnv(process.env)), as);
    await waitForPort(redis.port, { what: 'redis-server', timeoutMs: 20_000 });
    await checkRedisAuth(redis.port, redis.password);
    childEnv.REDIS_URL = redisUrlWithPassword(redis);
    log(`started Redis on 127.0.0.1:${redis.port}, password in ${confFile}; data in ${redisDir}`);
  }

  if (!upstreamRegistry) {
    const regPort = await pickPort();
    const cfg = path.join(demoDir, 'serve.yml');
    writeFileSync(
      cfg,
      `version: 0.1\nlog: { level: warn }\nstorage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(demoDir, 'registry'))} }, maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: true } } }\nhttp: { addr: "127.0.0.1:${regPort}" }\n`,
      { mode: 0o644 },
    );
    startProcess('demo-registry', 'docker-registry', ['serve', cfg], unprivileged(withoutKeyEnv(process.env)), as);
    await waitForPort(regPort, { what: 'docker-registry', timeoutMs: 20_000 });
    Object.assign(childEnv, {
      FACTORY_UPSTREAM_REGISTRY: `127.0.0.1:${regPort}`,
      FACTORY_UPSTREAM_INSECURE: 'true',
      FACTORY_UPSTREAM_PUBLIC_KEY: path.join(demoDir, 'cosign.pub'),
    });
    log(`serving demo Talos releases from 127.0.0.1:${regPort} (read-only docker-registry)`);
  }

  // The registry-proxy's own /v2 server, which the gateway forwards to: a free port unless configured, on loopback
  // unless REGISTRY_HOST says otherwise (HOST is the gateway's: the public side). Clients reach /v2 on the gateway.
  if (!process.env.REGISTRY_PORT && !process.env.FACTORY_REGISTRY_URL) {
    const registryPort = await pickPort();
    childEnv.REGISTRY_PORT = String(registryPort);
    childEnv.FACTORY_REGISTRY_URL = `http://127.0.0.1:${registryPort}`;
  }
  childEnv.REGISTRY_HOST = process.env.REGISTRY_HOST ?? '127.0.0.1';
  // Metrics listeners are internal too (the services' default is loopback already; say so for an inherited value).
  childEnv.METRICS_HOST = process.env.METRICS_HOST ?? '127.0.0.1';
  log(`registry-proxy: /v2 on http://${childEnv.REGISTRY_HOST}:${childEnv.REGISTRY_PORT ?? 8081} (reached through the gateway)`);
  // The blob hand-off between the gateway and the registry-proxy (local storage): a secret of this run, given to
  // those two only, so no other client of the registry-proxy port ever sees an internal header.
  const handoffEnv: NodeJS.ProcessEnv = { FACTORY_HANDOFF_SECRET: process.env.FACTORY_HANDOFF_SECRET ?? randomBytes(32).toString('hex') };
  delete childEnv.FACTORY_HANDOFF_SECRET;

  for (const name of SERVICES) {
    const metricsPort = name === 'gateway' ? 0 : await pickPort();
    const entry = path.join(ROOT, 'services', name, 'dist', 'main.js');
    const own = name === 'gateway' || name === 'registry-proxy' ? handoffEnv : {};
    if (name === 'signing') startProcess(name, process.execPath, [entry], { ...childEnv, ...signingEnv, METRICS_PORT: String(metricsPort) });
    else startProcess(name, process.execPath, [entry], unprivileged({ ...childEnv, ...own, METRICS_PORT: String(metricsPort) }), as);
    if (metricsPort) log(`${name}: metrics on http://${childEnv.METRICS_HOST}:${metricsPort}/metrics`);
  }
  await waitForPort(port, { what: 'gateway', timeoutMs: 30_000 });
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
  supervising = true;
  log(`Image Factory ready on http://localhost:${port}/ (storage: ${s3 ? `s3 bucket ${s3}` : path.join(dataDir, 'objects')})`);
}

main().catch((err) => {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else log(`failed to start: ${(err as Error).message}`);
  void shutdown(1);
});
