/**
 * Integrity of published assets: what vouches for an asset's bytes, and how a reader checks it.
 *
 * Next to an asset object, `<object key>.sig` holds the signing service's signature over a statement of the object's
 * key, size and SHA-256 (and SHA-512, in statements made by earlier versions), made only after the signing service
 * found that the stored bytes hash to them (it checked them itself, or the storage server's own digest of the stored
 * bytes vouched for them). The
 * statement is where readers take the digests from (objects stored by earlier versions also carry them in their
 * metadata). The signature file is written last: an asset is published once both exist (findAsset), so nothing is
 * visible as complete before it was verified. A reader checks the signature with the public key only — over the
 * object's own key and stored size with the statement's digests — then that the stored bytes hash to the signed
 * digest: someone who can write storage but holds no key cannot make other bytes pass, even by rewriting the
 * statement or the metadata too. Whatever fails is quarantined (unpublished, moved under `quarantine/`) and rebuilt
 * by the next request.
 */
import { createHash, KeyObject, verify } from 'node:crypto';
import type { ObjectInfo, ObjectStore } from '@factory/storage';
import { BoundedMap } from '@factory/runtime';
import { Counter, Logger, Registry } from '@factory/telemetry';
import { AssetRecord, assetRecordFrom, StatementDigests } from './record';

/** Object keys of assets (`assets/<asset key>`); their signature files and anything else under `assets/` do not match. */
export const ASSET_OBJECT_KEY = /^assets\/[0-9a-f]{64}$/;
export const ASSET_SIGNATURE_SUFFIX = '.sig';
export const assetSignatureKey = (objectKey: string) => `${objectKey}${ASSET_SIGNATURE_SUFFIX}`;
export const QUARANTINE_PREFIX = 'quarantine/';
/** Where a corrupted copy is kept for inspection (the latest one per asset). */
export const quarantineKey = (objectKey: string) => `${QUARANTINE_PREFIX}${objectKey}`;

/** Signature files are a few hundred bytes; anything much bigger is not one. */
const MAX_SIGNATURE_FILE = 16 * 1024;
const STATEMENT_TYPE = 'talos-image-factory/asset-digest/v1';
/** v1 plus `stored`: the stored version whose bytes the signing service checked. */
const STATEMENT_TYPE_STORED = 'talos-image-factory/asset-digest/v2';
/**
 * Key, size, SHA-256 and (optionally) `stored`: no SHA-512, which is derived on request from bytes checked against the
 * signed SHA-256 (Sha512Deriver). A type of its own, so that no v1/v2 statement's bytes can be read as one.
 */
const STATEMENT_TYPE_SHA256 = 'talos-image-factory/asset-digest/v3';

/** What the signing service signs: which object, and the digests and size of its bytes. */
export interface AssetStatement {
  key: string;
  size: number;
  sha256: string;
  /** Statements of earlier versions only (v1, v2); v3 has none. */
  sha512?: string;
  /**
   * The stored version (validatorOf: size, ETag, Last-Modified) whose bytes the signing service checked against the
   * digests. A reader that finds exactly this version stored may skip re-reading it (AssetVerifier's
   * `trustSignedVersion`); the digests stay signed whatever the version.
   */
  stored?: string;
}

/**
 * What a build-worker says about an asset it just stored, computed from the very bytes it sent: the signing service
 * signs a statement of these only after checking them against the stored object (`signing.asset`).
 */
export interface AssetClaims {
  key: string;
  size: number;
  sha256: string;
  /** Claimed by build-workers of earlier versions; signed only when claimed (then checked like the SHA-256). */
  sha512?: string;
  /** The bytes' MD5: an S3 server's ETag of a single-part upload, which then vouches for the stored bytes. */
  md5?: string;
}

export const assetStatement = (r: Pick<AssetRecord, 'key' | 'size' | 'sha256' | 'sha512'>, stored?: string): AssetStatement => ({
  key: r.key,
  size: r.size,
  sha256: r.sha256,
  ...(r.sha512 !== undefined ? { sha512: r.sha512 } : {}),
  ...(stored !== undefined ? { stored } : {}),
});

