/**
 * Orchestration: build all demo releases into an output directory (one OCI layout per repository), sign every tag,
 * and write releases.json. A rebuild is skipped when releases.json carries the same input fingerprint.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultCacheDir, ensureAptArch, KernelKit, prepareKernelKit, resolvePackages, DebPackage } from './debian';
import {
  ArchAssets,
  buildExtensionImage,
  buildFilesImage,
  buildImagerImage,
  buildInstallerBaseImage,
  buildLegacyInstallerImage,
  buildOverlayImage,
  buildTalosctlImage,
  CatalogExtension,
  demoExtensionFiles,
  extensionsCatalogFiles,
  newRepository,
  overlaysCatalogFiles,
} from './images';
import { buildInitramfs } from './initramfs';
import { Arch, Descriptor, Repository, writeLayout } from './oci';
import { ensureSigningKey } from './sign';
import { byteCompare, mapLimit, mkdirp, rmrf, run, sha256hex, Timer, writeFile } from './util';
import {
  DEMO_EXTENSIONS,
  DEMO_TALOS_VERSIONS,
  EXTENSION_AUTHOR,
  EXTENSION_CONSTRAINT,
  EXTRA_IMAGER_TAGS,
  OVERLAY_IMAGE,
  OVERLAY_NAME,
  OVERLAY_TAG,
  quirks,
} from './versions';

/** Bump to force rebuilds when the output format changes in a way the code hash would not catch. */
const FORMAT_VERSION = 1;

/** Registry part used in catalogs (image-digests, overlays.yaml) and in signature identities, like the real ones. */
export const UPSTREAM_REGISTRY = 'ghcr.io';

export interface BuildOptions {
  outDir: string;
  cacheDir?: string;
  /** rebuild even when the fingerprint matches */
  force?: boolean;
  /** restrict architectures (default: amd64 + arm64, arm64 dropped with a warning if unavailable) */
  arches?: Arch[];
  log?: (line: string) => void;
}

export interface ReleaseImage {
  /** repository path, e.g. siderolabs/imager */
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
}

export interface ReleaseExtension {
  name: string;
  /** siderolabs/<name> */
  image: string;
  tag: string;
  version: string;
  digest: string;
  constraint: string;
}

export interface ReleaseVersion {
  version: string;
  zstd: boolean;
  usrMerge: boolean;
  images: Record<string, ReleaseImage>;
  extensions: ReleaseExtension[];
  overlays: Array<{ name: string; image: string; tag: string; digest: string }>;
}

export interface Releases {
  fingerprint: string;
  formatVersion: number;
  arches: Arch[];
  /** true when arm64 inputs could not be obtained */
  arm64Missing: boolean;
  kernel: Partial<Record<Arch, { version: string; package: string; packageVersion: string }>>;
  packages: Array<{ name: string; arch: string; version: string; sha256: string }>;
  versions: ReleaseVersion[];
  newest: string;
  extraImagerTags: Record<string, { pointsTo: string; digest: string }>;
  signatureIdentityRegistry: string;
  cosignPublicKey: string;
  /** every published tag (including .sig tags) */
  images: ReleaseImage[];
}

/** Hash of this package's own code (src/*.ts if present, else dist/*.js) so code changes trigger a rebuild. */
function codeHash(): string {
  const root = path.resolve(__dirname, '..');
  const pick = (dir: string, ext: string) =>
    fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts')).sort().map((f) => path.join(dir, f)) : [];
  let files = pick(path.join(root, 'src'), '.ts');
  if (!files.length) files = pick(path.join(root, 'dist'), '.js');
  if (!files.length) files = pick(__dirname, __filename.endsWith('.ts') ? '.ts' : '.js');
  return sha256hex(files.map((f) => `${path.basename(f)}\0${fs.readFileSync(f, 'utf8')}`).join('\0'));
}

async function toolVersions(): Promise<string> {
  const v = async (cmd: string, args: string[]) =>
    (await run(cmd, args, { allowFailure: true }).catch(() => null))?.stdout.toString().split('\n')[0] ?? `${cmd}?`;
  const [zstd, xz, sq] = await Promise.all([v('zstd', ['--version']), v('xz', ['--version']), v('mksquashfs', ['-version'])]);
  return [zstd, xz, sq, `zlib ${process.versions.zlib}`].join('|');
}

export function computeFingerprint(packages: DebPackage[], tools: string, arches: Arch[]): string {
  return sha256hex(
    JSON.stringify({
      FORMAT_VERSION,
      code: codeHash(),
      tools,
      arches,
      packages: packages.map((p) => [p.name, p.arch, p.version, p.sha256]),
    }),
  );
}

/** Read releases.json of a build directory (null if missing). */
export function readReleases(outDir: string): Releases | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(outDir, 'releases.json'), 'utf8')) as Releases;
  } catch {
    return null;
  }
}

