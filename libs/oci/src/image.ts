/**
 * Reading files out of an image: layers are flattened in order (OCI whiteouts applied), regular files kept in memory.
 */
import { Readable, Transform, TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { ByteReader, readTar } from '@factory/archive';
import { FetchedManifest, RegistryClient } from './client';
import { OciError } from './errors';
import { isImageManifestMediaType, isIndexMediaType } from './media';

export interface ReadImageLimits {
  /** largest single wanted file (default 1 GiB) */
  maxFileBytes?: number;
  /** total bytes of wanted file content read, over all layers (default 4 GiB) */
  maxTotalBytes?: number;
}

const DEFAULT_MAX_FILE = 1024 * 1024 * 1024;
const DEFAULT_MAX_TOTAL = 4 * 1024 * 1024 * 1024;

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Normalizes a tar entry name: strips leading "./" and "/", collapses "//" and "." components, drops a trailing "/".
 * Returns "" for the root. Throws OciError INVALID for ".." components.
 */
export function normalizeTarPath(name: string): string {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new OciError('INVALID', `tar entry escapes the image root: ${JSON.stringify(name)}`);
    parts.push(p);
  }
  return parts.join('/');
}

/** Zstandard decompression as a Node transform (pure JS, via fzstd). */
class ZstdDecompressStream extends Transform {
  private readonly z: ZstdDecompress;

  constructor() {
    super();
    this.z = new ZstdDecompress((chunk) => { if (chunk.length) this.push(Buffer.from(chunk)); });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try { this.z.push(chunk, false); cb(); } catch (err) { cb(zstdError(err)); }
  }

  override _flush(cb: TransformCallback): void {
    try { this.z.push(new Uint8Array(0), true); cb(); } catch (err) { cb(zstdError(err)); }
  }
}

function zstdError(err: unknown): OciError {
  return new OciError('INVALID', `zstd: ${(err as Error).message ?? String(err)}`, { cause: err });
}

/** Chooses the decompressor for a layer: by media type, else by sniffing the first bytes. */
type Compression = 'gzip' | 'zstd' | 'none' | 'sniff';

function compressionFor(mediaType: string): Compression | undefined {
  const mt = mediaType.toLowerCase();
  if (mt.includes('+encrypted')) return undefined;
  if (mt.endsWith('+gzip') || mt.endsWith('.gzip')) return 'gzip';
  if (mt.endsWith('+zstd') || mt.endsWith('.zstd')) return 'zstd';
  if (mt.includes('.tar') || mt.endsWith('+tar')) return 'sniff';
  return undefined;
}

/** Peeks at the first bytes of a stream and pipes it through the right decompressor. */
function decompressor(source: Readable, mode: Compression): Readable {
  if (mode === 'gzip') return source.pipe(createGunzip());
  if (mode === 'zstd') return source.pipe(new ZstdDecompressStream());
  if (mode === 'none') return source;
  // sniff: gzip 1f 8b, zstd 28 b5 2f fd, else raw tar
  const out = new Transform({
    transform(this: Transform & { target?: Transform | null; head?: Buffer }, chunk: Buffer, _enc, cb) {
      if (this.target === undefined) {
        this.head = this.head ? Buffer.concat([this.head, chunk]) : chunk;
        if (this.head.length < 4) { cb(); return; }
        this.target = pickDecoder(this.head);
        const head = this.head;
        this.head = undefined;
        feed(this, head, cb);
        return;
      }
      feed(this, chunk, cb);
    },
    flush(this: Transform & { target?: Transform | null; head?: Buffer }, cb) {
      if (this.target === undefined) {
        // fewer than 4 bytes in total: pass through as is
        if (this.head) this.push(this.head);
        cb();
        return;
      }
      if (this.target === null) { cb(); return; }
      const t = this.target;
      t.once('end', () => cb());
      t.once('error', (e) => cb(e));
      t.end();
    },
  }) as Transform & { target?: Transform | null; head?: Buffer };
  function feed(self: Transform & { target?: Transform | null }, chunk: Buffer, cb: TransformCallback): void {
    const t = self.target;
    if (!t) { cb(null, chunk); return; }
    if (t.write(chunk)) cb();
    else t.once('drain', () => cb());
  }
  function pickDecoder(head: Buffer): Transform | null {
    let t: Transform | null = null;
    if (head[0] === 0x1f && head[1] === 0x8b) t = createGunzip();
    else if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) t = new ZstdDecompressStream();
    if (t) {
      t.on('data', (d: Buffer) => out.push(d));
      t.on('error', (e) => out.destroy(e));
    }
    return t;
  }
  return source.pipe(out);
}

