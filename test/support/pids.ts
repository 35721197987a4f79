/** Process liveness for tests that check that killed process trees are really gone. */
import fs from 'node:fs';

/** Whether `pid` is a live (non-zombie) process; zombies of killed children wait for PID 1 to reap them. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits up to `ms` for `pid` to stop being a live process; true when it did. */
export async function pidGone(pid: number, ms = 2500): Promise<boolean> {
  const end = Date.now() + ms;
  while (pidAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return !pidAlive(pid);
}
