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
  /**
   * Digests the storage *server* computed itself from the bytes it holds, when it keeps any (S3 only, from HEAD):
   * `sha256`, a full-object x-amz-checksum-sha256; `md5`, the ETag when it has the form of a single-part MD5 (S3 and
   * MinIO without SSE-KMS/SSE-C; encrypted objects have ETags of the same form that are no MD5, so compared with a
   * known MD5 they simply do not match). Never set from anything a writer stored (the local store sets none).
   */
  serverDigests?: { sha256?: string; md5?: string };
}

export interface PutResult {
  key: string;
  size: number;
  /** Of the bytes stored; not computed (undefined) for an S3 put whose digest is recorded elsewhere (digestRecordedElsewhere). */
  sha256?: string;
  /** ETag of the published object (S3: unquoted S3 ETag; local: the SHA-256). Extension to the brief's interface. */
  etag?: string;
}

export interface PutOptions extends ObjectMeta {
  /** When given (or when `sha256` is given), the computed digest must match or nothing is published (DIGEST_MISMATCH). */
  expectedSha256?: string;
  /** Upper bound on the object size; a bigger body fails with TOO_LARGE and nothing is published. */
  maxBytes?: number;
  /**
   * Stream bodies: the exact byte count, known up front (a finished file). With `expectedSha256`, S3 then takes the
   * body in one PutObject streamed from the source (no part buffers, no multipart assembly), sending the digest as
   * x-amz-checksum-sha256 (and `expectedMd5` as Content-MD5) for servers that check them, and holding the last bytes
   * back until the digest was checked here: a mismatch aborts the request before the server has the whole body.
   * A body of another length fails (TOO_LARGE / DIGEST_MISMATCH).
   */
  size?: number;
  /** Lower-case hex MD5 of the body, sent as Content-MD5 (servers that check it refuse other bytes: BadDigest). */
  expectedMd5?: string;
  /**
   * Stream bodies of known `size` whose digest nobody knows yet (a file still being written, hashed on the way by the
   * caller): the store need not keep the SHA-256 with the object (head may then return none); the caller records the
   * digests elsewhere (an asset's signed statement). S3 then takes the body as it comes in one PutObject (up to
   * `maxSinglePutBytes`; bigger ones in parts) straight to the key, without a staging copy and without checksum
   * headers (none is known when the request starts); the last bytes are held back until the length checked out, so a
   * short or long body is never stored whole. The local store records the SHA-256 anyway (it hashes every body).
   */
  digestRecordedElsewhere?: boolean;
  /**
   * On a failed put, delete whatever the key holds (its previous object too). For callers replacing an object that
   * nobody may read anyway (an unpublished asset): S3 look-alikes that write a PUT in place (s3rver) otherwise keep
   * the truncated body of an aborted request under the key.
   */
  removeOnFailure?: boolean;
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
