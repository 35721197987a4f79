/** Validation and streaming helpers shared by both backends, so that they accept and reject exactly the same input. */
import { createHash, Hash } from 'node:crypto';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { ByteRange, PutOptions, StorageError } from './types';

export const MAX_KEY_BYTES = 1024;
/** First key segment reserved for in-flight uploads (S3 staging objects; the local store's temp folder). */
export const RESERVED_SEGMENT = '.tmp';
export const RESERVED_PREFIX = `${RESERVED_SEGMENT}/`;
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** S3 limits user-defined metadata to 2 KiB; both backends enforce it. */
export const MAX_USER_METADATA_BYTES = 2048;

/**
 * Throws INVALID_KEY unless key is a well-formed object key:
 * non-empty, ≤ 1024 UTF-8 bytes, no leading '/', no NUL, backslash or other control character, no empty / '.' / '..'
 * segment (so no trailing '/' either), valid Unicode, and not under the reserved `.tmp/` prefix.
 */
export function validateKey(key: string): void {
  const bad = (why: string): never => {
    throw new StorageError('INVALID_KEY', `invalid object key ${JSON.stringify(String(key)).slice(0, 200)}: ${why}`, { key });
  };
  if (typeof key !== 'string' || key.length === 0) bad('empty');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) bad(`longer than ${MAX_KEY_BYTES} bytes`);
  if (key.startsWith('/')) bad('leading "/"');
  if (key.includes('\\')) bad('backslash');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) bad('control character');
  if (Buffer.from(key, 'utf8').toString('utf8') !== key) bad('not valid Unicode');
  const segments = key.split('/');
  for (const seg of segments) {
    if (seg === '') bad('empty segment');
    if (seg === '.' || seg === '..') bad(`"${seg}" segment`);
  }
  if (segments[0] === RESERVED_SEGMENT) bad(`"${RESERVED_PREFIX}" is reserved for in-flight uploads`);
}

/** A list prefix that no valid key can start with yields nothing rather than throwing. */
export function prefixCanMatch(prefix: string): boolean {
  if (typeof prefix !== 'string') throw new TypeError('list prefix must be a string');
  if (prefix === '') return true;
  if (Buffer.byteLength(prefix, 'utf8') > MAX_KEY_BYTES) return false;
  if (prefix.startsWith('/') || prefix.includes('\\')) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(prefix)) return false;
  const segments = prefix.split('/');
  const complete = segments.slice(0, -1);
  for (const seg of complete) if (seg === '' || seg === '.' || seg === '..') return false;
  if (complete[0] === RESERVED_SEGMENT) return false;
  return true;
}

export function isReservedKey(key: string): boolean {
  return key === RESERVED_SEGMENT || key.startsWith(RESERVED_PREFIX);
}

/** A key as returned by the backend is listed only if the API could address it. */
export function isListableKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
}

// eslint-disable-next-line no-control-regex
const HEADER_VALUE = /^[\x20-\x7e]*$/;
const METADATA_KEY = /^[a-z0-9][a-z0-9_-]*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface NormalizedPut {
  contentType: string;
  contentDisposition?: string;
  metadata: Record<string, string>;
  expectedSha256?: string;
  maxBytes?: number;
  size?: number;
  expectedMd5?: string;
  removeOnFailure: boolean;
  digestRecordedElsewhere: boolean;
}

/** Validates put options; programming errors (bad metadata, bad digests) are TypeErrors. */
export function normalizePutOptions(meta: PutOptions | undefined): NormalizedPut {
  const m = meta ?? {};
  const headerValue = (name: string, v: string | undefined): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !HEADER_VALUE.test(v) || v !== v.trim()) {
      throw new TypeError(`${name} must be printable ASCII without surrounding whitespace`);
    }
    return v;
  };
  const contentType = headerValue('contentType', m.contentType) || DEFAULT_CONTENT_TYPE;
  const contentDisposition = headerValue('contentDisposition', m.contentDisposition) || undefined;
  const metadata: Record<string, string> = {};
  let metaBytes = 0;
  for (const [rawKey, value] of Object.entries(m.metadata ?? {})) {
    const k = rawKey.toLowerCase();
    if (!METADATA_KEY.test(k)) throw new TypeError(`invalid metadata key ${JSON.stringify(rawKey)}`);
    if (k === 'sha256') throw new TypeError('metadata key "sha256" is reserved (the store computes it)');
    if (k in metadata) throw new TypeError(`duplicate metadata key ${JSON.stringify(k)} (keys are case-insensitive)`);
    headerValue(`metadata ${k}`, value);
    metadata[k] = value;
    metaBytes += k.length + value.length;
  }
  if (metaBytes + 64 + 6 > MAX_USER_METADATA_BYTES) throw new TypeError(`user metadata exceeds ${MAX_USER_METADATA_BYTES} bytes`);
  let expected: string | undefined;
  for (const [name, v] of [['expectedSha256', m.expectedSha256], ['sha256', m.sha256]] as const) {
    if (v === undefined) continue;
    if (typeof v !== 'string' || !SHA256_HEX.test(v.toLowerCase())) throw new TypeError(`${name} must be 64 hex digits`);
    const lower = v.toLowerCase();
    if (expected !== undefined && expected !== lower) throw new TypeError('sha256 and expectedSha256 disagree');
    expected = lower;
  }
  let maxBytes: number | undefined;
  if (m.maxBytes !== undefined) {
    if (!Number.isSafeInteger(m.maxBytes) || m.maxBytes < 0) throw new TypeError('maxBytes must be a non-negative integer');
    maxBytes = m.maxBytes;
  }
  let size: number | undefined;
  if (m.size !== undefined) {
    if (!Number.isSafeInteger(m.size) || m.size < 0) throw new TypeError('size must be a non-negative integer');
    size = m.size;
  }
  let expectedMd5: string | undefined;
  if (m.expectedMd5 !== undefined) {
    if (typeof m.expectedMd5 !== 'string' || !/^[0-9a-f]{32}$/i.test(m.expectedMd5)) throw new TypeError('expectedMd5 must be 32 hex digits');
    expectedMd5 = m.expectedMd5.toLowerCase();
  }
  return { contentType, contentDisposition, metadata, expectedSha256: expected, maxBytes, size, expectedMd5, removeOnFailure: m.removeOnFailure === true, digestRecordedElsewhere: m.digestRecordedElsewhere === true };
}