/** Exclusive lock on the output directory (concurrent builders wait). */
export async function withLock<T>(outDir: string, fn: () => Promise<T>, log: (l: string) => void): Promise<T> {
  mkdirp(outDir);
  const lock = path.join(outDir, '.lock');
  let waited = false;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      const pid = Number(fs.readFileSync(lock, 'utf8') || '0');
      let alive = false;
      try {
        if (pid > 0) { process.kill(pid, 0); alive = true; }
      } catch {
        alive = false;
      }
      if (!alive || pid === process.pid) { fs.rmSync(lock, { force: true }); continue; }
      if (!waited) log(`[demo-releases] waiting for the build lock held by pid ${pid}`);
      waited = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

function layoutsComplete(outDir: string, r: Releases): boolean {
  const repos = new Set(r.images.map((i) => i.repository));
  return [...repos].every((repo) => fs.existsSync(path.join(outDir, 'oci', repo, 'index.json')));
}

/** Build the demo releases (or reuse an up-to-date build). */
export async function buildDemoReleases(opts: BuildOptions): Promise<Releases> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const outDir = path.resolve(opts.outDir);
  const cacheDir = path.resolve(opts.cacheDir ?? defaultCacheDir());
  return withLock(outDir, async () => {
    const timer = new Timer(log);
    let arches: Arch[] = opts.arches ?? ['amd64', 'arm64'];
    let arm64Missing = false;
    if (arches.includes('arm64') && !(await ensureAptArch('arm64', cacheDir, log).catch(() => false))) {
      // maybe the debs are cached anyway: resolvePackages falls back to them
      try {
        await resolvePackages(['arm64'], cacheDir, log);
      } catch {
        arm64Missing = true;
        arches = arches.filter((a) => a !== 'arm64');
        log('[demo-releases] ************************************************************************');
        log('[demo-releases] WARNING: arm64 Debian packages are NOT available; building amd64 ONLY.');
        log('[demo-releases] (dpkg --add-architecture arm64 && apt-get update would fix this)');
        log('[demo-releases] ************************************************************************');
      }
    }
    const pkgMap = await resolvePackages(arches, cacheDir, log);
    const packages = arches.flatMap((a) => pkgMap.get(a)!);
    const fingerprint = computeFingerprint(packages, await toolVersions(), arches);
    timer.mark('resolve inputs');
    const existing = readReleases(outDir);
    if (!opts.force && existing && existing.fingerprint === fingerprint && layoutsComplete(outDir, existing)) {
      log(`[demo-releases] ${outDir} is up to date (fingerprint ${fingerprint.slice(0, 12)})`);
      return existing;
    }

    const kitList = await Promise.all(arches.map((a) => prepareKernelKit(a, pkgMap.get(a)!, cacheDir)));
    const kits = new Map<Arch, KernelKit>(arches.map((a, i) => [a, kitList[i]]));
    timer.mark('kernel kits');

    const key = ensureSigningKey(outDir);
    const workDir = mkdirp(path.join(os.tmpdir(), `demo-releases-work-${process.pid}`));
    try {
      // initramfs per (version, arch)
      const jobs = DEMO_TALOS_VERSIONS.flatMap((v) => arches.map((a) => ({ v, a })));
      const initramfs = new Map<string, Buffer>();
      await mapLimit(jobs, Math.max(1, Math.min(os.cpus().length, 4)), async ({ v, a }) => {
        const r = await buildInitramfs(kits.get(a)!, v, path.join(workDir, `${v}-${a}`));
        initramfs.set(`${v}/${a}`, r.data);
      });
      timer.mark(`initramfs x${jobs.length}`);

      const repos = new Map<string, Repository>();
      const repo = (name: string) => {
        let r = repos.get(name);
        if (!r) { r = newRepository(name); repos.set(name, r); }
        return r;
      };
      const versions: ReleaseVersion[] = [];

      // overlay image (shared by all versions)
      const overlayDesc = await buildOverlayImage(repo(OVERLAY_IMAGE), arches);
      repo(OVERLAY_IMAGE).tag(OVERLAY_TAG, overlayDesc);

      const imagerByVersion = new Map<string, Descriptor>();
      for (const v of DEMO_TALOS_VERSIONS) {
        const q = quirks(v);
        const assets: ArchAssets[] = arches.map((a) => ({ kit: kits.get(a)!, initramfs: initramfs.get(`${v}/${a}`)! }));
        const images: Record<string, ReleaseImage> = {};
        const rec = (name: string, tag: string, d: Descriptor) => {
          repo(name).tag(tag, d);
          images[name] = { repository: `siderolabs/${name}`, tag, digest: d.digest, mediaType: d.mediaType };
        };
        const imager = await buildImagerImage(repo('imager'), v, assets);
        imagerByVersion.set(v, imager);
        rec('imager', v, imager);
        if (q.installerBase) rec('installer-base', v, await buildInstallerBaseImage(repo('installer-base'), v, assets));
        else rec('installer', v, await buildLegacyInstallerImage(repo('installer'), v, assets));
        if (q.talosctl) rec('talosctl-all', v, await buildTalosctlImage(repo('talosctl-all'), v, arches));

        const exts: ReleaseExtension[] = [];
        const catalog: CatalogExtension[] = [];
        for (const spec of DEMO_EXTENSIONS) {
          const extVersion = spec.versions[v];
          if (!extVersion) continue;
          const d = await buildExtensionImage(repo(spec.name), {
            name: spec.name,
            version: extVersion,
            constraint: EXTENSION_CONSTRAINT,
            author: EXTENSION_AUTHOR,
            description: spec.description,
            files: demoExtensionFiles(spec.kind, spec.name, extVersion, v, kits),
            arches,
          });
          repo(spec.name).tag(extVersion, d);
          exts.push({ name: spec.name, image: `siderolabs/${spec.name}`, tag: extVersion, version: extVersion, digest: d.digest, constraint: EXTENSION_CONSTRAINT });
          catalog.push({ name: spec.name, tag: extVersion, digest: d.digest, author: EXTENSION_AUTHOR, description: spec.description });
        }
        catalog.sort((a, b) => byteCompare(a.name, b.name));
        const quoteIdx = catalog.findIndex((c) => c.name === 'intel-ucode');
        const skipIdx = catalog.findIndex((c) => c.name === 'dummy-module');
        rec('extensions', v, await buildFilesImage(repo('extensions'), extensionsCatalogFiles(catalog, quoteIdx, skipIdx), arches, `demo extensions catalog ${v}`));
        const overlays = [{ name: OVERLAY_NAME, image: `${UPSTREAM_REGISTRY}/siderolabs/${OVERLAY_IMAGE}:${OVERLAY_TAG}`, digest: overlayDesc.digest }];
        rec('overlays', v, await buildFilesImage(repo('overlays'), overlaysCatalogFiles(overlays), arches, `demo overlays catalog ${v}`));
        versions.push({
          version: v,
          zstd: q.zstd,
          usrMerge: q.usrMerge,
          images,
          extensions: exts,
          overlays: [{ name: OVERLAY_NAME, image: `siderolabs/${OVERLAY_IMAGE}`, tag: OVERLAY_TAG, digest: overlayDesc.digest }],
        });
      }
      const extraImagerTags: Releases['extraImagerTags'] = {};
      for (const [tag, target] of Object.entries(EXTRA_IMAGER_TAGS)) {
        const d = imagerByVersion.get(target)!;
        repo('imager').tag(tag, d);
        extraImagerTags[tag] = { pointsTo: target, digest: d.digest };
      }
      timer.mark('images');

      for (const r of repos.values()) r.sign(key, `${UPSTREAM_REGISTRY}/${r.name}`);
      rmrf(path.join(outDir, 'oci'));
      const allImages: ReleaseImage[] = [];
      for (const r of [...repos.values()].sort((a, b) => byteCompare(a.name, b.name))) {
        writeLayout(path.join(outDir, 'oci', r.name), r);
        for (const [tag, d] of [...r.tags].sort((a, b) => byteCompare(a[0], b[0]))) {
          allImages.push({ repository: r.name, tag, digest: d.digest, mediaType: d.mediaType });
        }
      }
      timer.mark('sign + write layouts');

      const releases: Releases = {
        fingerprint,
        formatVersion: FORMAT_VERSION,
        arches,
        arm64Missing,
        kernel: Object.fromEntries(
          [...kits].map(([a, k]) => [a, { version: k.kver, package: k.packages[0].name, packageVersion: k.packages[0].version }]),
        ),
        packages: packages.map((p) => ({ name: p.name, arch: p.arch, version: p.version, sha256: p.sha256 })),
        versions,
        newest: DEMO_TALOS_VERSIONS[DEMO_TALOS_VERSIONS.length - 1],
        extraImagerTags,
        signatureIdentityRegistry: UPSTREAM_REGISTRY,
        cosignPublicKey: key.publicPem,
        images: allImages,
      };
      writeFile(path.join(outDir, 'releases.json.tmp'), JSON.stringify(releases, null, 2) + '\n');
      fs.renameSync(path.join(outDir, 'releases.json.tmp'), path.join(outDir, 'releases.json'));
      log(`[demo-releases] built ${allImages.length} tags in ${repos.size} repositories in ${(timer.total() / 1000).toFixed(1)} s`);
      return releases;
    } finally {
      rmrf(workDir);
    }
  }, log);
}
