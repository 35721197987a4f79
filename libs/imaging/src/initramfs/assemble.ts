/**
 * Initramfs assembly with system extensions, talos-formats §4:
 *   [uncompressed cpio: kernel/x86/microcode/*] + base initramfs bytes + compressed cpio {N.sqsh..., extensions.yaml,
 *   modules.dep.sqsh, firmware}.
 *
 * Inputs are never modified: firmware and microcode are left out of the extension squashfs and read from the
 * extension directories while the cpio is streamed (the imager moves them instead; the result is the same).
 * Everything is streamed (squashfs via mksquashfs files in workDir, cpio straight into the compressor and the output
 * file), so memory use does not grow with the size of the extensions or of the base initramfs.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { marshal } from '@factory/goyaml';
import { firmwarePath, formatSemver, kernelModulesPath, parseTolerant, usesZstd } from '@factory/talos';
import { feed, run, start } from '@factory/process';
import { CpioNode, newcArchive } from '@factory/archive';
import { buildModulesDep } from './depmod';
import { ExtensionCompatibilityError } from './errors';
import { ExtensionMetadata, LoadedExtension, loadExtension, metadataForYaml } from './manifest';
import { SOURCE_DATE_EPOCH } from '../reproducible';
import { constraintAllows } from './semver-range';
import { LayerCache, layerKey, publishLayer, takeCachedLayer } from './layer-cache';
import { mksquashfsFeatures, mksquashfsTree, SquashOptions } from './squashfs';
import { byteOrder, walkTree } from './tree';

export interface ExtensionDir {
  /** contains manifest.yaml + rootfs/ */
  dir: string;
  /** SELinux labels keyed by path relative to dir (e.g. rootfs/usr/local/etc/talos/config.yaml), from extractLayers */
  selinux?: Map<string, string>;
  /**
   * Identity of the directory's content when it never changes (an official extension pinned by digest, extracted
   * once): its layers may then come from, and go to, the layer cache. Absent for per-build trees (schematic, config).
   */
  contentKey?: string;
}

export interface AssembleOptions {
  /** path of the imager's initramfs.xz (xz for < 1.8, zstd from 1.8) */
  base: string;
  /** Talos tag, e.g. v1.11.3: drives the quirks */
  version: string;
  /** in order: official ones, then schematic, then embedded-config */
  extensions: ExtensionDir[];
  /** scratch directory, the caller deletes it */
  workDir: string;
  /** output file path */
  out: string;
  /** mtime of every cpio entry and squashfs inode (default SOURCE_DATE_EPOCH) */
  sourceDateEpoch?: number;
  /** progress lines (the imager's extension table, tool decisions) */
  log?: (line: string) => void;
  /** where layers of immutable inputs are cached across builds (see layer-cache.ts); none: every layer is built */
  layerCache?: LayerCache;
  /** identity of the base initramfs's content (e.g. the imager's digest and arch); needed to cache `modules.dep` */
  baseContentKey?: string;
}

export interface AssembleResult {
  layers: Array<{ image: string; name: string; version: string }>;
  modulesDep: boolean;
  /** paths in the prepended uncompressed cpio, e.g. kernel/x86/microcode/GenuineIntel.bin */
  microcode: string[];
}

type StageNode =
  | { type: 'dir'; mode: number }
  | { type: 'symlink'; target: string }
  | { type: 'file'; mode: number; size: number; data?: Buffer; sources?: Array<{ path: string; size: number }> };

/** The staging directory S of the imager, kept as a listing of where each entry's bytes come from. */
class Stage {
  readonly nodes = new Map<string, StageNode>();

