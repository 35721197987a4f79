/** Small helpers: running host tools, hashing, timing, file-system odds and ends. */
import { spawn, SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** SOURCE_DATE_EPOCH used for every mtime in every archive (same value the Talos build uses). */
export const SOURCE_DATE_EPOCH = 1559424892;

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Bytes written to the child's stdin. */
  input?: Buffer | string;
  /** Return stdout as a Buffer (default collects it as well). */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run a command without a shell, collect stdout/stderr, reject on a non-zero exit unless allowFailure. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', SOURCE_DATE_EPOCH: String(SOURCE_DATE_EPOCH), ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    };
    const child = spawn(cmd, args, spawnOpts);
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-16384); });
    child.on('error', reject);
    child.on('close', (code) => {
      const res: RunResult = { code: code ?? -1, stdout: Buffer.concat(out), stderr: err };
      if (res.code !== 0 && !opts.allowFailure) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${res.code}: ${err.trim()}`));
      } else {
        resolve(res);
      }
    });
    child.stdin!.on('error', () => { /* child may exit before reading all input */ });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

export function sha256hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

export function mkdirp(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

/** Write a file (creating parent directories) and return its path. */
export function writeFile(file: string, data: Buffer | string, mode?: number): string {
  mkdirp(path.dirname(file));
  fs.writeFileSync(file, data);
  if (mode !== undefined) fs.chmodSync(file, mode);
  return file;
}

/** Simple phase timer; `report()` gives one line per phase. */
export class Timer {
  private readonly start = Date.now();
  private last = Date.now();
  readonly phases: Array<{ name: string; ms: number }> = [];

  constructor(private readonly log: (line: string) => void = () => undefined) {}

  mark(name: string): void {
    const now = Date.now();
    this.phases.push({ name, ms: now - this.last });
    this.log(`[demo-releases] ${name}: ${((now - this.last) / 1000).toFixed(2)} s`);
    this.last = now;
  }

  total(): number {
    return Date.now() - this.start;
  }
}

/** Run async jobs with bounded concurrency, preserving result order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Recursively list regular files and symlinks under dir, relative, sorted bytewise. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    const names = fs.readdirSync(abs).sort(byteCompare);
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out;
}

export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
