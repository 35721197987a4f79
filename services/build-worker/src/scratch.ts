/**
 * Build scratch directories: `<tmp>/factory-build-<pid>-<random>`, named after the sandbox process that owns them.
 * A sandbox that dies mid-build (its worker was killed, the machine lost power) cannot clean up after itself; the
 * next build-worker to start on the machine removes every scratch directory whose owner is no longer alive.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'factory-build-';
const OWNED = /^factory-build-(\d+)-[A-Za-z0-9]+$/;
/** Scratch directories from before they carried their owner's pid: removed once this old. */
const UNOWNED_MAX_AGE_MS = 24 * 3600_000;

/** A new scratch directory owned by this process. */
export function makeScratchDir(tmpDir = os.tmpdir()): Promise<string> {
  return mkdtemp(path.join(tmpDir, `${PREFIX}${process.pid}-`));
}

function alive(pid: number): boolean {
  try {
    // A zombie is dead: a sandbox whose worker was killed waits as one until PID 1 reaps it (if ever, in a container).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    // no /proc entry (or no /proc): ask the kernel; EPERM means it exists but belongs to someone else
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
}

/** Removes scratch directories whose owner process is gone; returns what was removed. */
export async function removeOrphanedScratch(tmpDir = os.tmpdir(), now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(tmpDir, name);
    const owned = OWNED.exec(name);
    let orphaned: boolean;
    if (owned) orphaned = !alive(Number(owned[1]));
    else orphaned = now - (await stat(dir).then((s) => s.mtimeMs).catch(() => now)) > UNOWNED_MAX_AGE_MS;
    if (!orphaned) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