type LayerEntry =
  | { kind: 'file'; size: number; data?: Buffer }     // data only for wanted files
  | { kind: 'dir' }
  | { kind: 'link'; target: string }    // hard link (target normalized)
  | { kind: 'other' };                  // symlink, device, fifo, …

interface LayerChanges {
  entries: Map<string, LayerEntry>;
  whiteouts: string[];
  opaque: string[];
}

/**
 * The flattened view: what is kept of each regular file (its content, or only its size when listing), plus a count
 * of files under each directory for cheap subtree removal.
 */
class FileTree<T> {
  readonly files = new Map<string, T>();
  private readonly under = new Map<string, number>();

  get(p: string): T | undefined { return this.files.get(p); }

  set(p: string, data: T): void {
    if (!this.files.has(p)) this.bump(p, 1);
    this.files.set(p, data);
  }

  delete(p: string): void {
    if (this.files.delete(p)) this.bump(p, -1);
  }

  /** Removes everything below directory p (and p itself when includeSelf). p = "" is the root. */
  removeTree(p: string, includeSelf: boolean): void {
    if (includeSelf && p !== '') this.delete(p);
    if (p !== '' && !this.under.get(p)) return;
    const prefix = p === '' ? '' : p + '/';
    for (const k of [...this.files.keys()]) if (k.startsWith(prefix)) this.delete(k);
  }

  private bump(p: string, by: number): void {
    for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
      const d = p.slice(0, i);
      const n = (this.under.get(d) ?? 0) + by;
      if (n > 0) this.under.set(d, n); else this.under.delete(d);
    }
  }
}