/** The signed bytes: compact JSON with a fixed field order (signer and verifier build them the same way). */
export function statementBytes(s: AssetStatement): Buffer {
  let body: object;
  if (s.sha512 === undefined) {
    body = { type: STATEMENT_TYPE_SHA256, key: s.key, size: s.size, sha256: s.sha256, ...(s.stored !== undefined ? { stored: s.stored } : {}) };
  } else {
    const digests = { key: s.key, size: s.size, sha256: s.sha256, sha512: s.sha512 };
    body = s.stored === undefined ? { type: STATEMENT_TYPE, ...digests } : { type: STATEMENT_TYPE_STORED, ...digests, stored: s.stored };
  }
  return Buffer.from(JSON.stringify(body), 'utf8');
}

/** The signature file's content: the statement (for people reading it) and the base64 DER ECDSA signature. */
export function encodeSignatureFile(statement: AssetStatement, signatureBase64: string): Buffer {
  return Buffer.from(`${JSON.stringify({ statement: JSON.parse(statementBytes(statement).toString('utf8')), signature: signatureBase64 })}\n`, 'utf8');
}

/**
 * Does `file` hold a valid signature over the statement of `record`? The statement is rebuilt from the record (the
 * object's own key and size, the digests it is about to check the bytes against), never taken whole from the file, so
 * a signature only ever vouches for what the reader checks.
 */
export function signatureMatches(record: AssetRecord, file: Buffer, publicKey: KeyObject): boolean {
  return signedCheck(record, file, publicKey).ok;
}

/**
 * signatureMatches, and the stored version the signature vouches for (taken from the file, then covered by the
 * signature check: a changed `stored` fails it like a changed digest).
 */
export function signedCheck(record: AssetRecord, file: Buffer, publicKey: KeyObject): { ok: boolean; stored?: string } {
  const parsed = parseSignatureFile(file);
  if (!parsed) return { ok: false };
  const { signature, statement } = parsed;
  // The file's statement is for people reading it and the source of a record's digests: where it names a field, it
  // must name the record's (a statement edited to name another key or size is a forged file, not a harmless label).
  if (typeof statement === 'object' && statement !== null) {
    const named = statement as Record<string, unknown>;
    for (const field of ['key', 'size', 'sha256', 'sha512'] as const) {
      if (named[field] !== undefined && named[field] !== record[field]) return { ok: false };
    }
  }
  if (typeof signature !== 'string' || signature === '') return { ok: false };
  const stored = typeof statement?.stored === 'string' ? statement.stored : undefined;
  try {
    const ok = verify('sha256', statementBytes(assetStatement(record, stored)), publicKey, Buffer.from(signature, 'base64'));
    return ok ? { ok, ...(stored !== undefined ? { stored } : {}) } : { ok: false };
  } catch {
    return { ok: false };
  }
}

interface SignatureFileContent {
  signature?: unknown;
  statement?: StatementDigests & { stored?: unknown };
}

