/** Where the checkout is, from a module anywhere below it (these helpers also run compiled, from test/fuzz/dist). */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** The nearest directory at or above `from` holding pnpm-workspace.yaml. */
export function findCheckout(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no pnpm-workspace.yaml above ${from}`);
  }
}
