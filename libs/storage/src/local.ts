/**
 * Local-directory object store for the embedded single-machine mode.
 *
 * Layout under rootDir:
 *   <enc(seg1)>/<enc(seg2)>/.../<enc(last)>~obj   one file per object
 *   .tmp/<uuid>.part                               in-flight writes (same filesystem, ignored by list)
 *
 * Each object file holds the data bytes followed by a metadata trailer:
 *   [data][metadata JSON][u32be JSON length][8-byte magic]
 * so data and metadata are published together by a single rename(2) of a fully written and fsynced temp file.
 * A reader opens the file once and reads both trailer and data through that descriptor, so it always sees one
 * whole version, even if a concurrent put renames a new version over it or a delete unlinks it meanwhile.
 * (A sidecar JSON renamed before the data file cannot give that: two concurrent writers can interleave their
 * renames and leave writer A's data next to writer B's metadata.)
 *
 * Segment encoding: bytes outside [A-Za-z0-9._-] (and a leading '.') become %XX, so a name never starts with '.'
 * (the temp folder can't collide) and never contains '/' (a key can't escape rootDir). Object files end with
 * "~obj", which no directory name can, so "a" and "a/b" coexist as in S3. Segments whose encoding exceeds
 * 200 bytes are shortened to a 100-character stem plus "~h" and the segment's SHA-256; the key itself is stored in
 * the trailer, so listing never needs to decode file names.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants, Dirent, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  asReadable,
  byteOrder,
  checkMaxBytes,
  checkRangeShape,
  checkPresignDisposition,
  digestMismatch,
  normalizePutOptions,
  prefixCanMatch,
  RESERVED_SEGMENT,
  resolveRange,
  toBuffer,
  tooLarge,
  validateKey,
} from './common';
import { ByteRange, GetResult, ObjectInfo, ObjectStore, PresignOptions, PutOptions, PutResult, StorageError } from './types';

const OBJECT_SUFFIX = '~obj';
const MAGIC = Buffer.from('\nFSOBJ1\n', 'latin1');
const TRAILER_FIXED = 4 + MAGIC.length;
const MAX_TRAILER_JSON = 64 * 1024;
const MAX_ENCODED_SEGMENT = 200;
const SHORT_STEM = 100;
const STALE_TEMP_MS = 24 * 3600 * 1000;

interface TrailerRecord {
  v: 1;
  key: string;
  size: number;
  sha256: string;
  contentType: string;
  contentDisposition?: string;
  metadata: Record<string, string>;
}

function encodeRaw(seg: string): string {
  const bytes = Buffer.from(seg, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    const plain =
      (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f ||
      (b === 0x2e && i > 0);
    out += plain ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function encodeSegment(seg: string): string {
  const raw = encodeRaw(seg);
  if (raw.length <= MAX_ENCODED_SEGMENT) return raw;
  return `${raw.slice(0, SHORT_STEM)}~h${createHash('sha256').update(seg, 'utf8').digest('hex')}`;
}

/** Conservative test: could an entry named `name` hold a segment that starts with `encPartial`? */
function entryMayMatch(name: string, encPartial: string): boolean {
  const n = name.endsWith(OBJECT_SUFFIX) ? name.slice(0, -OBJECT_SUFFIX.length) : name;
  const h = n.indexOf('~h');
  if (h < 0) return n.startsWith(encPartial);
  const stem = n.slice(0, h);
  return encPartial.length <= stem.length ? stem.startsWith(encPartial) : encPartial.startsWith(stem);
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function fsFailure(err: unknown, key: string | undefined, what: string): Error {
  if (err instanceof StorageError || err instanceof TypeError) return err;
  if (errCode(err) === 'ENAMETOOLONG') {
    return new StorageError('INVALID_KEY', `key too long for the local filesystem: ${key}`, { key, cause: err });
  }
  return new StorageError('UNAVAILABLE', `local store: ${what} failed: ${(err as Error)?.message ?? err}`, { key, cause: err });
}


/** Read size of object streams. */
const READ_CHUNK = 1024 * 1024;

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new Error('unexpected end of file');
    off += bytesRead;
  }
}

