/** Public types shared by both object store backends. */

export interface ObjectMeta {
  /** MIME type. Defaults to `application/octet-stream` when not given at put time (on both backends). */
  contentType?: string;
  contentDisposition?: string;
  /** Lower-case hex SHA-256 of the object bytes. Always computed by the store on put; returned by head/get. */
  sha256?: string;
  /** User metadata. Keys are lower-cased (as S3 does); values must be printable ASCII. `sha256` is reserved. */
  metadata?: Record<string, string>;
}

export interface ObjectInfo extends ObjectMeta {
  key: string;
  /** Size of the whole object in bytes (also for ranged gets). */
  size: number;
  /** S3: the ETag without quotes. Local: the SHA-256 hex of the bytes. */
  etag?: string;
  lastModified?: Date;
}

export interface PutResult {
  key: string;
  size: number;
  sha256: string;
  /** ETag of the published object (S3: unquoted S3 ETag; local: the SHA-256). Extension to the brief's interface. */
  etag?: string;
}

export interface PutOptions extends ObjectMeta {
  /** When given (or when `sha256` is given), the computed digest must match or nothing is published (DIGEST_MISMATCH). */
  expectedSha256?: string;
  /** Upper bound on the object size; a bigger body fails with TOO_LARGE and nothing is published. */
  maxBytes?: number;
}

/** Inclusive byte range, like HTTP `Range: bytes=start-end`. `end` defaults to (and is clamped to) the last byte. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface GetResult {
  info: ObjectInfo;
  body: NodeJS.ReadableStream;
  /** Present for ranged gets: the inclusive range actually served (end clamped to size-1). */
  range?: { start: number; end: number };
}

export interface PresignOptions {
  ttlSeconds: number;
  /** The `Content-Disposition` the download should carry (printable ASCII; a complete header value). */
  contentDisposition?: string;
}

export interface ObjectStore {
  readonly kind: 's3' | 'local';
  /** Readiness: bucket reachable (S3) / directory writable (local). Throws StorageError('UNAVAILABLE'). */
  ping(): Promise<void>;
  head(key: string): Promise<ObjectInfo | null>;
  get(key: string, range?: ByteRange): Promise<GetResult | null>;
  /** Whole object in memory; TOO_LARGE if it is bigger than maxBytes. */
  getBuffer(key: string, maxBytes: number): Promise<Buffer | null>;
  put(key: string, body: Buffer | NodeJS.ReadableStream, meta?: PutOptions): Promise<PutResult>;
  /** Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Objects whose key starts with prefix, in ascending (UTF-8 byte) key order. Yields key/size/etag/lastModified only. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** S3: presigned GET URL (sending `contentDisposition` when given). Local: null (the caller streams). */
  presignGet(key: string, opts: PresignOptions): Promise<string | null>;
}

export type StorageErrorCode =
  | 'NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'TOO_LARGE'
  | 'INVALID_KEY'
  | 'INVALID_RANGE'
  | 'UNAVAILABLE';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly key?: string;

  constructor(code: StorageErrorCode, message: string, opts: { key?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'StorageError';
    this.code = code;
    if (opts.key !== undefined) this.key = opts.key;
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}
