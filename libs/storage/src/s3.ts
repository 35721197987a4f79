/**
 * S3-compatible object store.
 *
 * Publishing (nothing half-written is ever visible under the final key):
 *  - Buffer bodies: one PutObject with Content-MD5 and the SHA-256 already in the user metadata ("sha256");
 *    digest/size checks happen before anything is sent.
 *  - Stream bodies whose digest *and size* are known up front (a finished file; expectedSha256 and size given), up to
 *    `maxSinglePutBytes`: one PutObject streamed from the source with Content-Length, x-amz-checksum-sha256 (and
 *    Content-MD5 when given) for servers that check them, through a hashing pass-through that holds the last chunk
 *    back until the digest and length checked out: on a mismatch the request is aborted short of its declared length,
 *    so a server never has the whole body. No part buffers and no multipart assembly: S3 look-alikes that assemble
 *    parts by copying (s3rver, also MinIO to a degree) take a 58 MB object in about a third of the multipart time.
 *  - Stream bodies of known size whose digest nobody knows yet and is recorded elsewhere (digestRecordedElsewhere: a
 *    file still being written), up to `maxSinglePutBytes`: the same single PutObject, without checksum headers and
 *    without the SHA-256 in the metadata, holding the last chunk back until the length checked out. The server's
 *    ETag of it is its MD5 of the stored bytes (without SSE-KMS/SSE-C), which callers compare with their own.
 *    Bigger ones: lib-storage Upload straight to the key, as below.
 *  - Stream bodies whose digest is known up front (expectedSha256 or sha256 given): lib-storage Upload straight to
 *    the final key (multipart above one part), with the expected digest as metadata. The body flows through a
 *    hashing pass-through that fails the stream at EOF on a mismatch, so the Upload never completes: small bodies
 *    never reach PutObject, multipart uploads are aborted. An S3 object only appears on CompleteMultipartUpload.
 *  - Stream bodies with an unknown digest: S3 fixes user metadata when the upload *starts*, but the SHA-256 is only
 *    known at the end. The body is therefore uploaded to a staging key `.tmp/<uuid>` and then published with a
 *    server-side copy that sets the final metadata (CopyObject, or UploadPartCopy multipart copy above 5 GiB);
 *    the staging object is deleted afterwards. `list` hides `.tmp/`; a bucket lifecycle rule expiring `.tmp/` and
 *    aborting incomplete multipart uploads after a day cleans up after crashed writers.
 * Memory: part size 8 MiB and queue size 2 by default. lib-storage keeps about (queueSize + 2) part buffers alive
 * (parts in flight, the previous part, the part being assembled), ~34 MiB worst case whatever the object size.
 */
import { randomUUID, createHash } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  HeadObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ClientConfig,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  asReadable,
  byteOrder,
  checkMaxBytes,
  checkRangeShape,
  checkPresignDisposition,
  digestMismatch,
  DigestStream,
  isListableKey,
  isReservedKey,
  normalizePutOptions,
  NormalizedPut,
  prefixCanMatch,
  RESERVED_PREFIX,
  sha256Hex,
  toBuffer,
  tooLarge,
  validateKey,
} from './common';
import { ByteRange, GetResult, ObjectInfo, ObjectStore, PresignOptions, PutOptions, PutResult, StorageError } from './types';

