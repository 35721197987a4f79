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

/**
 * Removes scratch directories whose owner process is gone; returns what was removed. Only this user's directories
 * are looked at (a shared /tmp also holds other users' factories, which are theirs to clean), and one that cannot be
 * removed is skipped (`onSkipped`), never a reason not to start.
 */
export async function removeOrphanedScratch(tmpDir = os.tmpdir(), now = Date.now(), onSkipped?: (dir: string, err: unknown) => void): Promise<string[]> {
  const removed: string[] = [];
  const uid = process.getuid?.();
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(tmpDir, name);
    const info = await stat(dir).catch(() => undefined);
    if (!info || (uid !== undefined && info.uid !== uid)) continue;
    const owned = OWNED.exec(name);
    const orphaned = owned ? !alive(Number(owned[1])) : now - info.mtimeMs > UNOWNED_MAX_AGE_MS;
    if (!orphaned) continue;
    try {
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch (err) {
      onSkipped?.(dir, err);
    }
  }
  return removed;
}
