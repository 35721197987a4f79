/**
 * The ESP (FAT32) built as a file (talos-formats.md §8.2): `mkfs.vfat -C -F 32 -n EFI --invariant -S <sector>`,
 * then populated with mtools. Where the imager runs `mcopy -s -p -Q -m` per top-level entry (whose order follows the
 * host's readdir order), this creates the directories with one `mmd` in sorted order and copies the files directory
 * by directory in sorted order with `mcopy -p -Q -m`, so the result does not depend on the staging file system.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EnvOverrides, run } from '@factory/process';

export interface FatBuildOptions {
  file: string;
  sizeBytes: bigint;
  label: string;
  sectorSize: number;
  /** staging root: becomes the FAT root */
  sourceDir: string;
  env: EnvOverrides;
}

/** Relative (posix) paths of the directories and regular files under `dir`, sorted. */
export async function listTree(dir: string): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  const walk = async (rel: string) => {
    const abs = path.join(dir, ...rel.split('/').filter(Boolean));
    for (const n of (await fsp.readdir(abs)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await fsp.lstat(path.join(abs, n));
      if (st.isDirectory()) {
        dirs.push(r);
        await walk(r);
      } else if (st.isFile()) files.push(r);
      else throw new Error(`unsupported file type in ESP staging: ${r}`);
    }
  };
  await walk('');
  return { dirs: dirs.sort(), files: files.sort() };
}

export async function buildFat(o: FatBuildOptions): Promise<{ files: string[] }> {
  if (o.sizeBytes % 1024n !== 0n) throw new Error('FAT image size must be a multiple of 1 KiB');
  await fsp.rm(o.file, { force: true });
  await run('mkfs.vfat', ['-C', '-F', '32', '-n', o.label, '--invariant', '-S', String(o.sectorSize), o.file, String(o.sizeBytes / 1024n)], { env: o.env });
  const { dirs, files } = await listTree(o.sourceDir);
  // one mmd call per 64 directories (sorted: parents come first)
  for (let i = 0; i < dirs.length; i += 64) {
    await run('mmd', ['-i', o.file, ...dirs.slice(i, i + 64).map((d) => `::/${d}`)], { env: o.env });
  }
  const byDir = new Map<string, string[]>();
  for (const f of files) {
    const d = path.posix.dirname(f);
    byDir.set(d, [...(byDir.get(d) ?? []), f]);
  }
  for (const [d, rels] of [...byDir].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (let i = 0; i < rels.length; i += 64) {
      const chunk = rels.slice(i, i + 64).map((r) => path.join(o.sourceDir, ...r.split('/')));
      await run('mcopy', ['-p', '-Q', '-m', '-i', o.file, ...chunk, `::/${d === '.' ? '' : d}`], { env: o.env });
    }
  }
  return { files };
}