  private ensureParents(rel: string): void {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      const cur = this.nodes.get(d);
      if (cur?.type === 'dir') continue;
      if (cur) this.remove(d);
      this.nodes.set(d, { type: 'dir', mode: 0o755 });
    }
  }

  remove(rel: string): void {
    for (const k of [...this.nodes.keys()]) if (k === rel || k.startsWith(`${rel}/`)) this.nodes.delete(k);
  }

  /** Later entries overwrite earlier ones; an existing directory is merged into (its mode kept). */
  put(rel: string, node: StageNode): void {
    this.ensureParents(rel);
    const cur = this.nodes.get(rel);
    if (cur?.type === 'dir' && node.type === 'dir') return;
    if (cur) this.remove(rel);
    this.nodes.set(rel, node);
  }

  /** Depth-first listing, names in byte order, directories before their contents (like the imager's walk). */
  list(): CpioNode[] {
    const children = new Map<string, string[]>();
    for (const rel of this.nodes.keys()) {
      const i = rel.lastIndexOf('/');
      const parent = i < 0 ? '' : rel.slice(0, i);
      const name = i < 0 ? rel : rel.slice(i + 1);
      const arr = children.get(parent);
      if (arr) arr.push(name);
      else children.set(parent, [name]);
    }
    const out: CpioNode[] = [];
    const visit = (dir: string) => {
      for (const name of (children.get(dir) ?? []).sort(byteOrder)) {
        const rel = dir ? `${dir}/${name}` : name;
        const n = this.nodes.get(rel)!;
        if (n.type === 'dir') {
          const subdirs = (children.get(rel) ?? []).filter((c) => this.nodes.get(`${rel}/${c}`)?.type === 'dir').length;
          out.push({ type: 'dir', path: rel, mode: n.mode, nlink: 2 + subdirs });
          visit(rel);
        } else if (n.type === 'symlink') {
          out.push({ type: 'symlink', path: rel, target: n.target });
        } else {
          out.push({ type: 'file', path: rel, mode: n.mode, size: n.size, data: n.data, sources: n.sources });
        }
      }
    };
    visit('');
    return out;
  }
}

async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  return fsp.lstat(p).catch(() => null);
}

/** Regular files of a directory (sorted), optionally filtered by name; [] when the directory does not exist. */
async function regularFiles(dir: string, match: (name: string) => boolean = () => true): Promise<Array<{ name: string; path: string; size: number }>> {
  const st = await lstatOrNull(dir);
  if (!st?.isDirectory()) return [];
  const out: Array<{ name: string; path: string; size: number }> = [];
  for (const name of (await fsp.readdir(dir)).sort(byteOrder)) {
    if (!match(name)) continue;
    const p = path.join(dir, name);
    const s = await fsp.lstat(p);
    if (s.isFile()) out.push({ name, path: p, size: s.size });
  }
  return out;
}

/** SELinux labels of an extension, re-keyed relative to its rootfs. */
function rootfsLabels(selinux: Map<string, string> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of selinux ?? []) {
    const rel = k.replace(/^(\.\/|\/)+/, '');
    if (rel.startsWith('rootfs/')) out.set(rel.slice('rootfs/'.length), v);
  }
  return out;
}

