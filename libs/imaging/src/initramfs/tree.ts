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

/** Stream a file's bytes, checking that it still has the expected size. */
export async function* fileChunks(abs: string, expected: number): AsyncGenerator<Buffer> {
  let n = 0;
  const fh = await fsp.open(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for (;;) {
      // a fresh buffer per read (consumers may hold on to chunks), sized to what is left (+1 to notice growth)
      const buf = Buffer.allocUnsafe(Math.min(Math.max(expected - n, 0) + 1, 1 << 20));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (!bytesRead) break;
      n += bytesRead;
      if (n > expected) break;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
  if (n !== expected) throw new Error(`${abs} changed size while being read (${expected} -> ${n} bytes)`);
}