function parseSignatureFile(file: Buffer): SignatureFileContent | undefined {
  try {
    const parsed = JSON.parse(file.toString('utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as SignatureFileContent) : undefined;
  } catch {
    return undefined;
  }
}

export interface StreamDigest {
  size: number;
  sha256: string;
  /** Only when asked for. */
  sha512?: string;
}

/** Digests of a stream's bytes, read once with bounded memory. */
export async function digestStream(body: NodeJS.ReadableStream, o: { sha512: boolean }): Promise<StreamDigest> {
  const h256 = createHash('sha256');
  const h512 = o.sha512 ? createHash('sha512') : undefined;
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    h256.update(chunk);
    h512?.update(chunk);
  }
  return { size, sha256: h256.digest('hex'), ...(h512 ? { sha512: h512.digest('hex') } : {}) };
}

/** Releases a stream that will not be read (a local object's file descriptor, an S3 connection). */
export function destroyBody(body: NodeJS.ReadableStream | undefined): void {
  (body as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined)?.destroy?.();
}

/** Identifies one stored version of an object: a rewrite changes it (S3: ETag and Last-Modified; local: mtime). */
export function validatorOf(info: Pick<ObjectInfo, 'size' | 'etag' | 'lastModified'>): string {
  return `${info.size}:${info.etag ?? ''}:${info.lastModified?.getTime() ?? ''}`;
}

/** A published asset: its record, the stored version it was read from, and its signature file. */
export interface StoredAsset {
  record: AssetRecord;
  validator: string;
  signature: Buffer;
}

export type AssetLookup = Pick<ObjectStore, 'head' | 'getBuffer'>;

/**
 * The published asset at `objectKey`: the object and its signature file, with the record of its digests taken from
 * the file's statement (objects of earlier versions: from their metadata when the statement names none); else
 * undefined. Nothing here is verified yet: see verifyStoredAsset / AssetVerifier.
 */
export async function findAsset(store: AssetLookup, objectKey: string, fallbackContentType: string): Promise<StoredAsset | undefined> {
  const [info, signature] = await Promise.all([store.head(objectKey), store.getBuffer(assetSignatureKey(objectKey), MAX_SIGNATURE_FILE).catch(unsignedWhenTooLarge)]);
  if (!info || !signature) return undefined;
  const record = assetRecordFrom(objectKey, info, fallbackContentType, parseSignatureFile(signature)?.statement);
  if (!record) return undefined;
  return { record, validator: validatorOf(info), signature };
}

function unsignedWhenTooLarge(err: unknown): null {
  if ((err as { code?: unknown })?.code === 'TOO_LARGE') return null;
  throw err;
}

/** Why a stored asset failed: its signature does not vouch for its record, or its bytes do not match the record. */
export type IntegrityProblem = 'signature' | 'digest';

export type Verdict =
  | { ok: true }
  | { ok: false; problem: IntegrityProblem; detail: string }
  /** Replaced or removed since it was found (a concurrent rebuild or quarantine): look again, nothing to quarantine. */
  | { ok: false; problem: 'changed'; detail: string };

/**
 * Checks a stored asset at rest: the signature over its record (public key only), then its bytes against the record
 * (streamed; with `sha512`, a recorded SHA-512 too — the signing service checked it, so SHA-256 alone binds the bytes).
 * With `trustSignedVersion`, a stored version the signature names as the one the signing service checked is not read
 * again (only for stores whose versions the server assigns: S3 sets ETag and Last-Modified on every write).
 */
export async function verifyStoredAsset(
  store: Pick<ObjectStore, 'get'>,
  asset: StoredAsset,
  publicKey: KeyObject,
  o: { sha512: boolean; trustSignedVersion?: boolean },
): Promise<Verdict> {
  const { record } = asset;
  const signed = signedCheck(record, asset.signature, publicKey);
  if (!signed.ok) {
    return { ok: false, problem: 'signature', detail: 'the signature file does not vouch for the recorded digests' };
  }
  if (o.trustSignedVersion && signed.stored === asset.validator) return { ok: true };
  const got = await store.get(record.key);
  if (!got) return { ok: false, problem: 'changed', detail: 'removed meanwhile' };
  if (validatorOf(got.info) !== asset.validator) {
    destroyBody(got.body);
    return { ok: false, problem: 'changed', detail: 'replaced meanwhile' };
  }
  const d = await digestStream(got.body, { sha512: o.sha512 && record.sha512 !== undefined });
  if (d.size !== record.size || d.sha256 !== record.sha256 || (o.sha512 && record.sha512 !== undefined && d.sha512 !== record.sha512)) {
    return { ok: false, problem: 'digest', detail: `stored bytes (${d.size} bytes, sha256 ${d.sha256}) do not match the record (${record.size} bytes, sha256 ${record.sha256})` };
  }
  return { ok: true };
}

/**
 * Takes a corrupted asset out of service: unpublished first (its signature file goes), then its bytes are moved
 * under `quarantine/` for inspection — best effort: a copy that cannot be kept ('removed') is still taken out of
 * service. Only the version found corrupt is taken: when the object was replaced meanwhile (a concurrent rebuild), it
 * is left alone ('skipped').
 */
export async function quarantineAsset(store: ObjectStore, found: { key: string; validator: string }, reason: string): Promise<'moved' | 'removed' | 'skipped'> {
  const info = await store.head(found.key);
  if (!info || validatorOf(info) !== found.validator) return 'skipped';
  await store.delete(assetSignatureKey(found.key));
  let kept = false;
  let body: NodeJS.ReadableStream | undefined;
  try {
    const got = await store.get(found.key);
    if (got) {
      body = got.body;
      await store.put(quarantineKey(found.key), got.body, {
        contentType: got.info.contentType,
        metadata: { reason: reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 512), 'quarantined-at': new Date().toISOString() },
      });
      kept = true;
    }
  } catch {
    // the copy is for people; what matters is that the corrupted bytes are never served again
    destroyBody(body);
  }
  await store.delete(found.key);
  return kept ? 'moved' : 'removed';
}

