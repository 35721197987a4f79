/** Small helpers: running host tools, hashing, timing, file-system odds and ends. */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SOURCE_DATE_EPOCH } from '@factory/imaging';
import { PROXY_VARS, run as runProcess, RunOptions, RunResult } from '@factory/process';

/** The Talos build's SOURCE_DATE_EPOCH: every mtime in every archive (one home: @factory/imaging reproducible.ts). */
export { SOURCE_DATE_EPOCH };
export type { RunOptions, RunResult };

/**
 * Run a host tool through @factory/process with what the demo build needs on top of the clean environment:
 * SOURCE_DATE_EPOCH (mksquashfs dates), the proxy and container/apt settings of the caller (apt-get, skopeo), and
 * whole outputs (compressed segments and package lists are read from stdout, so an overflow fails instead of
 * keeping a tail).
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runProcess(cmd, args, {
    maxOutputBytes: 1 << 30,
    onOverflow: 'fail',
    passEnv: [...PROXY_VARS, 'APT_CONFIG', 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME'],
    ...opts,
    env: { SOURCE_DATE_EPOCH: String(SOURCE_DATE_EPOCH), ...opts.env },
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
