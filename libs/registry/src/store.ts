/**
 * The factory's own OCI content, kept in the object store (no external registry).
 *
 * Keys:
 * * `oci/blobs/sha256/<hex>`: blobs AND manifests, content-addressed; always written with `expectedSha256 = <hex>`, so
 *   an object whose bytes don't match its name is never published. Manifests carry `contentType = <media type>`.
 * * `oci/tags/<repo>/<tag>`: a small JSON descriptor `{"mediaType","digest","size"}`. Callers write a tag last, so a
 *   tag only appears when everything it points at is complete.
 * * `oci/referrers/sha256/<subject hex>/<referrer hex>`: one JSON descriptor per referrer of a subject (OCI 1.1
 *   referrers API). Written by `addReferrer`, and by `putManifest` for manifests with a `subject`.
 *
 * Content is global (not per repository), like a registry with cross-repository blob mounts; repository-level
 * access checks belong to the HTTP layer.
 */
import type { Readable } from 'node:stream';
import type { ByteRange, GetResult, ObjectStore } from '@factory/storage';
import { isStorageError } from '@factory/storage';
import type { Descriptor } from '@factory/oci';
import { BoundedMap } from '@factory/runtime';
import {
  COSIGN_SIGNATURE_ANNOTATION, MediaTypes, cosignSignatureTag, isValidRepository, isValidTag, sha256Digest,
} from '@factory/oci';

export type { Descriptor } from '@factory/oci';

/** Every key of the OCI store starts with this. */
export const OCI_KEY_PREFIX = 'oci/';
export const BLOB_KEY_PREFIX = `${OCI_KEY_PREFIX}blobs/sha256/`;
export const TAG_KEY_PREFIX = `${OCI_KEY_PREFIX}tags/`;
export const REFERRER_KEY_PREFIX = `${OCI_KEY_PREFIX}referrers/sha256/`;

/** Manifests (and referrers indexes) bigger than this are refused, like registries do. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Tag and referrer records are tiny JSON documents. */
const MAX_RECORD_BYTES = 64 * 1024;
/** At most this many referrers are listed for one subject. */
const MAX_REFERRERS = 1000;
const READ_CONCURRENCY = 16;
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** Media types accepted (and recognised) as manifests. */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.dockerManifest,
]);

const SHA256_RE = /^sha256:([0-9a-f]{64})$/;

/** Lower-case hex of a `sha256:<hex>` digest, or null for anything else (other algorithms, malformed). */
export function sha256Hex(digest: string): string | null {
  const m = typeof digest === 'string' ? SHA256_RE.exec(digest) : null;
  return m ? m[1] : null;
}

function requireHex(digest: string, what = 'digest'): string {
  const hex = sha256Hex(digest);
  if (!hex) throw new TypeError(`invalid ${what} ${JSON.stringify(digest)}: only sha256:<64 hex> digests are stored`);
  return hex;
}

function requireRepository(repo: string): void {
  if (typeof repo !== 'string' || !isValidRepository(repo)) throw new TypeError(`invalid repository name: ${JSON.stringify(repo)}`);
}

function requireTag(tag: string): void {
  if (typeof tag !== 'string' || !isValidTag(tag)) throw new TypeError(`invalid tag: ${JSON.stringify(tag)}`);
}

export function blobKey(digest: string): string {
  return BLOB_KEY_PREFIX + requireHex(digest);
}

export function tagKey(repo: string, tag: string): string {
  requireRepository(repo);
  requireTag(tag);
  return `${TAG_KEY_PREFIX}${repo}/${tag}`;
}

function referrerPrefix(subjectDigest: string): string {
  return `${REFERRER_KEY_PREFIX}${requireHex(subjectDigest, 'subject digest')}/`;
}

export interface BlobInfo {
  digest: string;
  size: number;
  /** stored content type (manifests: their media type; blobs: application/octet-stream) */
  contentType: string;
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
}

export interface PutBlobResult {
  digest: string;
  size: number;
  /** true when the blob was already stored (nothing was written; a stream body was destroyed unread) */
  existed: boolean;
}

export interface ReferrersIndex {
  mediaType: string;
  digest: string;
  bytes: Buffer;
  manifests: Descriptor[];
}