/** What verification observed, for metrics and logs. */
export interface IntegrityEvents {
  verified?(outcome: 'ok' | IntegrityProblem): void;
  /** `kept`: the corrupted bytes were moved under `quarantine/` (else only removed). */
  quarantined?(objectKey: string, problem: IntegrityProblem, detail: string, kept: boolean): void;
}

/**
 * Verification before serving, remembered per process: an asset is stream-verified the first time it is served and
 * again whenever its stored version (or signature file) changed; a version already verified is not read again.
 */
export class AssetVerifier {
  private readonly verified: BoundedMap<string, string>;
  private readonly inFlight = new Map<string, Promise<Verdict>>();
  private readonly quarantining = new Map<string, Promise<void>>();
  private publicKey?: Promise<KeyObject>;

  constructor(
    private readonly o: {
      store: ObjectStore;
      /** The signing service's public key (asked for once it is needed; asked again after a failure). */
      publicKey: () => Promise<KeyObject>;
      capacity?: number;
      events?: IntegrityEvents;
      /**
       * Skip the read when the signature names the stored version found as the one the signing service checked
       * (see verifyStoredAsset). Only for S3, where a rewrite always gets a new server-assigned ETag/Last-Modified.
       */
      trustSignedVersion?: boolean;
    },
  ) {
    this.verified = new BoundedMap(o.capacity ?? 50_000);
  }

  private key(): Promise<KeyObject> {
    if (!this.publicKey) {
      this.publicKey = this.o.publicKey();
      this.publicKey.catch(() => (this.publicKey = undefined));
    }
    return this.publicKey;
  }

  async check(asset: StoredAsset): Promise<Verdict> {
    const stamp = `${asset.record.key}:${asset.validator}:${createHash('sha256').update(asset.signature).digest('hex')}`;
    if (this.verified.get(asset.record.key) === stamp) return { ok: true };
    // Concurrent requests for one version share one read.
    let pending = this.inFlight.get(stamp);
    if (!pending) {
      pending = this.verify(asset, stamp).finally(() => this.inFlight.delete(stamp));
      this.inFlight.set(stamp, pending);
    }
    return pending;
  }

  private async verify(asset: StoredAsset, stamp: string): Promise<Verdict> {
    const verdict = await verifyStoredAsset(this.o.store, asset, await this.key(), { sha512: false, trustSignedVersion: this.o.trustSignedVersion });
    if (verdict.ok) this.verified.set(asset.record.key, stamp);
    else this.verified.delete(asset.record.key);
    if (verdict.ok || verdict.problem !== 'changed') this.o.events?.verified?.(verdict.ok ? 'ok' : verdict.problem);
    return verdict;
  }