/** Assemble the initramfs with extensions exactly as talos-formats §4 describes. */
export async function assembleInitramfs(o: AssembleOptions): Promise<AssembleResult> {
  const log = o.log ?? (() => undefined);
  const epoch = o.sourceDateEpoch ?? SOURCE_DATE_EPOCH;
  const talos = parseTolerant(o.version);
  if (!talos) throw new Error(`invalid Talos version ${JSON.stringify(o.version)}`);
  const zstd = usesZstd(talos);
  const fwPath = firmwarePath(talos).slice(1);
  const modulesPath = kernelModulesPath(talos).slice(1);

  // §4.1: extension j lives in directory "j"; directories are processed sorted by name as strings (0, 1, 10, 11, 2, ...)
  const order = o.extensions.map((ext, j) => ({ name: String(j), ext })).sort((a, b) => byteOrder(a.name, b.name));
  const loaded: Array<{ name: string; ext: ExtensionDir; l: LoadedExtension }> = [];
  for (const { name, ext } of order) {
    try {
      loaded.push({ name, ext, l: await loadExtension(ext.dir) });
    } catch (e) {
      throw new Error(`error loading extension ${ext.dir}: ${(e as Error).message}`);
    }
  }
  log('NAME\tVERSION\tAUTHOR');
  for (const { l } of loaded) log(`${l.manifest.metadata.name}\t${l.manifest.metadata.version}\t${l.manifest.metadata.author}`);
  for (const { l } of loaded) {
    const c = l.manifest.metadata.compatibility.talos.version;
    if (!constraintAllows(c, talos)) throw new ExtensionCompatibilityError(l.manifest.metadata.name, c, formatSemver(talos));
  }

  const stageDir = path.join(o.workDir, 'staging');
  await fsp.rm(stageDir, { recursive: true, force: true });
  await fsp.mkdir(stageDir, { recursive: true });
  const stage = new Stage();
  const intel: Array<{ path: string; size: number }> = [];
  const amd: Array<{ path: string; size: number }> = [];
  const layers: Array<{ image: string; metadata: ExtensionMetadata }> = [];

  for (const { name, ext, l } of loaded) {
    const fwDir = path.join(l.rootfs, fwPath);
    // §4.2.1 early microcode: concatenated in glob order; the originals do not go anywhere else
    const ucode = new Set<string>();
    for (const f of await regularFiles(path.join(fwDir, 'intel-ucode'))) {
      intel.push(f);
      ucode.add(`intel-ucode/${f.name}`);
    }
    for (const f of await regularFiles(path.join(fwDir, 'amd-ucode'), (n) => n.startsWith('microcode_amd') && n.endsWith('.bin'))) {
      amd.push(f);
      ucode.add(`amd-ucode/${f.name}`);
    }
    // §4.2.2 firmware moves into the initramfs (merged, later files win, permission bits kept)
    const fwSt = await lstatOrNull(fwDir);
    const excludeFw = !!fwSt?.isDirectory();
    if (fwSt?.isDirectory()) {
      stage.put(fwPath, { type: 'dir', mode: fwSt.mode & 0o7777 });
      for await (const { rel, abs, st } of walkTree(fwDir, (r) => ucode.has(r))) {
        const to = `${fwPath}/${rel}`;
        if (st.isDirectory()) stage.put(to, { type: 'dir', mode: st.mode & 0o7777 });
        else if (st.isSymbolicLink()) stage.put(to, { type: 'symlink', target: await fsp.readlink(abs) });
        else if (st.isFile()) stage.put(to, { type: 'file', mode: st.mode & 0o7777, size: st.size, sources: [{ path: abs, size: st.size }] });
        else throw new Error(`${abs}: special files are not allowed in extensions`);
      }
    }
    // §4.2.3 squashfs of what is left
    const image = `${name}.sqsh`;
    const squash: SquashOptions = { zstd, mtime: epoch, labels: rootfsLabels(ext.selinux), exclude: excludeFw ? [fwPath] : [] };
    const sq = await cachedLayer(o.layerCache, ext.contentKey && { kind: 'extension', content: ext.contentKey, ...(await squashInputs(squash)) }, path.join(stageDir, image), (out) =>
      mksquashfsTree(l.rootfs, out, squash),
    );
    if (sq.labels === 'dropped') log(`warning: SELinux labels of ${l.manifest.metadata.name} dropped (mksquashfs cannot store them)`);
    layers.push({ image, metadata: l.manifest.metadata });
  }

  // §4.5 kernel modules -> modules.dep extension, last
  let modulesDep = false;
  const withModules: Array<(typeof loaded)[number]> = [];
  for (const x of loaded) if ((await lstatOrNull(path.join(x.l.rootfs, modulesPath)))?.isDirectory()) withModules.push(x);
  if (withModules.length) {
    // Its bytes depend on the base's modules and on the module trees of the extensions that have one, in order:
    // cacheable when all of those are immutable inputs (the schematic's own extension never has modules).
    const contentKeys = withModules.map((x) => x.ext.contentKey);
    const cacheable = o.baseContentKey !== undefined && contentKeys.every((k) => k !== undefined);
    const squash: SquashOptions = { zstd, mtime: epoch };
    const md = await cachedLayer(
      o.layerCache,
      cacheable && { kind: 'modules.dep', base: o.baseContentKey, extensions: contentKeys, modulesPath, depmod: await depmodVersion(), ...(await squashInputs(squash)) },
      path.join(stageDir, 'modules.dep.sqsh'),
      async (out) => {
        const built = await buildModulesDep({ base: o.base, modulesPath, extensionRootfs: loaded.map((x) => x.l.rootfs), workDir: o.workDir });
        await mksquashfsTree(built.rootfs, out, squash);
        return { kver: built.kver, files: built.files.length };
      },
    );
    layers.push({
      image: 'modules.dep.sqsh',
      metadata: {
        name: 'modules.dep',
        version: md.kver,
        author: 'Talos Machinery',
        description: 'Combined modules.dep for all extensions',
        compatibility: { talos: { version: '' } },
      },
    });
    modulesDep = true;
    log(`depmod ${md.kver}: ${md.files} index files`);
  }

  for (const { image } of layers) {
    const size = (await fsp.stat(path.join(stageDir, image))).size;
    stage.put(image, { type: 'file', mode: 0o644, size, sources: [{ path: path.join(stageDir, image), size }] });
  }
  // §4.3
  const yaml = marshal({ layers: layers.map((x) => ({ image: x.image, metadata: metadataForYaml(x.metadata) })) }, { lineWidth: 80 });
  stage.put('extensions.yaml', { type: 'file', mode: 0o644, size: Buffer.byteLength(yaml), data: Buffer.from(yaml) });
  const microcode: string[] = [];
  for (const [file, parts] of [['GenuineIntel.bin', intel], ['AuthenticAMD.bin', amd]] as const) {
    if (!parts.length) continue;
    const rel = `kernel/x86/microcode/${file}`;
    stage.put(rel, { type: 'file', mode: 0o644, size: parts.reduce((s, p) => s + p.size, 0), sources: [...parts] });
    microcode.push(rel);
  }

  // §4.4: kernel/... -> uncompressed prepended cpio; everything else -> compressed appended cpio
  const all = stage.list();
  const early = all.filter((n) => n.path === 'kernel' || n.path.startsWith('kernel/'));
  const late = all.filter((n) => !(n.path === 'kernel' || n.path.startsWith('kernel/')));
  await fsp.mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
  try {
    const fh = await fsp.open(o.out, 'w');
    try {
      if (early.length) for await (const c of newcArchive(early, epoch)) await fh.write(c);
      const base = await fsp.open(o.base, 'r');
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        for (;;) {
          const { bytesRead } = await base.read(buf, 0, buf.length, null);
          if (!bytesRead) break;
          await fh.write(buf, 0, bytesRead);
        }
      } finally {
        await base.close();
      }
    } finally {
      await fh.close();
    }
    const fd = fs.openSync(o.out, 'a');
    try {
      const args = zstd ? ['-18', '-T1', '-c', '-q'] : ['-C', 'crc32', '-0', '-e', '-T1', '-z', '-c', '-q'];
      const tool = start(zstd ? 'zstd' : 'xz', args, { stdin: 'pipe', stdout: fd });
      await feed(tool, newcArchive(late, epoch));
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    await fsp.rm(o.out, { force: true });
    throw e;
  }
  return { layers: layers.map((x) => ({ image: x.image, name: x.metadata.name, version: x.metadata.version })), modulesDep, microcode };
}

