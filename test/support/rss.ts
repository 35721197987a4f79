/**
 * Memory of the embedded factory's processes while a long test or script runs: every descendant of the launcher is
 * named by its command line (a service, Redis, the demo registry, a build sandbox) and its resident set size is read
 * from /proc/<pid>/status (VmRSS). Peaks are kept per name; a process restarted under the same name shares its row.
 */
import fs from 'node:fs';

/** The processes below `root` (not `root` itself), from one pass over /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) for (const kid of children.get(queue.shift()!) ?? []) queue.push(kid), out.push(kid);
  return out;
}

/** The command line of `pid`, arguments separated by spaces; undefined when it is gone. */
export function processCommand(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return undefined;
  }
}

/** A stable name for one of the launcher's processes, from its command line. */
export function processName(pid: number): string | undefined {
  const cmdline = processCommand(pid);
  if (cmdline === undefined) return undefined;
  const service = /services\/([a-z-]+)\/dist\/main\.js/.exec(cmdline)?.[1];
  if (service) return service;
  // the server, and its append-only-file rewrite child (which renames itself)
  if (cmdline.includes('redis')) return 'redis-server';
  if (cmdline.includes('docker-registry')) return 'docker-registry';
  // BullMQ's sandboxed job processes (builds) are node children of the build-worker
  if (/\bnode\b/.test(cmdline) || cmdline.startsWith(process.execPath)) return 'build-sandbox';
  // what a build runs (xorriso, mksquashfs, zstd, …): short-lived, one row for all
  return cmdline ? 'build-tools' : undefined;
}

/** Resident set size of `pid` in bytes, undefined when it is gone (or a zombie without memory). */
export function rssBytes(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** Current RSS per process name (a name with several processes, e.g. build sandboxes, is their largest). */
export function rssByName(root: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of processTree(root)) {
    const name = processName(pid);
    const rss = name === undefined ? undefined : rssBytes(pid);
    if (name !== undefined && rss !== undefined) out.set(name, Math.max(out.get(name) ?? 0, rss));
  }
  return out;
}

/** Samples `rssByName(root)` every `everyMs` until stopped; keeps the first sample, the last and the peaks. */
export class RssSampler {
  readonly first: Map<string, number>;
  last: Map<string, number>;
  readonly peak = new Map<string, number>();
  samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly root: number, everyMs = 500) {
    this.first = this.sample();
    this.last = this.first;
    this.timer = setInterval(() => (this.last = this.sample()), everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.last = this.sample();
  }

  private sample(): Map<string, number> {
    const now = rssByName(this.root);
    for (const [name, rss] of now) this.peak.set(name, Math.max(this.peak.get(name) ?? 0, rss));
    this.samples++;
    return now;
  }
}

export const megabytes = (bytes: number | undefined): string => (bytes === undefined ? '-' : `${(bytes / 1048576).toFixed(0)} MB`);
