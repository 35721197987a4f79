/**
 * Real helper processes for integration tests: Redis, Debian's docker-registry and an s3rver S3 protocol server,
 * each on a free loopback port in its own temporary directory. Every helper returns a handle whose stop() kills the
 * process and removes its directory, so a test file can start what it needs in beforeAll and stop it in afterAll.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from '@factory/process';

// one home for ports: @factory/process (re-exported for the integration tests)
export { freePort, waitForPort };

export interface ProcHandle {
  port: number;
  dir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

function tmpDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `factory-${prefix}-`));
}

async function stopProc(proc: ChildProcess, dir?: string): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function spawnLogged(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-8192); };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.on('exit', (code, sig) => {
    if (code && code !== 0 && sig === null && process.env.FACTORY_TEST_VERBOSE) process.stderr.write(`${cmd} exited ${code}: ${out}\n`);
  });
  (proc as ChildProcess & { recentOutput: () => string }).recentOutput = () => out;
  return proc;
}

export async function startRedis(): Promise<ProcHandle & { url: string }> {
  const dir = tmpDir('redis');
  const port = await freePort();
  const proc = spawnLogged('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']);
  await waitForPort(port);
  return { port, dir, proc, url: `redis://127.0.0.1:${port}`, stop: () => stopProc(proc, dir) };
}

/** Debian's docker-registry (distribution 2.8) with filesystem storage, deletes enabled, plain http on loopback. */
export async function startRegistry(storageDir?: string): Promise<ProcHandle & { host: string }> {
  const dir = tmpDir('registry');
  const port = await freePort();
  const storage = storageDir ?? path.join(dir, 'storage');
  const cfg = path.join(dir, 'config.yml');
  writeFileSync(cfg, [
    'version: 0.1',
    'log: { level: error }',
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(storage)} }, delete: { enabled: true } }`,
    `http: { addr: "127.0.0.1:${port}" }`,
    '',
  ].join('\n'));
  const proc = spawnLogged('docker-registry', ['serve', cfg]);
  await waitForPort(port);
  return { port, dir, proc, host: `127.0.0.1:${port}`, stop: () => stopProc(proc, dir) };
}

/** s3rver (S3 protocol) with one bucket; credentials S3RVER/S3RVER. */
export async function startS3(bucket = 'image-factory'): Promise<ProcHandle & { endpoint: string; bucket: string }> {
  const dir = tmpDir('s3');
  const port = await freePort();
  const script = `const S3rver=require('s3rver');new S3rver({port:${port},address:'127.0.0.1',silent:true,directory:${JSON.stringify(dir)},configureBuckets:[{name:${JSON.stringify(bucket)}}]}).run().catch(e=>{console.error(e);process.exit(1)});`;
  const proc = spawnLogged(process.execPath, ['-e', script], { cwd: path.resolve(__dirname, '../..') });
  await waitForPort(port);
  return { port, dir, proc, endpoint: `http://127.0.0.1:${port}`, bucket, stop: () => stopProc(proc, dir) };
}
