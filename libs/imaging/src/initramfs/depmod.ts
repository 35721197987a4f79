/**
 * Kernel modules of extensions (talos-formats §4.5): take `rootfs.sqsh` out of the base initramfs, unsquash its
 * modules tree, overlay the extensions' `<modules>/<kver>/` trees, run depmod, and collect the top-level `modules.*`
 * files into the synthetic `modules.dep` extension rootfs.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ByteReader, readCpio, S_IFMT, S_IFREG } from '@factory/archive';
import { run } from '@factory/process';
import { openDecompressed } from './decompress';
import { byteOrder } from './tree';

/** Copy rootfs.sqsh (first occurrence) out of a base initramfs (xz / zstd / plain newc) into `out`. */
export async function extractRootfsSquashfs(initramfs: string, out: string): Promise<void> {
  const dec = await openDecompressed(fs.createReadStream(initramfs));
  let found = false;
  try {
    found = await copyCpioMember(dec.reader, 'rootfs.sqsh', out);
  } finally {
    await dec.abandon();
  }
  if (!found) throw new Error(`rootfs.sqsh not found in ${initramfs}`);
}

/** Stream the data of the first regular file `name` of the (concatenated) newc archives into `out`. */
async function copyCpioMember(r: ByteReader, name: string, out: string): Promise<boolean> {
  for await (const e of readCpio(r)) {
    if (e.path.replace(/^\.\//, '') !== name || (e.mode & S_IFMT) !== S_IFREG) continue;
    const fh = await fsp.open(out, 'w');
    try {
      for await (const c of e.body()) await fh.write(c);
    } finally {
      await fh.close();
    }
    return true;
  }
  return false;
}

/** Recursive copy that never follows symlinks (files overwrite, symlinks are recreated, directories merge). */
export async function copyTree(src: string, dst: string): Promise<void> {
  await fsp.mkdir(dst, { recursive: true });
  for (const name of (await fsp.readdir(src)).sort(byteOrder)) {
    const s = path.join(src, name);
    const d = path.join(dst, name);
    const st = await fsp.lstat(s);
    const cur = await fsp.lstat(d).catch(() => null);
    if (st.isDirectory()) {
      if (cur && !cur.isDirectory()) await fsp.rm(d, { recursive: true, force: true });
      if (!cur || !cur.isDirectory()) {
        await fsp.mkdir(d);
        await fsp.chmod(d, st.mode & 0o7777);
      }
      await copyTree(s, d);
    } else if (st.isSymbolicLink()) {
      if (cur) await fsp.rm(d, { recursive: true, force: true });
      await fsp.symlink(await fsp.readlink(s), d);
    } else if (st.isFile()) {
      if (cur) await fsp.rm(d, { recursive: true, force: true });
      await fsp.copyFile(s, d);
      await fsp.chmod(d, st.mode & 0o7777);
    }
  }
}

export interface ModulesDepResult {
  kver: string;
  /** rootfs of the synthetic modules.dep extension */
  rootfs: string;
  /** files moved into it (relative to rootfs) */
  files: string[];
}

/**
 * @param modulesPath `usr/lib/modules` (>= 1.10) or `lib/modules`
 * @param extensionRootfs rootfs dirs of the extensions, in processing order
 */
export async function buildModulesDep(o: { base: string; modulesPath: string; extensionRootfs: string[]; workDir: string }): Promise<ModulesDepResult> {
  const sqsh = path.join(o.workDir, 'base-rootfs.sqsh');
  const tree = path.join(o.workDir, 'modules');
  await fsp.rm(tree, { recursive: true, force: true });
  await extractRootfsSquashfs(o.base, sqsh);
  await run('unsquashfs', ['-no-xattrs', '-d', tree, '-f', '-n', sqsh, o.modulesPath]);
  await fsp.rm(sqsh, { force: true });
  const modRoot = path.join(tree, o.modulesPath);
  const kvers = await fsp.readdir(modRoot).catch(() => [] as string[]);
  if (kvers.length !== 1) throw new Error(`expected exactly one kernel version in ${o.modulesPath} of rootfs.sqsh, found ${kvers.length}: ${kvers.join(', ')}`);
  const kver = kvers[0];
  const kdir = path.join(modRoot, kver);
  if (!(await fsp.lstat(kdir)).isDirectory()) throw new Error(`${o.modulesPath}/${kver} in rootfs.sqsh is not a directory`);
  for (const rootfs of o.extensionRootfs) {
    const src = path.join(rootfs, o.modulesPath, kver);
    const st = await fsp.lstat(src).catch(() => null);
    if (st?.isDirectory()) await copyTree(src, kdir);
  }
  const conf = path.join(o.workDir, 'depmod.conf');
  await fsp.writeFile(conf, 'search extras built-in\n');
  // --basedir is the tree with the trailing lib/modules stripped (usr/lib/modules -> <tree>/usr)
  const basedir = path.join(tree, path.dirname(path.dirname(o.modulesPath)));
  await run('depmod', ['--all', '--basedir', basedir, '--config', conf, kver]);

  const rootfs = path.join(o.workDir, 'modules.dep', 'rootfs');
  await fsp.rm(path.dirname(rootfs), { recursive: true, force: true });
  const dst = path.join(rootfs, o.modulesPath, kver);
  await fsp.mkdir(dst, { recursive: true });
  // directories of the synthetic extension: 0755 whatever the umask
  for (let p = dst; p.length >= path.dirname(rootfs).length; p = path.dirname(p)) await fsp.chmod(p, 0o755);
  const files: string[] = [];
  for (const name of (await fsp.readdir(kdir)).sort(byteOrder)) {
    if (!name.startsWith('modules.')) continue;
    const st = await fsp.lstat(path.join(kdir, name));
    if (!st.isFile()) continue;
    await fsp.rename(path.join(kdir, name), path.join(dst, name));
    await fsp.chmod(path.join(dst, name), 0o644);
    files.push(`${o.modulesPath}/${kver}/${name}`);
  }
  return { kver, rootfs, files };
}