  /** Quarantines the version found corrupt (see quarantineAsset); concurrent callers share one quarantine. */
  quarantine(asset: { record: Pick<AssetRecord, 'key'>; validator: string }, problem: IntegrityProblem, detail: string): Promise<void> {
    const { key } = asset.record;
    this.verified.delete(key);
    const id = `${key}:${asset.validator}`;
    let pending = this.quarantining.get(id);
    if (!pending) {
      pending = quarantineAsset(this.o.store, { key, validator: asset.validator }, `${problem}: ${detail}`)
        .then((outcome) => {
          if (outcome !== 'skipped') this.o.events?.quarantined?.(key, problem, detail, outcome === 'moved');
        })
        .finally(() => this.quarantining.delete(id));
      this.quarantining.set(id, pending);
    }
    return pending;
  }
}

/** Stored bytes that do not hash to the signed SHA-256 of their record: the object (this version) is corrupt. */
export class StoredBytesMismatch extends Error {
  constructor(
    readonly key: string,
    /** the stored version read (see validatorOf): what to quarantine */
    readonly validator: string,
    detail: string,
  ) {
    super(`stored asset ${key} does not match its signed digest: ${detail}`);
  }
}

/**
 * SHA-512s of published assets (`<asset>.sha512`), for records that name none: computed once from the stored bytes,
 * which must have the record's size and signed SHA-256 — the SHA-256 binds the bytes, so the SHA-512 of bytes that
 * hash to it is the asset's. Remembered per SHA-256 (bounded); concurrent requests for one asset share one read.
 */
export class Sha512Deriver {
  private readonly known: BoundedMap<string, string>;
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly store: Pick<ObjectStore, 'get'>,
    capacity = 10_000,
  ) {
    this.known = new BoundedMap(capacity);
  }

  /** The record's SHA-512: recorded (earlier versions), remembered, or read; StoredBytesMismatch when corrupt. */
  async of(record: AssetRecord): Promise<string> {
    if (record.sha512 !== undefined) return record.sha512;
    const remembered = this.known.get(record.sha256);
    if (remembered !== undefined) return remembered;
    let pending = this.inFlight.get(record.sha256);
    if (!pending) {
      pending = this.read(record).finally(() => this.inFlight.delete(record.sha256));
      this.inFlight.set(record.sha256, pending);
    }
    return pending;
  }

  private async read(record: AssetRecord): Promise<string> {
    const got = await this.store.get(record.key);
    if (!got) throw new StoredBytesMismatch(record.key, '', 'removed meanwhile');
    const d = await digestStream(got.body, { sha512: true });
    if (d.size !== record.size || d.sha256 !== record.sha256) {
      throw new StoredBytesMismatch(record.key, validatorOf(got.info), `${d.size} bytes, sha256 ${d.sha256} stored; ${record.size} bytes, sha256 ${record.sha256} signed`);
    }
    this.known.set(record.sha256, d.sha512!);
    return d.sha512!;
  }
}

/** Metrics and log lines of verification, registered once per service (gateway, build-worker's scrub). */
export function integrityEvents(registry: Registry, logger: Logger): IntegrityEvents {
  const verified = new Counter({ name: 'image_factory_assets_verified_total', help: 'Stored assets verified (signature and digest), by outcome', labelNames: ['outcome'], registers: [registry] });
  const corrupt = new Counter({ name: 'image_factory_assets_corrupt_total', help: 'Stored assets found corrupt or forged, by problem', labelNames: ['problem'], registers: [registry] });
  const quarantined = new Counter({ name: 'image_factory_assets_quarantined_total', help: 'Stored assets quarantined (unpublished and moved under quarantine/)', registers: [registry] });
  return {
    verified: (outcome) => {
      verified.inc({ outcome });
      if (outcome !== 'ok') corrupt.inc({ problem: outcome });
    },
    quarantined: (objectKey, problem, detail, kept) => {
      quarantined.inc();
      logger.warn({ key: objectKey, problem, detail, quarantine: kept ? quarantineKey(objectKey) : 'not kept (the copy failed)' }, 'stored asset failed verification: quarantined; the next request rebuilds it');
    },
  };
}
