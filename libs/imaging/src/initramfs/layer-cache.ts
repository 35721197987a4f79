/**
 * A disk cache of the initramfs layers that depend only on immutable inputs: the squashfs of an official extension
 * (pinned by digest) and the `modules.dep` layer of a base initramfs plus a set of such extensions. Most schematics
 * share a few popular extensions, so most builds skip those mksquashfs runs — and, for `modules.dep`, decompressing
 * the whole base initramfs, unsquashing its modules and running depmod (about a second on a real Talos initramfs).
 *
 * An entry is named by the SHA-256 of everything its bytes depend on (the inputs' content identities, compression,
 * timestamps, labels, exclusions, the tool versions, the cache format), written to a temporary name and renamed into
 * place with its sidecar last, so concurrent builds — in other processes too — never read half an entry; the same
 * key always names the same bytes, so whoever publishes first wins and the others' copies are dropped. A cached
 * layer is linked into the build's staging directory (copied across devices), so removing the cache under a running
 * build cannot change that build.
 */
import { createHash, randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** Bump when what a cached layer holds for the same key changes (a fix in how layers are built). */
const LAYER_CACHE_FORMAT = 1;

export interface LayerCache {
  /** directory of the entries (`<key>.sqsh` + `<key>.json`) */
  dir: string;
}

/** The key of a layer: SHA-256 over a canonical JSON of its inputs (object keys sorted, so key order never matters). */
export function layerKey(inputs: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson({ format: LAYER_CACHE_FORMAT, ...inputs })).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Puts the cached layer `key` at `out` (a hard link, or a copy) and returns its sidecar, or undefined on a miss.
 * A sidecar that does not parse, or a layer file missing, counts as a miss (the entry is rebuilt and replaced).
 */
export async function takeCachedLayer<M>(cache: LayerCache, key: string, out: string): Promise<M | undefined> {
  const base = path.join(cache.dir, key);
  let meta: M;
  try {
    meta = JSON.parse(await fsp.readFile(`${base}.json`, 'utf8')) as M;
  } catch {
    return undefined;
  }
  await fsp.rm(out, { force: true });
  try {
    await fsp.link(`${base}.sqsh`, out);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
    try {
      await fsp.copyFile(`${base}.sqsh`, out);
    } catch (copyErr) {
      if ((copyErr as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw copyErr;
    }
  }
  return meta;
}

/**
 * Publishes a layer just built at `built` under `key` (copied: the build keeps its own file), sidecar last. Failing to
 * publish never fails the build: the cache is an optimisation (a full disk, a read-only cache directory).
 */
export async function publishLayer(cache: LayerCache, key: string, built: string, meta: unknown, onError?: (err: unknown) => void): Promise<void> {
  const base = path.join(cache.dir, key);
  const tmp = `${base}.tmp-${randomUUID()}`;
  try {
    await fsp.mkdir(cache.dir, { recursive: true });
    await fsp.copyFile(built, `${tmp}.sqsh`);
    await fsp.rename(`${tmp}.sqsh`, `${base}.sqsh`);
    await fsp.writeFile(`${tmp}.json`, JSON.stringify(meta));
    await fsp.rename(`${tmp}.json`, `${base}.json`);
  } catch (err) {
    await Promise.allSettled([fsp.rm(`${tmp}.sqsh`, { force: true }), fsp.rm(`${tmp}.json`, { force: true })]);
    onError?.(err);
  }
}
