/**
 * Demo initramfs.xz (talos-formats §1.2 / §12.1): newc cpio with `init`, `bin/busybox`, `lib/fixture-modules/*.ko`
 * and `rootfs.sqsh`; zstd -18 for Talos >= 1.8, `xz -C crc32 -0 -e` before.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createCpio, CpioEntry, withCpioParents } from './cpio';
import { KernelKit } from './debian';
import { initScript } from './init-script';
import { modulesDir, quirks } from './versions';
import { mkdirp, rmrf, run } from './util';

/** Compress an initramfs segment the way the given Talos version does (zstd -18 / xz crc32 -0 -e). */
export async function compressInitramfs(cpio: Buffer, talosVersion: string): Promise<Buffer> {
  if (quirks(talosVersion).zstd) {
    return (await run('zstd', ['-18', '-T1', '-q', '-c', '--no-progress'], { input: cpio })).stdout;
  }
  return (await run('xz', ['-C', 'crc32', '-0', '-e', '-T1', '-z', '-c', '-q'], { input: cpio })).stdout;
}

/** mksquashfs a directory reproducibly (all-root, fixed times via SOURCE_DATE_EPOCH, no xattrs). */
export async function mksquashfs(srcDir: string, out: string, talosVersion: string): Promise<void> {
  const comp = quirks(talosVersion).zstd ? ['-comp', 'zstd', '-Xcompression-level', '18'] : ['-comp', 'xz', '-Xdict-size', '100%'];
  rmrf(out);
  await run('mksquashfs', [srcDir, out, '-all-root', '-noappend', '-no-progress', '-no-xattrs', '-processors', '1', ...comp]);
}

/** Build rootfs.sqsh: <modules dir>/<kver>/ with the init modules under kernel/... and depmod's modules.* files. */
export async function buildRootfsSquashfs(kit: KernelKit, talosVersion: string, workDir: string): Promise<Buffer> {
  const tree = path.join(workDir, 'rootfs');
  rmrf(tree);
  const modBase = modulesDir(talosVersion); // usr/lib/modules or lib/modules
  const kdir = mkdirp(path.join(tree, modBase, kit.kver));
  for (const m of kit.modules) {
    mkdirp(path.dirname(path.join(kdir, m.rel)));
    fs.copyFileSync(m.file, path.join(kdir, m.rel));
  }
  for (const f of kit.metaFiles) fs.copyFileSync(f, path.join(kdir, path.basename(f)));
  // depmod wants <basedir>/lib/modules/<kver>
  const base = modBase.startsWith('usr/') ? path.join(tree, 'usr') : tree;
  await run('depmod', ['-b', base, kit.kver]);
  mkdirp(path.join(tree, 'etc'));
  fs.writeFileSync(path.join(tree, 'etc', 'os-release'), `NAME="Talos (demo)"\nID=talos\nVERSION_ID=${talosVersion}\nPRETTY_NAME="Talos (${talosVersion}, demo stand-in)"\n`);
  const out = path.join(workDir, 'rootfs.sqsh');
  await mksquashfs(tree, out, talosVersion);
  const data = fs.readFileSync(out);
  rmrf(tree);
  rmrf(out);
  return data;
}

export interface InitramfsResult {
  /** compressed initramfs.xz */
  data: Buffer;
  /** the uncompressed cpio (for inspection) */
  cpioSize: number;
}

export async function buildInitramfs(kit: KernelKit, talosVersion: string, workDir: string): Promise<InitramfsResult> {
  mkdirp(workDir);
  const rootfs = await buildRootfsSquashfs(kit, talosVersion, workDir);
  const entries: CpioEntry[] = [
    { type: 'file', path: 'init', data: initScript({ talosVersion, modules: kit.modules.map((m) => path.basename(m.rel, '.ko')) }), mode: 0o755 },
    { type: 'file', path: 'bin/busybox', data: fs.readFileSync(kit.busybox), mode: 0o755 },
    { type: 'file', path: 'rootfs.sqsh', data: rootfs, mode: 0o644 },
    ...kit.modules.map((m): CpioEntry => ({ type: 'file', path: `lib/fixture-modules/${path.basename(m.rel)}`, data: fs.readFileSync(m.file), mode: 0o644 })),
  ];
  const cpio = createCpio(withCpioParents(entries));
  return { data: await compressInitramfs(cpio, talosVersion), cpioSize: cpio.length };
}
