/**
 * Per-extension squashfs (talos-formats §4.2 step 3) with squashfs-tools.
 *
 * Upstream runs `mksquashfs <rootfs> <out> -all-root -noappend -no-progress -xattrs-exclude .* -p "<path> x
 * security.selinux=<label>" ...`, which needs squashfs-tools >= 4.6 for both `-xattrs-exclude` and the `x` pseudo
 * definition. squashfs-tools 4.5.1 has neither, but its `-tar` input mode stores `SCHILY.xattr.*` PAX records as
 * xattrs. So by default the tree is streamed as a tar we generate ourselves (sorted, owner 0:0, fixed mtime, PAX
 * SELinux labels only): the image gets exactly the remembered labels and no host xattrs, the same result as the
 * upstream flags. If a mksquashfs without `-tar` is found, the directory is given to mksquashfs directly with
 * `-no-xattrs` (labels are then lost; with >= 4.6 `-xattrs-exclude` + pseudo definitions are used instead).
 * Times: `-mkfs-time` and `-all-time` = SOURCE_DATE_EPOCH, so output depends only on the content. (The runner's clean
 * environment keeps a SOURCE_DATE_EPOCH variable of the caller away: mksquashfs refuses it next to those options.)
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { feed, run, start } from '@factory/process';
import { tarTree } from './tar-write';

export interface MksquashfsFeatures {
  version: string;
  tar: boolean;
  xattrsExclude: boolean;
}

let features: Promise<MksquashfsFeatures> | undefined;

export function mksquashfsFeatures(): Promise<MksquashfsFeatures> {
  features ??= (async () => {
    // -help exits non-zero on some versions
    const probe = async (args: string[]) => (await run('mksquashfs', args, { allowFailure: true }).catch(() => undefined))?.stdout.toString('utf8') ?? '';
    const help = await probe(['-help']);
    const ver = (await probe(['-version'])).match(/mksquashfs version (\S+)/)?.[1] ?? 'unknown';
    return { version: ver, tar: /^-tar\b/m.test(help), xattrsExclude: /-xattrs-exclude\b/.test(help) };
  })();
  return features;
}

export interface SquashOptions {
  /** zstd level 18 (Talos >= 1.8), else xz with a 100% dictionary */
  zstd: boolean;
  mtime: number;
  /** SELinux labels keyed by path relative to the tree root */
  labels?: Map<string, string>;
  /** paths (relative to the tree root) left out, with everything below them */
  exclude?: string[];
  /** force an input mode (tests); default: tar when supported */
  mode?: 'tar' | 'dir';
}

export interface SquashResult {
  mode: 'tar' | 'dir';
  /** how SELinux labels were handled: stored, or dropped because this mksquashfs cannot store them */
  labels: 'none' | 'stored' | 'dropped';
}

function compression(zstd: boolean): string[] {
  return zstd ? ['-comp', 'zstd', '-Xcompression-level', '18'] : ['-comp', 'xz', '-Xdict-size', '100%'];
}

function pseudoQuote(p: string): string {
  return /[\s"\\]/.test(p) ? `"${p.replace(/["\\]/g, (c) => `\\${c}`)}"` : p;
}

export async function mksquashfsTree(root: string, out: string, o: SquashOptions): Promise<SquashResult> {
  const f = await mksquashfsFeatures();
  const mode = o.mode ?? (f.tar ? 'tar' : 'dir');
  const labels = o.labels ?? new Map<string, string>();
  const exclude = new Set((o.exclude ?? []).map((p) => p.replace(/^\/+|\/+$/g, '')));
  const rootMode = ((await fsp.stat(root)).mode & 0o7777).toString(8);
  const common = ['-noappend', '-no-progress', '-quiet', '-all-root', '-mkfs-time', String(o.mtime), '-all-time', String(o.mtime)];
  await fsp.rm(out, { force: true });
  if (mode === 'tar') {
    if (!f.tar) throw new Error(`mksquashfs ${f.version} has no -tar input mode`);
    // -tar defaults to -no-exports and a 0777 root; match the directory-mode defaults upstream gets
    const tool = start('mksquashfs', ['-', out, '-tar', ...common, '-exports', '-root-mode', rootMode, ...compression(o.zstd)], { stdin: 'pipe' });
    await feed(tool, tarTree(root, { mtime: o.mtime, labels, exclude: (rel) => exclude.has(rel) }));
    return { mode, labels: labels.size ? 'stored' : 'none' };
  }
  const args = [root, out, ...common, ...compression(o.zstd)];
  let result: SquashResult['labels'] = labels.size ? 'dropped' : 'none';
  if (labels.size && f.xattrsExclude) {
    const pf = `${out}.pseudo`;
    const lines = [...labels].map(([rel, label]) => `${pseudoQuote(rel)} x security.selinux=${label}`);
    await fsp.writeFile(pf, `${lines.join('\n')}\n`);
    args.push('-xattrs-exclude', '.*', '-pf', pf);
    result = 'stored';
  } else {
    args.push('-no-xattrs');
  }
  if (exclude.size) args.push('-e', ...[...exclude].map((p) => path.join(root, p)));
  await run('mksquashfs', args);
  await fsp.rm(`${out}.pseudo`, { force: true });
  return { mode, labels: result };
}