export interface S3StoreOptions {
  /** `http(s)://host[:port]`, or `host[:port]` (https unless `insecure`). Unset: AWS. */
  endpoint?: string;
  region?: string;
  bucket: string;
  /** Static credentials; when unset the AWS default credential chain is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style addressing. Defaults to true when a custom endpoint is set, false for AWS. */
  forcePathStyle?: boolean;
  /** Endpoint (host used) in presigned URLs if different from `endpoint`. Same scheme rules as `endpoint`. */
  publicEndpoint?: string;
  /** Scheme for endpoints given without one: http when true. Default false (https). */
  insecure?: boolean;
  /** Multipart part size for stream puts, ≥ 5 MiB. Default 8 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded concurrently per stream put. Default 2. */
  queueSize?: number;
  /** Advanced/testing: use this client instead of building one (endpoint/credential options are then ignored). */
  client?: S3Client;
  /** Advanced/testing: staging objects larger than this are published by multipart copy. Default 5 GiB (S3's limit). */
  maxSingleCopyBytes?: number;
  /** Advanced/testing: part size of multipart copies. Default 512 MiB. */
  copyPartBytes?: number;
  /**
   * Streams of known size and digest up to this size go in one PutObject (at most S3's 5 GiB); bigger ones in parts
   * (parallel, retried per part). Default 512 MiB: ISOs, kernels, initramfs, UKIs and compressed disk images.
   */
  maxSinglePutBytes?: number;
}

const MiB = 1024 * 1024;
const DEFAULT_PART_SIZE = 8 * MiB;
const DEFAULT_QUEUE_SIZE = 2;
const MAX_SINGLE_COPY = 5 * 1024 * MiB;
const MAX_SINGLE_PUT = 5 * 1024 * MiB;
const DEFAULT_SINGLE_PUT = 512 * MiB;
const DEFAULT_COPY_PART = 512 * MiB;
const COPY_CONCURRENCY = 4;
const MAX_PARTS = 10000;
const MAX_PRESIGN_TTL = 7 * 24 * 3600;

function withScheme(endpoint: string, insecure: boolean | undefined): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${insecure ? 'http' : 'https'}://${endpoint}`;
}

function unquote(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^"(.*)"$/, '$1');
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function status(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const e = err as SdkError | undefined;
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || status(err) === 404;
}

function isInvalidRange(err: unknown): boolean {
  return (err as SdkError | undefined)?.name === 'InvalidRange' || status(err) === 416;
}

