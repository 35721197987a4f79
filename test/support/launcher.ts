/** The embedded factory (`npm start` = tools/launcher) as tests run it: launch, find its processes, stop. */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, waitReady } from './factory';
import { announceFactory } from './response-hooks';

export interface LaunchedFactory {
  proc: ChildProcess;
  url: string;
  /** everything the launcher and its processes printed so far */
  output(): string;
}

/** What the launcher decides when it is not told: never inherited from the test's environment, only given in `env`. */
const LAUNCHER_CHOICES = ['REDIS_URL', 'S3_BUCKET', 'FACTORY_UPSTREAM_REGISTRY', 'FACTORY_PRIVILEGE_SEPARATION', 'FACTORY_SERVICE_USER'];

/**
 * Starts the launcher with nothing configured but the port, data and demo directories and what `env` adds; waits
 * until it is ready.
 */
export async function launchFactory(o: { port: number; dataDir: string; demoDir: string; env?: NodeJS.ProcessEnv }): Promise<LaunchedFactory> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(o.port), HOST: '127.0.0.1', FACTORY_DATA_DIR: o.dataDir, FACTORY_DEMO_DIR: o.demoDir, LOG_LEVEL: 'warn', ...o.env };
  for (const k of LAUNCHER_CHOICES) if (!o.env?.[k]) delete env[k];
  const proc = spawn(process.execPath, [path.join(ROOT, 'tools/launcher/dist/main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${o.port}`;
  announceFactory(url);
  try {
    await waitReady(url, 120_000);
    // The launcher announces readiness once its own check passes.
    const deadline = Date.now() + 30_000;
    while (!out.includes('Image Factory ready on http://localhost:')) {
      if (Date.now() > deadline) throw new Error('launcher never announced readiness');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stopProcess(proc);
    throw new Error(`${(err as Error).message}\n${out.slice(-4000)}`);
  }
  return { proc, url, output: () => out };
}

/** SIGTERM (SIGKILL if it has not exited 30 s later: the launcher gives its services as long), then the exit code. */
export async function stopProcess(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 35_000);
  try {
    return await exited;
  } finally {
    clearTimeout(t);
  }
}

export interface EmbeddedRedis {
  port: number;
  /** the config file the launcher wrote for it: 0600, with the password */
  confFile: string;
  password: string;
  /** REDIS_URL as the services get it */
  url: string;
}

/**
 * The Redis a launched factory started, as its log names it, with the password read from its config file (which
 * only root, or the launcher's user without privilege separation, can read).
 */
export function embeddedRedis(f: LaunchedFactory): EmbeddedRedis {
  const m = /started Redis on 127\.0\.0\.1:(\d+), password in (.+?);/.exec(f.output());
  if (!m) throw new Error(`the launcher did not say where its Redis is:\n${f.output().slice(-2000)}`);
  const confFile = m[2];
  const password = /^requirepass\s+(\S+)$/m.exec(readFileSync(confFile, 'utf8'))?.[1];
  if (!password) throw new Error(`no requirepass in ${confFile}`);
  const port = Number(m[1]);
  return { port, confFile, password, url: `redis://:${password}@127.0.0.1:${port}` };
}

/** Every descendant process of `pid`. */
export function descendants(pid: number): number[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const kids = out.split('\n').map((s) => Number(s.trim())).filter(Boolean);
  return kids.flatMap((k) => [k, ...descendants(k)]);
}

/** The launcher's child running `name` (a service name, `redis-server` or `docker-registry`), if any. */
export function launchedProcess(launcherPid: number, name: string): number | undefined {
  const needle = ['redis-server', 'docker-registry'].includes(name) ? name : `services/${name}/dist/main.js`;
  for (const pid of descendants(launcherPid)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
