/**
 * Serving and publishing: Debian's docker-registry on a free loopback port with storage in <out>/registry, and
 * `skopeo copy --all --preserve-digests` of every tag of every OCI layout into it.
 */
import { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, start } from '@factory/process';
import { readReleases, withLock } from './build';
import { Descriptor, MT, readLayoutTags, Repository, writeLayout } from './oci';
import { mapLimit, mkdirp, rmrf, run, Timer } from './util';

export interface DemoRegistry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string;
  port: number;
  /** storage directory (<out>/registry) */
  storageDir: string;
  stop(): Promise<void>;
}

async function waitForRegistry(port: number, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited with code ${proc.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      if (res.status === 200 || res.status === 401) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not start on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Serve `<dir>/registry` with Debian's docker-registry (distribution 2.8) on a free loopback port.
 * `dir` is a build output directory (the registry storage lives in its `registry/` sub-directory).
 */
export async function startDemoRegistry(dir: string, opts: { port?: number } = {}): Promise<DemoRegistry> {
  const storageDir = mkdirp(path.join(path.resolve(dir), 'registry'));
  const confDir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-registry-'));
  const port = opts.port ?? (await freePort());
  const cfg = path.join(confDir, 'config.yml');
  fs.writeFileSync(
    cfg,
    [
      'version: 0.1',
      'log: { level: error, accesslog: { disabled: true } }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(storageDir)} }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      '',
    ].join('\n'),
  );
  const registry = start('docker-registry', ['serve', cfg]);
  try {
    await waitForRegistry(port, registry.child, 15000);
  } catch (e) {
    registry.abandon();
    rmrf(confDir);
    throw new Error(`${(e as Error).message}: ${registry.stderrTail().slice(-4096).trim()}`);
  }
  let stopped = false;
  return {
    host: `127.0.0.1:${port}`,
    port,
    storageDir,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await registry.stop(5000);
      rmrf(confDir);
    },
  };
}

/**
 * skopeo's oci: transport only accepts OCI media types in index.json, so tags whose top-level manifest is a Docker
 * manifest list are copied from a `dir:` view (manifest.json + <digest>.manifest.json instances + blobs, hard links
 * into the layout). Both ways preserve digests (--preserve-digests).
 */
function dirView(layoutDir: string, top: Descriptor, tmpRoot: string): string {
  const blobs = path.join(layoutDir, 'blobs', 'sha256');
  const hex = (d: string) => d.slice('sha256:'.length);
  const dir = mkdirp(fs.mkdtempSync(path.join(tmpRoot, 'dir-')));
  const link = (digest: string, name: string) => {
    const dst = path.join(dir, name);
    if (fs.existsSync(dst)) return;
    try {
      fs.linkSync(path.join(blobs, hex(digest)), dst);
    } catch {
      fs.copyFileSync(path.join(blobs, hex(digest)), dst);
    }
  };
  const addManifest = (desc: Descriptor, name: string) => {
    link(desc.digest, name);
    const m = JSON.parse(fs.readFileSync(path.join(blobs, hex(desc.digest)), 'utf8')) as { config: Descriptor; layers: Descriptor[] };
    link(m.config.digest, hex(m.config.digest));
    for (const l of m.layers) link(l.digest, hex(l.digest));
  };
  if (top.mediaType === MT.dockerList || top.mediaType === MT.ociIndex) {
    link(top.digest, 'manifest.json');
    const idx = JSON.parse(fs.readFileSync(path.join(blobs, hex(top.digest)), 'utf8')) as { manifests: Descriptor[] };
    for (const m of idx.manifests) addManifest(m, `${hex(m.digest)}.manifest.json`);
  } else {
    addManifest(top, 'manifest.json');
  }
  fs.writeFileSync(path.join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  return dir;
}

export interface CopyOptions {
  /** parallel skopeo processes (default 4) */
  concurrency?: number;
  log?: (line: string) => void;
  /** only these repositories (repository paths like siderolabs/imager) */
  repositories?: string[];
}

/**
 * Copy every tag of every layout under `<out>/oci` to `registryHost` (e.g. 127.0.0.1:5000), preserving digests.
 * Returns the number of tags copied.
 */
export async function copyLayoutsToRegistry(outDir: string, registryHost: string, opts: CopyOptions = {}): Promise<number> {
  const ociRoot = path.join(path.resolve(outDir), 'oci');
  const jobs: Array<{ repo: string; layout: string; tag: string; desc: Descriptor }> = [];
  const walk = (rel: string) => {
    const abs = path.join(ociRoot, rel);
    if (fs.existsSync(path.join(abs, 'index.json'))) {
      if (opts.repositories && !opts.repositories.includes(rel)) return;
      for (const [tag, desc] of readLayoutTags(abs)) jobs.push({ repo: rel, layout: abs, tag, desc });
      return;
    }
    for (const n of fs.readdirSync(abs).sort()) if (fs.statSync(path.join(abs, n)).isDirectory()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  // images before their signatures, so a reader never sees a .sig for a missing image
  jobs.sort((a, b) => Number(a.tag.endsWith('.sig')) - Number(b.tag.endsWith('.sig')));
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-publish-'));
  try {
    const copy = async (j: (typeof jobs)[number]) => {
      const isOci = j.desc.mediaType === MT.ociIndex || j.desc.mediaType === MT.ociManifest;
      const src = isOci ? `oci:${j.layout}:${j.tag}` : `dir:${dirView(j.layout, j.desc, tmpRoot)}`;
      await run('skopeo', ['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', src, `docker://${registryHost}/${j.repo}:${j.tag}`]);
    };
    // One repository's tags are copied one after another, repositories in parallel: docker-registry rewrites a
    // repository's link files in place (truncate, then write), so two skopeo processes pushing the same manifest or
    // blob into one repository let the registry read an empty link and refuse the index that names it. skopeo then
    // reports a failed conversion to a Docker list ("we cannot modify it"), about 1 publish in 12 here.
    const byRepository = (list: typeof jobs) => {
      const groups = new Map<string, typeof jobs>();
      for (const j of list) groups.set(j.repo, [...(groups.get(j.repo) ?? []), j]);
      return [...groups.values()].sort((a, b) => b.length - a.length); // longest first: the shortest tail
    };
    const copyInOrder = async (group: typeof jobs) => {
      for (const j of group) await copy(j);
    };
    const images = jobs.filter((j) => !j.tag.endsWith('.sig'));
    const sigs = jobs.filter((j) => j.tag.endsWith('.sig'));
    await mapLimit(byRepository(images), opts.concurrency ?? 4, copyInOrder);
    await mapLimit(byRepository(sigs), opts.concurrency ?? 4, copyInOrder);
  } finally {
    rmrf(tmpRoot);
  }
  return jobs.length;
}

/**
 * Publish a build directory into its own registry storage (<out>/registry): start docker-registry, copy everything
 * with skopeo, stop it. Skipped when <out>/registry/.published matches the build fingerprint.
 */
export async function publishDemoReleases(outDir: string, opts: { force?: boolean; log?: (line: string) => void } = {}): Promise<void> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const dir = path.resolve(outDir);
  await withLock(dir, async () => {
    const releases = readReleases(dir);
    if (!releases) throw new Error(`${dir}/releases.json not found: run build first`);
    const stamp = path.join(dir, 'registry', '.published');
    if (!opts.force && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === releases.fingerprint) {
      log(`[demo-releases] registry storage is up to date (fingerprint ${releases.fingerprint.slice(0, 12)})`);
      return;
    }
    const timer = new Timer(log);
    rmrf(path.join(dir, 'registry'));
    const reg = await startDemoRegistry(dir);
    try {
      const n = await copyLayoutsToRegistry(dir, reg.host, { log });
      timer.mark(`publish ${n} tags to ${reg.host}`);
    } finally {
      await reg.stop();
    }
    fs.writeFileSync(stamp, releases.fingerprint + '\n');
  }, log);
}

/** Push one in-memory repository (e.g. a purpose-built test extension) to a registry, digests preserved. */
export async function pushRepository(repo: Repository, registryHost: string): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-push-'));
  try {
    writeLayout(path.join(tmp, 'oci', repo.name), repo);
    await copyLayoutsToRegistry(tmp, registryHost);
  } finally {
    rmrf(tmp);
  }
}