export function checkMaxBytes(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new TypeError('maxBytes must be a non-negative integer');
}

export function tooLarge(key: string, limit: number): StorageError {
  return new StorageError('TOO_LARGE', `object ${key} exceeds ${limit} bytes`, { key });
}

export function digestMismatch(key: string, expected: string, actual: string): StorageError {
  return new StorageError('DIGEST_MISMATCH', `object ${key}: sha256 ${actual} does not match expected ${expected}`, { key });
}

/**
 * Validates a range against the object size and returns the inclusive range to serve.
 * Throws INVALID_RANGE when it is malformed or not satisfiable (start beyond the last byte, like HTTP 416).
 */
export function resolveRange(key: string, range: ByteRange, size: number): { start: number; end: number } {
  checkRangeShape(key, range);
  const { start, end } = range;
  if (start >= size) throw new StorageError('INVALID_RANGE', `range start ${start} is beyond object size ${size}`, { key });
  return { start, end: Math.min(end ?? size - 1, size - 1) };
}

export function checkRangeShape(key: string, range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new StorageError('INVALID_RANGE', `malformed range ${JSON.stringify(range)}`, { key });
  }
}

/** Accepts anything that looks like a Node readable (including old-style streams) and returns a stream.Readable. */
export function asReadable(body: NodeJS.ReadableStream): Readable {
  if (body instanceof Readable) return body;
  return new Readable({ read() {} }).wrap(body);
}

export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError('put body stream must yield Buffers, Uint8Arrays or strings');
}

/**
 * Pass-through that hashes and counts the bytes and enforces maxBytes. When the source ends it compares the digest
 * with the expected one and *fails the stream instead of ending it*, so a consumer never observes a clean EOF for
 * a body that must not be published.
 */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  sha256 = '';
  /** The first error this stream failed with (its own checks, or the source's error forwarded by pipeline). */
  failure?: Error;
  /** holdLast: the latest chunk, passed on only when the next one arrives or the digest checked out. */
  private held?: Buffer;

  /**
   * `holdLast`: for a consumer that commits once it has a declared number of bytes (a PutObject with Content-Length):
   * the last chunk is released only after the digest and the declared `size` checked out, so a failing body never
   * reaches its full length.
   */
  constructor(
    private readonly key: string,
    private readonly expectedSha256?: string,
    private readonly maxBytes?: number,
    private readonly o: { holdLast?: boolean; size?: number; /** false: count only (nobody needs the digest) */ hash?: boolean } = {},
  ) {
    // Object-mode writable side: any chunk reaches _transform, which rejects non-bytes with a TypeError
    // (a byte-mode writable would throw inside the source's pipe instead of failing this stream).
    super({ writableObjectMode: true, writableHighWaterMark: 1 });
    this.once('error', (err: Error) => {
      this.failure ??= err;
    });
  }

  override _transform(chunk: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    let buf: Buffer;
    try {
      buf = toBuffer(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.size += buf.length;
    if (this.maxBytes !== undefined && this.size > this.maxBytes) {
      cb(tooLarge(this.key, this.maxBytes));
      return;
    }
    if (this.o.size !== undefined && this.size > this.o.size) {
      cb(new StorageError('DIGEST_MISMATCH', `object ${this.key}: body is longer than its declared ${this.o.size} bytes`, { key: this.key }));
      return;
    }
    if (this.o.hash !== false) this.hash.update(buf);
    if (!this.o.holdLast) {
      cb(null, buf);
      return;
    }
    const previous = this.held;
    this.held = buf;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback): void {
    if (this.o.hash !== false) this.sha256 = this.hash.digest('hex');
    if (this.expectedSha256 !== undefined && this.expectedSha256 !== this.sha256) {
      cb(digestMismatch(this.key, this.expectedSha256, this.sha256));
      return;
    }
    if (this.o.size !== undefined && this.size !== this.o.size) {
      cb(new StorageError('DIGEST_MISMATCH', `object ${this.key}: body has ${this.size} bytes, not its declared ${this.o.size}`, { key: this.key }));
      return;
    }
    cb(null, this.held);
  }
}

export function sha256Hex(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * Checks a `Content-Disposition` value a presigned URL asks the server to send: the caller formats it (so a redirect
 * and a streamed download carry the same header), and it must be printable ASCII, as any header value sent must be.
 */
export function checkPresignDisposition(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[\x20-\x7e]+$/.test(value)) {
    throw new TypeError('contentDisposition must be a non-empty string of printable ASCII (format non-ASCII names as RFC 6266 filename*=)');
  }
  return value;
}

export const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