export interface PutManifestOptions {
  /** record the manifest as a referrer of its `subject`, when it has one (default true) */
  indexReferrer?: boolean;
}

export interface CosignSignatureOptions {
  /** replace the signature manifest instead of appending the new layer to it (default false: cosign appends) */
  replace?: boolean;
}

function isReadable(body: unknown): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function';
}

async function collect(stream: NodeJS.ReadableStream, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += b.length;
    if (total > max) {
      (stream as Readable).destroy?.();
      return null;
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, total);
}

function parseJsonObject(bytes: Buffer): Record<string, any> | null {
  try {
    const v = JSON.parse(bytes.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

function validDescriptor(v: any): v is Descriptor {
  return (
    typeof v === 'object' && v !== null && typeof v.mediaType === 'string' && v.mediaType !== '' &&
    typeof v.digest === 'string' && sha256Hex(v.digest) !== null && Number.isSafeInteger(v.size) && v.size >= 0
  );
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v)) if (typeof s === 'string') out[k] = s;
  return Object.keys(out).length ? out : undefined;
}

/** Runs fn over items with bounded concurrency, preserving order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Bounds of the in-memory caches of immutable (content-addressed) data. */
const STAT_CACHE_ENTRIES = 20_000;
const MANIFEST_CACHE_BYTES = 32 * 1024 * 1024;

export class OciContentStore {
  /**
   * Blobs and manifests are content-addressed, so what the store said about them stays true: their sizes and the
   * manifests' bytes are remembered (bounded), sparing an object-store round trip per pull request — which counts
   * with S3 far away.
   */
  private readonly stats = new BoundedMap<string, BlobInfo>(STAT_CACHE_ENTRIES);
  private readonly manifests = new Map<string, StoredManifest>();
  private manifestBytes = 0;

  constructor(readonly objects: ObjectStore) {}

  private rememberStat(hex: string, info: BlobInfo): void {
    this.stats.set(hex, info);
  }

  private rememberManifest(hex: string, m: StoredManifest): void {
    if (m.size > MANIFEST_CACHE_BYTES / 64) return;
    const old = this.manifests.get(hex);
    if (old) {
      this.manifestBytes -= old.size;
      this.manifests.delete(hex);
    }
    while (this.manifestBytes + m.size > MANIFEST_CACHE_BYTES && this.manifests.size) {
      const [k, v] = this.manifests.entries().next().value as [string, StoredManifest];
      this.manifests.delete(k);
      this.manifestBytes -= v.size;
    }
    this.manifests.set(hex, m);
    this.manifestBytes += m.size;
  }

  // --- blobs ------------------------------------------------------------------------------------------------------

  /**
   * Stores a blob under its digest. The bytes are verified against the digest before anything is published
   * (StorageError DIGEST_MISMATCH otherwise); `size`, when given, bounds the upload and must match. An already stored
   * blob is not written again (a stream body is then destroyed without being read).
   */
  async putBlob(digest: string, body: Buffer | Readable | NodeJS.ReadableStream, size?: number): Promise<PutBlobResult> {
    const key = blobKey(digest);
    const hex = key.slice(BLOB_KEY_PREFIX.length);
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) throw new TypeError(`invalid blob size ${size}`);
    if (Buffer.isBuffer(body) && size !== undefined && body.length !== size) {
      throw new TypeError(`blob ${digest}: ${body.length} bytes given, size says ${size}`);
    }
    const existing = await this.objects.head(key);
    if (existing && (size === undefined || existing.size === size)) {
      if (isReadable(body)) body.destroy();
      return { digest, size: existing.size, existed: true };
    }
    const res = await this.objects.put(key, body, {
      expectedSha256: hex,
      contentType: existing?.contentType ?? DEFAULT_CONTENT_TYPE,
      ...(size !== undefined ? { maxBytes: size } : {}),
    });
    this.stats.delete(hex);
    if (size !== undefined && res.size !== size) {
      throw new TypeError(`blob ${digest}: stored ${res.size} bytes, size says ${size}`);
    }
    return { digest, size: res.size, existed: false };
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.statBlob(digest)) !== null;
  }

  /** Size and content type of a stored blob (or manifest); null when absent or when `digest` isn't a sha256 digest. */
  async statBlob(digest: string): Promise<BlobInfo | null> {
    const hex = sha256Hex(digest);
    if (!hex) return null;
    const known = this.stats.get(hex);
    if (known) return { ...known, digest };
    const info = await this.objects.head(BLOB_KEY_PREFIX + hex);
    if (!info) return null;
    const stat = { digest, size: info.size, contentType: info.contentType ?? DEFAULT_CONTENT_TYPE };
    this.rememberStat(hex, stat);
    return stat;
  }

  /**
   * Streams a blob (optionally an inclusive byte range). Null when absent or not a sha256 digest. A range starting at
   * or beyond the end fails with StorageError INVALID_RANGE.
   */
  async getBlob(digest: string, range?: ByteRange): Promise<GetResult | null> {
    const hex = sha256Hex(digest);
    if (!hex) return null;
    return this.objects.get(BLOB_KEY_PREFIX + hex, range);
  }

  /** Presigned GET URL of the blob (S3 backend), or null (local backend: the caller streams). Does not check existence. */
  async presignBlob(digest: string, ttlSeconds: number): Promise<string | null> {
    const hex = sha256Hex(digest);
    if (!hex) return null;
    return this.objects.presignGet(BLOB_KEY_PREFIX + hex, { ttlSeconds });
  }

  // --- manifests --------------------------------------------------------------------------------------------------

  /**
   * Stores manifest bytes content-addressed with `contentType = mediaType` and returns its descriptor. The bytes must
   * be a JSON object whose `mediaType` field (when present) equals `mediaType`. A manifest with an OCI `subject` is
   * also recorded as a referrer of that subject.
   */
  async putManifest(bytes: Buffer, mediaType: string, opts: PutManifestOptions = {}): Promise<Descriptor> {
    if (!MANIFEST_MEDIA_TYPES.has(mediaType)) throw new TypeError(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
    if (bytes.length > MAX_MANIFEST_BYTES) throw new TypeError(`manifest is ${bytes.length} bytes, over the ${MAX_MANIFEST_BYTES} limit`);
    const json = parseJsonObject(bytes);
    if (!json) throw new TypeError('manifest is not a JSON object');
    if (json.mediaType !== undefined && json.mediaType !== mediaType) {
      throw new TypeError(`manifest says mediaType ${JSON.stringify(json.mediaType)}, stored as ${JSON.stringify(mediaType)}`);
    }
    const digest = sha256Digest(bytes);
    const hex = digest.slice('sha256:'.length);
    const existing = await this.objects.head(BLOB_KEY_PREFIX + hex);
    if (!existing || existing.contentType !== mediaType) {
      await this.objects.put(BLOB_KEY_PREFIX + hex, bytes, { expectedSha256: hex, contentType: mediaType });
      this.stats.delete(hex);
      const cached = this.manifests.get(hex);
      if (cached) {
        this.manifests.delete(hex);
        this.manifestBytes -= cached.size;
      }
    }
    const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
    const subject = json.subject;
    if (opts.indexReferrer !== false && validDescriptor(subject)) {
      const ref: Descriptor = { ...descriptor };
      const artifactType = typeof json.artifactType === 'string' ? json.artifactType
        : typeof json.config?.mediaType === 'string' ? json.config.mediaType : undefined;
      if (artifactType !== undefined) ref.artifactType = artifactType;
      const annotations = stringMap(json.annotations);
      if (annotations) ref.annotations = annotations;
      await this.addReferrer(subject.digest, ref);
    }
    return descriptor;
  }

  /**
   * A stored manifest by digest, or null when absent / not a sha256 digest / not a manifest (e.g. a layer blob).
   * The media type is the stored content type, falling back to the document's own `mediaType` field.
   */
  async getManifest(digest: string): Promise<StoredManifest | null> {
    const hex = sha256Hex(digest);
    if (!hex) return null;
    const known = this.manifests.get(hex);
    if (known) return { ...known, digest };
    const got = await this.objects.get(BLOB_KEY_PREFIX + hex);
    if (!got) return null;
    if (got.info.size > MAX_MANIFEST_BYTES) {
      (got.body as Readable).destroy?.();
      return null;
    }
    const bytes = await collect(got.body, MAX_MANIFEST_BYTES);
    if (!bytes) return null;
    let mediaType = got.info.contentType;
    if (!mediaType || !MANIFEST_MEDIA_TYPES.has(mediaType)) {
      const declared = parseJsonObject(bytes)?.mediaType;
      if (typeof declared !== 'string' || !MANIFEST_MEDIA_TYPES.has(declared)) return null;
      mediaType = declared;
    }
    const manifest = { digest, mediaType, size: bytes.length, bytes };
    this.rememberManifest(hex, manifest);
    return manifest;
  }

  /** Manifest for a tag or a digest reference in `repo`; null when unknown (or the names are invalid). */
  async resolveManifest(repo: string, reference: string): Promise<StoredManifest | null> {
    if (reference.includes(':')) return this.getManifest(reference);
    const desc = await this.getTag(repo, reference);
    return desc ? this.getManifest(desc.digest) : null;
  }

  // --- tags -------------------------------------------------------------------------------------------------------

  /** Points `repo:tag` at a stored manifest (which must exist). Write tags last. */
  async setTag(repo: string, tag: string, descriptor: Descriptor): Promise<void> {
    const key = tagKey(repo, tag);
    if (!validDescriptor(descriptor)) throw new TypeError(`invalid descriptor for ${repo}:${tag}: ${JSON.stringify(descriptor)}`);
    const info = await this.statBlob(descriptor.digest);
    if (!info) throw new Error(`cannot tag ${repo}:${tag}: manifest ${descriptor.digest} is not stored`);
    if (info.size !== descriptor.size) throw new Error(`cannot tag ${repo}:${tag}: ${descriptor.digest} is ${info.size} bytes, descriptor says ${descriptor.size}`);
    const record = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
    await this.objects.put(key, Buffer.from(JSON.stringify(record)), { contentType: 'application/json' });
  }

  /** The descriptor `repo:tag` points at; null when unset or when repo/tag are not valid names. */
  async getTag(repo: string, tag: string): Promise<Descriptor | null> {
    if (!isValidRepository(repo) || !isValidTag(tag)) return null;
    let buf: Buffer | null;
    try {
      buf = await this.objects.getBuffer(`${TAG_KEY_PREFIX}${repo}/${tag}`, MAX_RECORD_BYTES);
    } catch (err) {
      if (isStorageError(err, 'TOO_LARGE') || isStorageError(err, 'INVALID_KEY')) return null;
      throw err;
    }
    if (!buf) return null;
    const v = parseJsonObject(buf);
    if (!validDescriptor(v)) return null;
    return { mediaType: v.mediaType, digest: v.digest, size: v.size };
  }

  async deleteTag(repo: string, tag: string): Promise<void> {
    await this.objects.delete(tagKey(repo, tag));
  }

  /** Tags of `repo`, sorted (byte order). */
  async listTags(repo: string): Promise<string[]> {
    requireRepository(repo);
    const prefix = `${TAG_KEY_PREFIX}${repo}/`;
    const tags: string[] = [];
    for await (const o of this.objects.list(prefix)) {
      const rest = o.key.slice(prefix.length);
      if (rest && !rest.includes('/')) tags.push(rest);
    }
    return tags;
  }

  // --- referrers --------------------------------------------------------------------------------------------------

  /** Records `descriptor` (a manifest with `subject` = subjectDigest) as a referrer of `subjectDigest`. */
  async addReferrer(subjectDigest: string, descriptor: Descriptor): Promise<void> {
    const prefix = referrerPrefix(subjectDigest);
    if (!validDescriptor(descriptor)) throw new TypeError(`invalid referrer descriptor: ${JSON.stringify(descriptor)}`);
    const record: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
    if (descriptor.artifactType !== undefined) record.artifactType = descriptor.artifactType;
    if (descriptor.annotations !== undefined) record.annotations = descriptor.annotations;
    await this.objects.put(prefix + sha256Hex(descriptor.digest)!, Buffer.from(JSON.stringify(record)), { contentType: 'application/json' });
  }

  /** Referrers of a subject (ordered by referrer digest), optionally only those with the given artifactType. */
  async listReferrers(subjectDigest: string, artifactType?: string): Promise<Descriptor[]> {
    if (!sha256Hex(subjectDigest)) return [];
    const prefix = referrerPrefix(subjectDigest);
    const keys: string[] = [];
    for await (const o of this.objects.list(prefix)) {
      if (o.key.slice(prefix.length).includes('/')) continue;
      keys.push(o.key);
      if (keys.length >= MAX_REFERRERS) break;
    }
    const records = await mapLimit(keys, READ_CONCURRENCY, async (key) => {
      try {
        const buf = await this.objects.getBuffer(key, MAX_RECORD_BYTES);
        const v = buf ? parseJsonObject(buf) : null;
        return validDescriptor(v) ? (v as Descriptor) : null;
      } catch (err) {
        if (isStorageError(err, 'TOO_LARGE')) return null;
        throw err;
      }
    });
    return records.filter((d): d is Descriptor => d !== null && (artifactType === undefined || d.artifactType === artifactType));
  }

  /** The OCI image index the referrers API answers for a subject (empty `manifests` when there are none). */
  async referrersIndex(subjectDigest: string, artifactType?: string): Promise<ReferrersIndex> {
    const manifests = await this.listReferrers(subjectDigest, artifactType);
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
    return { mediaType: MediaTypes.ociIndex, digest: sha256Digest(bytes), bytes, manifests };
  }

  // --- cosign -----------------------------------------------------------------------------------------------------

  /**
   * Stores a cosign key-based ("simple signing") signature of `repo@subjectDigest` the way cosign lays it out
   * (anchor-api §5.7): tag `sha256-<hex>.sig` in the same repository → OCI manifest with config
   * `application/vnd.oci.image.config.v1+json` (creation timestamp `created`) and one
   * `application/vnd.dev.cosign.simplesigning.v1+json` layer per signature whose content is the payload and whose
   * annotation `dev.cosignproject.cosign/signature` is the base64 signature. Like cosign, a new signature is appended
   * to an existing signature manifest (an identical layer is not added twice) unless `replace` is set.
   * `payload` must be the simple-signing JSON naming `subjectDigest` (see `simpleSigningPayload` in @factory/oci).
   * Returns the signature manifest's descriptor.
   */
  async putCosignSignature(
    repo: string, subjectDigest: string, payload: Buffer, signatureBase64: string, created: string | Date,
    opts: CosignSignatureOptions = {},
  ): Promise<Descriptor> {
    requireRepository(repo);
    requireHex(subjectDigest, 'subject digest');
    const tag = cosignSignatureTag(subjectDigest);
    if (typeof signatureBase64 !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(signatureBase64)) {
      throw new TypeError('signature must be non-empty standard base64');
    }
    const named = parseJsonObject(payload)?.critical?.image?.['docker-manifest-digest'];
    if (named !== subjectDigest) {
      throw new TypeError(`signature payload names ${JSON.stringify(named)}, not ${subjectDigest}`);
    }
    const createdText = typeof created === 'string' ? created : created.toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (Number.isNaN(Date.parse(createdText))) throw new TypeError(`invalid creation timestamp ${JSON.stringify(createdText)}`);

    const payloadDigest = sha256Digest(payload);
    await this.putBlob(payloadDigest, payload);
    const layer = {
      mediaType: MediaTypes.cosignSimpleSigning,
      size: payload.length,
      digest: payloadDigest,
      annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signatureBase64 },
    };

    let layers: Array<Record<string, any>> = [];
    if (!opts.replace) {
      const current = await this.resolveManifest(repo, tag);
      const json = current ? parseJsonObject(current.bytes) : null;
      if (current && Array.isArray(json?.layers)) {
        layers = json!.layers.filter((l: any) => l && typeof l.digest === 'string' && sha256Hex(l.digest) !== null);
        const same = layers.some((l) => l.digest === payloadDigest && l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] === signatureBase64);
        if (same) return { mediaType: current.mediaType, digest: current.digest, size: current.size };
      }
    }
    layers.push(layer);

    const config = Buffer.from(JSON.stringify({
      architecture: '',
      created: createdText,
      history: layers.map(() => ({ created: createdText })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }));
    const configDigest = sha256Digest(config);
    await this.putBlob(configDigest, config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, size: config.length, digest: configDigest },
      layers,
    }));
    const descriptor = await this.putManifest(manifest, MediaTypes.ociManifest);
    await this.setTag(repo, tag, descriptor);
    return descriptor;
  }
}