async function writeFully(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

interface OpenedObject {
  rec: TrailerRecord;
  size: number;
  mtime: Date;
}

/** Reads and checks the trailer through an open descriptor; null if the file is not a complete object file. */
async function readTrailer(fh: FileHandle): Promise<OpenedObject | null> {
  const st = await fh.stat();
  if (!st.isFile() || st.size < TRAILER_FIXED) return null;
  const tail = Buffer.alloc(TRAILER_FIXED);
  await readFully(fh, tail, st.size - TRAILER_FIXED);
  if (!tail.subarray(4).equals(MAGIC)) return null;
  const len = tail.readUInt32BE(0);
  if (len > MAX_TRAILER_JSON || len > st.size - TRAILER_FIXED) return null;
  const json = Buffer.alloc(len);
  const size = st.size - TRAILER_FIXED - len;
  await readFully(fh, json, size);
  let rec: TrailerRecord;
  try {
    rec = JSON.parse(json.toString('utf8')) as TrailerRecord;
  } catch {
    return null;
  }
  if (!rec || rec.v !== 1 || rec.size !== size || typeof rec.key !== 'string') return null;
  return { rec, size, mtime: st.mtime };
}

function encodeTrailer(rec: TrailerRecord): Buffer {
  const json = Buffer.from(JSON.stringify(rec), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length, 0);
  return Buffer.concat([json, len, MAGIC]);
}

function toInfo(o: OpenedObject): ObjectInfo {
  const info: ObjectInfo = {
    key: o.rec.key,
    size: o.size,
    etag: o.rec.sha256,
    lastModified: o.mtime,
    contentType: o.rec.contentType,
    sha256: o.rec.sha256,
    metadata: { ...o.rec.metadata },
  };
  if (o.rec.contentDisposition !== undefined) info.contentDisposition = o.rec.contentDisposition;
  return info;
}

export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local' as const;
  readonly rootDir: string;
  private readonly tmpDir: string;
  private readyPromise?: Promise<void>;

  constructor(rootDir: string) {
    if (typeof rootDir !== 'string' || rootDir === '') throw new TypeError('local store needs a root directory');
    this.rootDir = path.resolve(rootDir);
    this.tmpDir = path.join(this.rootDir, RESERVED_SEGMENT);
  }

  /** The object file for a key (exposed for tests and diagnostics). */
  pathFor(key: string): string {
    validateKey(key);
    const segs = key.split('/').map(encodeSegment);
    segs[segs.length - 1] += OBJECT_SUFFIX;
    const p = path.join(this.rootDir, ...segs);
    // Cannot happen given validateKey + encoding, but never hand out a path outside rootDir.
    if (!p.startsWith(this.rootDir + path.sep)) throw new StorageError('INVALID_KEY', `key escapes root: ${key}`, { key });
    return p;
  }

  private ready(): Promise<void> {
    if (!this.readyPromise) {
      this.readyPromise = (async () => {
        await fsp.mkdir(this.tmpDir, { recursive: true });
        void this.sweepStaleTemps();
      })();
      this.readyPromise.catch(() => {
        this.readyPromise = undefined;
      });
    }
    return this.readyPromise;
  }

  /** Best effort: temp files left behind by crashed writers (older than a day) are removed. */
  private async sweepStaleTemps(): Promise<void> {
    try {
      const now = Date.now();
      for (const name of await fsp.readdir(this.tmpDir)) {
        const p = path.join(this.tmpDir, name);
        const st = await fsp.stat(p).catch(() => null);
        if (st && st.isFile() && now - st.mtimeMs > STALE_TEMP_MS) await fsp.rm(p, { force: true }).catch(() => {});
      }
    } catch {
      /* ignore */
    }
  }

  async ping(): Promise<void> {
    try {
      await this.ready();
      const probe = path.join(this.tmpDir, `ping-${randomUUID()}.part`);
      const fh = await fsp.open(probe, 'wx');
      try {
        await fh.write(Buffer.from('ok'));
        await fh.sync();
      } finally {
        await fh.close();
        await fsp.rm(probe, { force: true });
      }
    } catch (err) {
      throw new StorageError('UNAVAILABLE', `local store ${this.rootDir} is not writable: ${(err as Error).message}`, { cause: err });
    }
  }

  private async openObject(key: string): Promise<FileHandle | null> {
    const p = this.pathFor(key);
    try {
      return await fsp.open(p, fsConstants.O_RDONLY);
    } catch (err) {
      const c = errCode(err);
      if (c === 'ENOENT' || c === 'ENOTDIR' || c === 'EISDIR') return null;
      throw fsFailure(err, key, 'open');
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    validateKey(key);
    const fh = await this.openObject(key);
    if (!fh) return null;
    try {
      const o = await readTrailer(fh);
      return o ? toInfo(o) : null;
    } catch (err) {
      throw fsFailure(err, key, 'head');
    } finally {
      await fh.close();
    }
  }

  async get(key: string, range?: ByteRange): Promise<GetResult | null> {
    validateKey(key);
    if (range) checkRangeShape(key, range);
    const fh = await this.openObject(key);
    if (!fh) return null;
    let handedOff = false;
    try {
      const o = await readTrailer(fh);
      if (!o) return null;
      const info = toInfo(o);
      const served = range ? resolveRange(key, range, o.size) : undefined;
      let body: Readable;
      if (o.size === 0) {
        body = Readable.from([]);
      } else {
        // The descriptor pins this version; the stream closes it when it ends or is destroyed. Reads of up to
        // READ_CHUNK: a tenth of the syscalls and stream hand-offs of the 64 KiB default for big objects.
        body = fh.createReadStream({ start: served?.start ?? 0, end: served?.end ?? o.size - 1, highWaterMark: READ_CHUNK });
        handedOff = true;
      }
      return served ? { info, body, range: served } : { info, body };
    } catch (err) {
      throw fsFailure(err, key, 'get');
    } finally {
      if (!handedOff) await fh.close();
    }
  }

  async getBuffer(key: string, maxBytes: number): Promise<Buffer | null> {
    validateKey(key);
    checkMaxBytes(maxBytes);
    const fh = await this.openObject(key);
    if (!fh) return null;
    try {
      const o = await readTrailer(fh);
      if (!o) return null;
      if (o.size > maxBytes) throw tooLarge(key, maxBytes);
      const buf = Buffer.alloc(o.size);
      await readFully(fh, buf, 0);
      return buf;
    } catch (err) {
      throw fsFailure(err, key, 'read');
    } finally {
      await fh.close();
    }
  }

  async put(key: string, body: Buffer | NodeJS.ReadableStream, meta?: PutOptions): Promise<PutResult> {
    validateKey(key);
    const opts = normalizePutOptions(meta);
    const finalPath = this.pathFor(key);
    if (Buffer.isBuffer(body) && opts.maxBytes !== undefined && body.length > opts.maxBytes) throw tooLarge(key, opts.maxBytes);
    try {
      await this.ready();
    } catch (err) {
      throw fsFailure(err, key, 'prepare');
    }

    const tmp = path.join(this.tmpDir, `${randomUUID()}.part`);
    const source = Buffer.isBuffer(body) ? undefined : asReadable(body);
    let published = false;
    try {
      const fh = await this.openTemp(tmp);
      let size = 0;
      let sha256: string;
      try {
        const hash = createHash('sha256');
        const write = async (chunk: Buffer): Promise<void> => {
          size += chunk.length;
          if (opts.maxBytes !== undefined && size > opts.maxBytes) throw tooLarge(key, opts.maxBytes);
          hash.update(chunk);
          await writeFully(fh, chunk);
        };
        if (!source) {
          await write(body as Buffer);
        } else {
          // One chunk at a time: memory stays bounded and the source is paused while the disk catches up.
          // Leaving the loop early (error) destroys the source stream.
          for await (const chunk of source) await write(toBuffer(chunk));
        }
        sha256 = hash.digest('hex');
        if (opts.expectedSha256 !== undefined && opts.expectedSha256 !== sha256) {
          throw digestMismatch(key, opts.expectedSha256, sha256);
        }
        if (opts.size !== undefined && opts.size !== size) {
          throw new StorageError('DIGEST_MISMATCH', `object ${key}: body has ${size} bytes, not its declared ${opts.size}`, { key });
        }
        const rec: TrailerRecord = { v: 1, key, size, sha256, contentType: opts.contentType, metadata: opts.metadata };
        if (opts.contentDisposition !== undefined) rec.contentDisposition = opts.contentDisposition;
        await writeFully(fh, encodeTrailer(rec));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.publish(tmp, finalPath);
      published = true;
      return { key, size, sha256, etag: sha256 };
    } catch (err) {
      // The body's own error is passed through unchanged, as the S3 store does.
      if (source?.errored && err === source.errored) throw err;
      throw fsFailure(err, key, 'put');
    } finally {
      if (!published) await fsp.rm(tmp, { force: true }).catch(() => {});
    }
  }

  /** Creates a temp file; recreates the temp folder once if it vanished (e.g. rootDir wiped while running). */
  private async openTemp(tmp: string): Promise<FileHandle> {
    try {
      return await fsp.open(tmp, 'wx', 0o644);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
      this.readyPromise = undefined;
      await this.ready();
      return fsp.open(tmp, 'wx', 0o644);
    }
  }

  /** Atomic replace; retried if a concurrent delete pruned the (then empty) parent directory in between. */
  private async publish(tmp: string, finalPath: string): Promise<void> {
    const dir = path.dirname(finalPath);
    for (let attempt = 0; ; attempt++) {
      await fsp.mkdir(dir, { recursive: true });
      try {
        await fsp.rename(tmp, finalPath);
        break;
      } catch (err) {
        if (errCode(err) !== 'ENOENT' || attempt >= 10) throw err;
      }
    }
    await this.syncDir(dir);
  }

  private async syncDir(dir: string): Promise<void> {
    try {
      const d = await fsp.open(dir, fsConstants.O_RDONLY);
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch {
      /* best effort (not supported everywhere) */
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.pathFor(key);
    try {
      await fsp.unlink(p);
    } catch (err) {
      const c = errCode(err);
      if (c === 'ENOENT' || c === 'ENOTDIR') return;
      throw fsFailure(err, key, 'delete');
    }
    await this.syncDir(path.dirname(p));
    // Prune now-empty parent directories; rmdir refuses non-empty ones, and publish() retries if it races us.
    for (let dir = path.dirname(p); dir !== this.rootDir && dir.startsWith(this.rootDir + path.sep); dir = path.dirname(dir)) {
      try {
        await fsp.rmdir(dir);
      } catch {
        break;
      }
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (!prefixCanMatch(prefix)) return;
    const segs = prefix.split('/');
    const partial = segs.pop() as string;
    const base = path.join(this.rootDir, ...segs.map(encodeSegment));
    const encPartial = encodeRaw(partial);
    const found: ObjectInfo[] = [];

    const walk = async (dir: string, depth: number): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        const c = errCode(err);
        if (c === 'ENOENT' || c === 'ENOTDIR') return;
        throw fsFailure(err, undefined, 'list');
      }
      for (const e of entries) {
        if (dir === this.rootDir && e.name === RESERVED_SEGMENT) continue;
        if (depth === 0 && partial !== '' && !entryMayMatch(e.name, encPartial)) continue;
        const full = path.join(dir, e.name);
        if (e.isDirectory()) {
          await walk(full, depth + 1);
        } else if (e.isFile() && e.name.endsWith(OBJECT_SUFFIX)) {
          const info = await this.listEntry(full);
          if (info && info.key.startsWith(prefix)) found.push(info);
        }
      }
    };
    await walk(base, 0);
    found.sort((a, b) => byteOrder(a.key, b.key));
    for (const info of found) yield info;
  }

  private async listEntry(file: string): Promise<ObjectInfo | null> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, fsConstants.O_RDONLY);
    } catch {
      return null; // deleted or replaced while listing
    }
    try {
      const o = await readTrailer(fh);
      // Ignore stray files and files copied to a path that doesn't belong to their recorded key.
      if (!o || this.safePathFor(o.rec.key) !== file) return null;
      return { key: o.rec.key, size: o.size, etag: o.rec.sha256, lastModified: o.mtime };
    } catch {
      return null;
    } finally {
      await fh.close();
    }
  }

  private safePathFor(key: string): string | null {
    try {
      return this.pathFor(key);
    } catch {
      return null;
    }
  }

  async presignGet(key: string, opts: PresignOptions): Promise<string | null> {
    validateKey(key);
    checkPresignDisposition(opts.contentDisposition); // same argument checks as S3
    return null;
  }
}

export function createLocalStore(rootDir: string): ObjectStore {
  return new LocalObjectStore(rootDir);
}