/** Reads one layer's tar into a change set (whiteouts and entries kept apart: whiteouts only affect lower layers). */
async function readLayer(
  stream: Readable, wanted: (path: string) => boolean, budget: { file: number; left: number }, what: string,
): Promise<LayerChanges> {
  const changes: LayerChanges = { entries: new Map(), whiteouts: [], opaque: [] };
  const r = ByteReader.from(stream);
  try {
    for await (const e of readTar(r)) {
      const path = normalizeTarPath(e.path);
      const base = path.slice(path.lastIndexOf('/') + 1);
      const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
      if (base === OPAQUE_MARKER) { changes.opaque.push(dir); continue; }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        const name = base.slice(WHITEOUT_PREFIX.length);
        if (name) changes.whiteouts.push(dir ? `${dir}/${name}` : name);
        continue;
      }
      if (path === '') continue;
      if (e.type === '5') { changes.entries.set(path, { kind: 'dir' }); continue; }
      if (e.type === '1') { changes.entries.set(path, { kind: 'link', target: normalizeTarPath(e.linkname) }); continue; }
      // symlinks, devices and FIFOs replace lower content; any other type counts as a regular file
      if ('2346'.includes(e.type)) { changes.entries.set(path, { kind: 'other' }); continue; }
      if (!wanted(path)) { changes.entries.set(path, { kind: 'file', size: e.size }); continue; }
      if (e.size > budget.file) throw new OciError('TOO_LARGE', `${what}: file ${path} is ${e.size} bytes, limit ${budget.file}`);
      if (e.size > budget.left) throw new OciError('TOO_LARGE', `${what}: wanted files exceed the total limit`);
      budget.left -= e.size;
      const chunks: Buffer[] = [];
      for await (const c of e.body()) chunks.push(c);
      changes.entries.set(path, { kind: 'file', size: e.size, data: Buffer.concat(chunks) });
    }
    // read to the end of the blob (past the end-of-archive blocks), so that its digest is verified
    for await (const _ of r.rest());
  } catch (err) {
    stream.destroy();
    throw err instanceof OciError ? err : new OciError('INVALID', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  return changes;
}

/** Applies one layer's changes to the flattened tree; `keep` says what is kept of a regular file (nothing: undefined). */
function applyLayer<T>(tree: FileTree<T>, changes: LayerChanges, keep: (e: { size: number; data?: Buffer }) => T | undefined): void {
  // whiteouts and opaque markers hide content of lower layers only
  for (const d of changes.opaque) tree.removeTree(d, false);
  for (const w of changes.whiteouts) tree.removeTree(w, true);
  for (const [path, e] of changes.entries) {
    switch (e.kind) {
      case 'dir':
        tree.delete(path); // a directory replaces a lower file; lower children stay
        break;
      case 'file': {
        tree.removeTree(path, true);
        const kept = keep(e);
        if (kept !== undefined) tree.set(path, kept);
        break;
      }
      case 'link': {
        tree.removeTree(path, true);
        // hard link: the content is the target's, from this layer or the flattened lower layers
        const own = changes.entries.get(e.target);
        const kept = own?.kind === 'file' ? keep(own) : own === undefined ? tree.get(e.target) : undefined;
        if (kept !== undefined) tree.set(path, kept);
        break;
      }
      default:
        tree.removeTree(path, true);
    }
  }
}

/**
 * Flattens the layers of an image manifest in order and returns the regular files (hard links resolved when their target
 * was kept) whose normalized path satisfies `wanted`. Handles uncompressed, gzip and zstd tar layers and OCI whiteouts.
 */
export async function readImageFiles(
  client: RegistryClient, repo: string, manifest: FetchedManifest, wanted: (path: string) => boolean, limits: ReadImageLimits = {},
): Promise<Map<string, Buffer>> {
  const budget = { file: limits.maxFileBytes ?? DEFAULT_MAX_FILE, left: limits.maxTotalBytes ?? DEFAULT_MAX_TOTAL };
  return flattenImage(client, repo, manifest, wanted, budget, (e) => e.data);
}

/**
 * The regular files of an image (flattened as readImageFiles does) with their sizes, read from the layers' tar
 * headers only: no file content is kept, whatever its size. Paths are normalized (no leading `./`).
 */
export async function listImageFiles(client: RegistryClient, repo: string, manifest: FetchedManifest): Promise<Map<string, number>> {
  return flattenImage(client, repo, manifest, () => false, { file: 0, left: 0 }, (e) => e.size);
}

async function flattenImage<T>(
  client: RegistryClient, repo: string, manifest: FetchedManifest, wanted: (path: string) => boolean, budget: { file: number; left: number },
  keep: (e: { size: number; data?: Buffer }) => T | undefined,
): Promise<Map<string, T>> {
  if (isIndexMediaType(manifest.mediaType)) {
    throw new OciError('INVALID', `${repo}@${manifest.digest} is an index; resolve a platform first (resolveImage)`);
  }
  if (!isImageManifestMediaType(manifest.mediaType) && !Array.isArray(manifest.json?.layers)) {
    throw new OciError('INVALID', `${repo}@${manifest.digest}: ${manifest.mediaType} is not an image manifest`);
  }
  const layers: any[] = Array.isArray(manifest.json.layers) ? manifest.json.layers : [];
  // a hard link is only resolved when its target is wanted too: which targets links will need is not known up front
  const tree = new FileTree<T>();
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    const what = `${repo} layer ${i} (${l?.digest})`;
    if (!l || typeof l.digest !== 'string' || typeof l.mediaType !== 'string') throw new OciError('INVALID', `${what}: bad descriptor`);
    const mode = compressionFor(l.mediaType);
    if (!mode) throw new OciError('INVALID', `${what}: unsupported layer media type ${l.mediaType}`);
    const maxBytes = typeof l.size === 'number' && l.size >= 0 ? l.size : undefined;
    const blob = await client.getBlobStream(repo, l.digest, maxBytes !== undefined ? { maxBytes } : {});
    const tarStream = decompressor(blob, mode);
    if (tarStream !== blob) blob.on('error', (e) => tarStream.destroy(e));
    let changes: LayerChanges;
    try {
      changes = await readLayer(tarStream, wanted, budget, what);
    } catch (err) {
      // release the HTTP response too (destroying the verifier destroys the response body)
      blob.on('error', () => { /* already reported */ });
      blob.destroy();
      throw err;
    }
    applyLayer(tree, changes, keep);
  }
  return tree.files;
}
