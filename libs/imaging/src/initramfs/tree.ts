/** Deterministic file-tree walking: depth first, names in byte order, directories before their contents. */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export interface WalkEntry {
  /** path relative to the walk root, '/'-separated, no leading './' */
  rel: string;
  abs: string;
  st: fs.Stats;
}

/** Walk `root` (not included itself) without following symlinks. `skip(rel)` prunes a subtree. */
export async function* walkTree(root: string, skip: (rel: string) => boolean = () => false): AsyncGenerator<WalkEntry> {
  async function* visit(dirAbs: string, dirRel: string): AsyncGenerator<WalkEntry> {
    const names = (await fsp.readdir(dirAbs)).sort(byteOrder);
    for (const name of names) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      if (skip(rel)) continue;
      const abs = path.join(dirAbs, name);
      const st = await fsp.lstat(abs);
      yield { rel, abs, st };
      if (st.isDirectory()) yield* visit(abs, rel);
    }
  }
  yield* visit(root, '');
}