function encodeKeyForCopySource(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** The first n bytes of body; the rest is not read (body is destroyed once n bytes were passed on). */
function truncate(body: Readable, n: number): Readable {
  async function* firstBytes(): AsyncGenerator<Buffer> {
    let left = n;
    for await (const chunk of body) {
      const buf = toBuffer(chunk);
      const part = buf.length > left ? buf.subarray(0, left) : buf;
      left -= part.length;
      yield part;
      if (left === 0) break;
    }
  }
  return Readable.from(firstBytes(), { objectMode: false });
}

/** See ObjectInfo.serverDigests: only full-object values (a composite checksum or multipart ETag ends in -<parts>). */
function serverDigestsOf(r: HeadObjectCommandOutput | GetObjectCommandOutput, etag: string | undefined): ObjectInfo['serverDigests'] {
  const out: NonNullable<ObjectInfo['serverDigests']> = {};
  const checksum = r.ChecksumSHA256;
  if (checksum && !checksum.includes('-') && r.ChecksumType !== 'COMPOSITE') {
    const hex = Buffer.from(checksum, 'base64').toString('hex');
    if (hex.length === 64) out.sha256 = hex;
  }
  if (etag && /^[0-9a-f]{32}$/.test(etag)) out.md5 = etag;
  return out.sha256 || out.md5 ? out : undefined;
}

function destroyBody(body: unknown): void {
  const b = body as { destroy?: (err?: Error) => void } | undefined;
  if (b && typeof b.destroy === 'function') b.destroy();
}

/** How long a truncated body left by an aborted PutObject is looked for (see removeTruncated). */
const TRUNCATED_CHECKS = 5;
const TRUNCATED_CHECK_MS = 100;

export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3' as const;
  readonly client: S3Client;
  readonly bucket: string;
  private readonly presignClient: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly maxSingleCopy: number;
  private readonly copyPart: number;
  private readonly maxSinglePut: number;

  constructor(opts: S3StoreOptions) {
    if (!opts || typeof opts.bucket !== 'string' || opts.bucket === '') throw new TypeError('S3 store needs a bucket');
    this.bucket = opts.bucket;
    this.partSize = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < 5 * MiB) throw new TypeError('partSizeBytes must be ≥ 5 MiB');
    this.queueSize = opts.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isSafeInteger(this.queueSize) || this.queueSize < 1) throw new TypeError('queueSize must be ≥ 1');
    this.maxSingleCopy = Math.min(opts.maxSingleCopyBytes ?? MAX_SINGLE_COPY, MAX_SINGLE_COPY);
    this.copyPart = opts.copyPartBytes ?? DEFAULT_COPY_PART;
    this.maxSinglePut = Math.min(opts.maxSinglePutBytes ?? DEFAULT_SINGLE_PUT, MAX_SINGLE_PUT);

    const base: S3ClientConfig = {
      region: opts.region || 'us-east-1',
      forcePathStyle: opts.forcePathStyle ?? Boolean(opts.endpoint),
      // Checksums only when an operation requires them: newer SDK defaults (CRC32 trailers, aws-chunked bodies)
      // are not understood by many S3-compatible servers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (opts.accessKeyId || opts.secretAccessKey) {
      base.credentials = { accessKeyId: opts.accessKeyId ?? '', secretAccessKey: opts.secretAccessKey ?? '' };
    }
    this.client = opts.client ?? new S3Client({ ...base, ...(opts.endpoint ? { endpoint: withScheme(opts.endpoint, opts.insecure) } : {}) });
    this.presignClient = opts.publicEndpoint && !opts.client
      ? new S3Client({ ...base, endpoint: withScheme(opts.publicEndpoint, opts.insecure) })
      : this.client;
  }

  private failure(err: unknown, key: string | undefined, what: string): Error {
    if (err instanceof StorageError || err instanceof TypeError) return err;
    const e = err as SdkError;
    const detail = [e?.name, status(err) ? `HTTP ${status(err)}` : undefined, e?.message].filter(Boolean).join(': ');
    return new StorageError('UNAVAILABLE', `s3 ${what} ${this.bucket}${key ? `/${key}` : ''} failed: ${detail || String(err)}`, {
      key,
      cause: err,
    });
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw this.failure(err, undefined, 'ping (HeadBucket)');
    }
  }

  private toInfo(key: string, r: HeadObjectCommandOutput | GetObjectCommandOutput, size: number): ObjectInfo {
    const metadata: Record<string, string> = {};
    let sha256: string | undefined;
    for (const [k, v] of Object.entries(r.Metadata ?? {})) {
      if (k.toLowerCase() === 'sha256') sha256 = v;
      else metadata[k.toLowerCase()] = v;
    }
    const info: ObjectInfo = { key, size, metadata };
    const etag = unquote(r.ETag);
    if (etag !== undefined) info.etag = etag;
    if (r.LastModified) info.lastModified = r.LastModified;
    if (r.ContentType) info.contentType = r.ContentType;
    if (r.ContentDisposition) info.contentDisposition = r.ContentDisposition;
    if (sha256) info.sha256 = sha256;
    const serverDigests = serverDigestsOf(r, etag);
    if (serverDigests) info.serverDigests = serverDigests;
    return info;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    validateKey(key);
    try {
      // ChecksumMode: the server returns the additional checksum it computed and checked at upload, if it keeps one.
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      return this.toInfo(key, r, r.ContentLength ?? 0);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.failure(err, key, 'head');
    }
  }

  async get(key: string, range?: ByteRange): Promise<GetResult | null> {
    validateKey(key);
    if (range) checkRangeShape(key, range);
    let r: GetObjectCommandOutput;
    try {
      r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined }),
      );
    } catch (err) {
      if (isNotFound(err)) return null;
      if (range && isInvalidRange(err)) {
        throw new StorageError('INVALID_RANGE', `range ${JSON.stringify(range)} not satisfiable for ${key}`, { key, cause: err });
      }
      throw this.failure(err, key, 'get');
    }
    const body = r.Body as unknown as Readable;
    if (!range) return { info: this.toInfo(key, r, r.ContentLength ?? 0), body };

    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(r.ContentRange ?? '');
    if (!m) {
      destroyBody(body);
      throw this.failure(new Error(`server ignored the Range request (Content-Range ${r.ContentRange})`), key, 'get');
    }
    const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (range.start >= total) {
      // Some servers answer 206 for ranges on empty objects; S3 says 416.
      destroyBody(body);
      throw new StorageError('INVALID_RANGE', `range start ${range.start} is beyond object size ${total}`, { key });
    }
    if (start !== range.start) {
      destroyBody(body);
      throw this.failure(new Error(`server answered Content-Range ${r.ContentRange} for start ${range.start}`), key, 'get');
    }
    const wantEnd = Math.min(range.end ?? total - 1, total - 1);
    if (end > wantEnd) {
      // Some S3 look-alikes serve more than asked (s3rver treats "bytes=0-0" as "bytes=0-"); trim to the request.
      return { info: this.toInfo(key, r, total), body: truncate(body, wantEnd - start + 1), range: { start, end: wantEnd } };
    }
    return { info: this.toInfo(key, r, total), body, range: { start, end } };
  }

  async getBuffer(key: string, maxBytes: number): Promise<Buffer | null> {
    validateKey(key);
    checkMaxBytes(maxBytes);
    let r: GetObjectCommandOutput;
    try {
      r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.failure(err, key, 'get');
    }
    const body = r.Body as unknown as Readable;
    if ((r.ContentLength ?? 0) > maxBytes) {
      destroyBody(body);
      throw tooLarge(key, maxBytes);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of body) {
        const buf = toBuffer(chunk);
        total += buf.length;
        if (total > maxBytes) throw tooLarge(key, maxBytes);
        chunks.push(buf);
      }
    } catch (err) {
      destroyBody(body);
      throw this.failure(err, key, 'read');
    }
    return Buffer.concat(chunks, total);
  }

  async put(key: string, body: Buffer | NodeJS.ReadableStream, meta?: PutOptions): Promise<PutResult> {
    validateKey(key);
    const opts = normalizePutOptions(meta);
    if (Buffer.isBuffer(body)) return this.putBuffer(key, body, opts);

    const unrecorded = opts.expectedSha256 === undefined && opts.digestRecordedElsewhere;
    if ((opts.expectedSha256 !== undefined || unrecorded) && opts.size !== undefined && opts.size <= this.maxSinglePut && (opts.maxBytes === undefined || opts.size <= opts.maxBytes)) {
      return this.putKnownStream(key, asReadable(body), opts, opts.expectedSha256, opts.size);
    }
    const digest = new DigestStream(key, opts.expectedSha256, opts.maxBytes, { size: opts.size });
    // Errors on either side tear down both: a failed source fails the upload, a failed upload destroys the source.
    pipeline(asReadable(body), digest, () => {});

    if (opts.expectedSha256 !== undefined || unrecorded) {
      const etag = await this.upload(key, digest, opts, opts.expectedSha256);
      return { key, size: digest.size, sha256: digest.sha256, etag };
    }

    const staging = `${RESERVED_PREFIX}${randomUUID()}`;
    let uploaded = false;
    try {
      await this.upload(staging, digest, opts, undefined);
      uploaded = true;
      const etag = await this.publishCopy(staging, key, digest.size, opts, digest.sha256);
      return { key, size: digest.size, sha256: digest.sha256, etag };
    } finally {
      if (uploaded) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: staging })).catch(() => {});
      }
    }
  }

  /**
   * One PutObject of a body whose size (and digest, when `sha256` is given) is known; its last chunk waits for the
   * length and digest checks.
   */
  private async putKnownStream(key: string, body: Readable, opts: NormalizedPut, sha256: string | undefined, size: number): Promise<PutResult> {
    // digest recorded elsewhere: the caller hashed these bytes already; hashing them again here would only cost time
    const digest = new DigestStream(key, sha256, opts.maxBytes, { holdLast: true, size, hash: sha256 !== undefined });
    const abort = new AbortController();
    // A failing body aborts the request: the server never receives the declared length, so it stores nothing.
    digest.once('error', () => abort.abort());
    pipeline(body, digest, () => {});
    try {
      const md5 = opts.expectedMd5 ? Buffer.from(opts.expectedMd5, 'hex').toString('base64') : undefined;
      const etag = await this.putObject(key, digest, size, opts, sha256, md5, abort.signal);
      // Defensive: a server that answered before the whole (checked) body was sent has not stored it.
      if (digest.failure) throw digest.failure;
      return { key, size, ...(sha256 !== undefined ? { sha256 } : {}), etag };
    } catch (err) {
      digest.destroy();
      if (opts.removeOnFailure) await this.removeTruncated(key, size);
      // the body's own failure (digest, length, or the source's error, unchanged) is the one that matters
      throw digest.failure ?? err;
    }
  }

  /**
   * After an aborted PutObject: removes what is under the key. S3 stores nothing for a request that did not deliver
   * its Content-Length, but some servers (s3rver) store the truncated body once they notice the abort, which can be
   * after a first delete: an object of another size than the declared one is looked for a little longer.
   */
  private async removeTruncated(key: string, declaredSize: number): Promise<void> {
    const remove = () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => {});
    await remove();
    for (let i = 0; i < TRUNCATED_CHECKS; i++) {
      await new Promise((r) => setTimeout(r, TRUNCATED_CHECK_MS));
      const info = await this.head(key).catch(() => null);
      if (info && info.size !== declaredSize) await remove();
    }
  }

  /**
   * PutObject with the SHA-256 (when known) as x-amz-checksum-sha256 (and the MD5, base64, as Content-MD5): servers
   * that check them refuse other bytes. Failures other than StorageErrors become UNAVAILABLE.
   */
  private async putObject(key: string, body: Buffer | Readable, size: number, opts: NormalizedPut, sha256: string | undefined, md5Base64: string | undefined, abortSignal?: AbortSignal): Promise<string | undefined> {
    try {
      const r = await this.client.send(
        new PutObjectCommand({
          ...this.objectParams(opts, sha256),
          Key: key,
          Body: body,
          ContentLength: size,
          ...(sha256 ? { ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64') } : {}),
          ...(md5Base64 ? { ContentMD5: md5Base64 } : {}),
        }),
        abortSignal ? { abortSignal } : {},
      );
      return unquote(r.ETag);
    } catch (err) {
      throw this.failure(err, key, 'put');
    }
  }

  private objectParams(opts: NormalizedPut, sha256: string | undefined) {
    return {
      Bucket: this.bucket,
      ContentType: opts.contentType,
      ContentDisposition: opts.contentDisposition,
      Metadata: sha256 === undefined ? { ...opts.metadata } : { ...opts.metadata, sha256 },
    };
  }

  private async putBuffer(key: string, body: Buffer, opts: NormalizedPut): Promise<PutResult> {
    if (opts.maxBytes !== undefined && body.length > opts.maxBytes) throw tooLarge(key, opts.maxBytes);
    const sha256 = sha256Hex(body);
    if (opts.expectedSha256 !== undefined && opts.expectedSha256 !== sha256) throw digestMismatch(key, opts.expectedSha256, sha256);
    const etag = await this.putObject(key, body, body.length, opts, sha256, createHash('md5').update(body).digest('base64'));
    return { key, size: body.length, sha256, etag };
  }


  /** Streams `digest` to `key` with lib-storage (multipart above one part); lib-storage aborts the upload on error. */
  private async upload(key: string, digest: DigestStream, opts: NormalizedPut, sha256: string | undefined): Promise<string | undefined> {
    const upload = new Upload({
      client: this.client,
      params: { ...this.objectParams(opts, sha256), Key: key, Body: digest },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      const r = await upload.done();
      return unquote(r.ETag);
    } catch (err) {
      digest.destroy();
      // lib-storage reports a failed AbortMultipartUpload instead of the original error; the body's own failure
      // (digest mismatch, size limit, or the source's error, passed through unchanged) is the one that matters.
      const cause = digest.failure ?? err;
      if (digest.failure && !(cause instanceof StorageError)) throw cause;
      throw this.failure(cause, key, 'upload');
    }
  }

  /** Server-side copy from the staging key to the final key, replacing the metadata (now including the digest). */
  private async publishCopy(src: string, key: string, size: number, opts: NormalizedPut, sha256: string): Promise<string | undefined> {
    const CopySource = `${this.bucket}/${encodeKeyForCopySource(src)}`;
    const params = { ...this.objectParams(opts, sha256), Key: key };
    if (size <= this.maxSingleCopy) {
      try {
        const r = await this.client.send(new CopyObjectCommand({ ...params, CopySource, MetadataDirective: 'REPLACE' }));
        return unquote(r.CopyObjectResult?.ETag);
      } catch (err) {
        throw this.failure(err, key, 'publish (CopyObject)');
      }
    }

    let uploadId: string | undefined;
    try {
      const created = await this.client.send(new CreateMultipartUploadCommand(params));
      uploadId = created.UploadId;
      const partSize = Math.max(this.copyPart, Math.ceil(size / MAX_PARTS), 5 * MiB);
      const count = Math.ceil(size / partSize);
      const parts: { PartNumber: number; ETag?: string }[] = new Array(count);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next++;
          const start = i * partSize;
          const end = Math.min(size, start + partSize) - 1;
          const r = await this.client.send(
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: i + 1,
              CopySource,
              CopySourceRange: `bytes=${start}-${end}`,
            }),
          );
          parts[i] = { PartNumber: i + 1, ETag: r.CopyPartResult?.ETag };
        }
      };
      await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, count) }, worker));
      const done = await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
      return unquote(done.ETag);
    } catch (err) {
      if (uploadId) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
          .catch(() => {});
      }
      throw this.failure(err, key, 'publish (multipart copy)');
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.failure(err, key, 'delete');
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (!prefixCanMatch(prefix)) return;
    let token: string | undefined;
    do {
      let r;
      try {
        r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      } catch (err) {
        throw this.failure(err, undefined, `list ${JSON.stringify(prefix)}`);
      }
      // S3 lists in UTF-8 byte order; sorting each page costs nothing there and fixes look-alikes that don't.
      const page = [...(r.Contents ?? [])].sort((a, b) => byteOrder(a.Key ?? '', b.Key ?? ''));
      for (const o of page) {
        if (!o.Key || isReservedKey(o.Key) || !isListableKey(o.Key)) continue;
        const info: ObjectInfo = { key: o.Key, size: o.Size ?? 0 };
        const etag = unquote(o.ETag);
        if (etag !== undefined) info.etag = etag;
        if (o.LastModified) info.lastModified = o.LastModified;
        yield info;
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async presignGet(key: string, opts: PresignOptions): Promise<string | null> {
    validateKey(key);
    const disposition = checkPresignDisposition(opts.contentDisposition);
    let ttl = Math.floor(opts.ttlSeconds);
    if (!Number.isFinite(ttl) || ttl <= 0) ttl = 3600;
    ttl = Math.min(ttl, MAX_PRESIGN_TTL);
    try {
      return await getSignedUrl(
        this.presignClient,
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentDisposition: disposition }),
        { expiresIn: ttl },
      );
    } catch (err) {
      throw this.failure(err, key, 'presign');
    }
  }
}

export function createS3Store(opts: S3StoreOptions): ObjectStore {
  return new S3ObjectStore(opts);
}