/** What a squashfs's bytes depend on besides the tree: the options and the mksquashfs that writes it. */
async function squashInputs(o: SquashOptions): Promise<Record<string, unknown>> {
  const f = await mksquashfsFeatures();
  return { zstd: o.zstd, mtime: o.mtime, labels: [...(o.labels ?? new Map<string, string>())].sort(), exclude: o.exclude ?? [], mksquashfs: f.version, tar: f.tar, xattrsExclude: f.xattrsExclude };
}

let depmodVersionOnce: Promise<string> | undefined;
function depmodVersion(): Promise<string> {
  depmodVersionOnce ??= run('depmod', ['--version'], { allowFailure: true })
    .then((r) => r.stdout.toString('utf8').trim() || 'unknown')
    .catch(() => 'unknown');
  return depmodVersionOnce;
}

/**
 * The layer at `out`: from the cache when `inputs` names a cacheable layer already there, else built by `build` (and
 * then published). `M` is what the build reports about the layer, kept in the entry's sidecar so a hit reports the
 * same. Falsy `inputs` or no cache: always built, nothing published.
 */
async function cachedLayer<M>(cache: LayerCache | undefined, inputs: Record<string, unknown> | false | undefined | '', out: string, build: (out: string) => Promise<M>): Promise<M> {
  if (!cache || !inputs) return build(out);
  const key = layerKey(inputs);
  const hit = await takeCachedLayer<M>(cache, key, out);
  if (hit !== undefined) return hit;
  const meta = await build(out);
  await publishLayer(cache, key, out, meta);
  return meta;
}
