/**
 * The `signing.*` job handlers: public material and signatures for the keys this process holds. `main.ts` loads the
 * keys and wires these to the queue.
 */
import type { KeyObject } from 'node:crypto';
import { AssetClaims, ASSET_OBJECT_KEY, assetRecordFrom, assetStatement, destroyBody, digestStream, statementBytes, validatorOf } from '@factory/asset';
import { badRequest, FactoryError } from '@factory/errors';
import { MediaTypes, simpleSigningPayload } from '@factory/oci';
import type { PayloadOf, ResultOf } from '@factory/queue';
import { Counter, Registry } from '@factory/telemetry';
import { signEcdsa } from './keys';

/** Installer repositories of the factory's registry (anchor-api §5.2): `[<platform>-]installer[-secureboot]/<schematic>`. */
const INSTALLER_REPOSITORY = /^(?:[a-z0-9]+(?:-[a-z0-9]+)*-)?installer(?:-secureboot)?\/[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** What the signing service reads to check a request: manifests in the factory's OCI store (read-only). */
export interface StoredManifests {
  getManifest(digest: string): Promise<{ mediaType: string; bytes: Buffer } | null>;
}

/** What the signing service learns about a stored object: size, recorded digests, version, and the server's own digests. */
export interface StoredObjectInfo {
  size: number;
  sha256?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  etag?: string;
  lastModified?: Date;
  /** digests the storage server computed from the bytes it holds (S3; see @factory/storage ObjectInfo) */
  serverDigests?: { sha256?: string; md5?: string };
}

/** What the signing service reads to check an asset: the stored object, its bytes and recorded digests (read-only). */
export interface StoredObjects {
  head(key: string): Promise<StoredObjectInfo | null>;
  get(key: string): Promise<{ info: StoredObjectInfo; body: NodeJS.ReadableStream } | null>;
}

export interface SigningMetrics {
  signed(key: string): void;
}

export interface SigningHandlerDeps {
  /** The cosign key pair (see `loadOrCreateEcKey`). */
  cosign: { privateKey: KeyObject; publicPem: string };
  metrics: SigningMetrics;
  /** the factory's OCI store, to check that what is to be signed is the factory's own content */
  content: StoredManifests;
  /** the factory's object store, to check that an asset's stored bytes match its recorded digests */
  objects: StoredObjects;
  /** host[:port] clients pull from: a signature's docker-reference is `<registryHost>/<repository>` */
  registryHost: string;
}

type SigningJob = 'signing.publicKey' | 'signing.installer' | 'signing.asset';
/** Assignable to the queue's `Handlers`; the handlers do not use the BullMQ job, so tests call them with a payload only. */
export type SigningHandlers = { [K in SigningJob]: (payload: PayloadOf<K>) => Promise<ResultOf<K>> };

export function signingHandlers({ cosign, metrics, content, objects, registryHost }: SigningHandlerDeps): SigningHandlers {
  return {
    'signing.publicKey': async ({ key }) => {
      if (key !== 'cosign') throw badRequest(`unknown key ${JSON.stringify(key)}`);
      return { pem: cosign.publicPem };
    },
    'signing.installer': async ({ repository, digest }) => {
      if (typeof repository !== 'string' || !INSTALLER_REPOSITORY.test(repository)) throw badRequest(`refusing to sign: ${JSON.stringify(repository)} is not an installer repository of this factory`);
      if (typeof digest !== 'string' || !DIGEST.test(digest)) throw badRequest(`refusing to sign: ${JSON.stringify(digest)} is not a sha256 digest`);
      await requireStoredIndex(content, digest);
      const payload = simpleSigningPayload(`${registryHost}/${repository}`, digest);
      metrics.signed('cosign');
      return { payloadBase64: payload.toString('base64'), signatureBase64: signEcdsa(cosign.privateKey, payload).toString('base64') };
    },
    'signing.asset': async (payload) => {
      const { key } = payload;
      if (typeof key !== 'string' || !ASSET_OBJECT_KEY.test(key)) throw badRequest(`refusing to sign: ${JSON.stringify(key)} is not an asset of this factory`);
      const statement = await checkedAssetStatement(objects, key, claimsOf(payload));
      metrics.signed('cosign');
      return { statement, signatureBase64: signEcdsa(cosign.privateKey, statementBytes(statement)).toString('base64') };
    },
  };
}

const HEX = { md5: /^[0-9a-f]{32}$/, sha256: /^[0-9a-f]{64}$/, sha512: /^[0-9a-f]{128}$/ };

/** The claims of a `signing.asset` payload, well-formed; undefined for `{key}` alone (digests in the metadata). */
function claimsOf(payload: AssetClaims | { key: string }): AssetClaims | undefined {
  const p = payload as Partial<AssetClaims>;
  if (p.size === undefined && p.sha256 === undefined && p.sha512 === undefined && p.md5 === undefined) return undefined;
  const bad = (why: string) => badRequest(`refusing to sign ${String(p.key)}: ${why}`);
  if (!Number.isSafeInteger(p.size) || (p.size as number) < 0) throw bad('the claimed size is not a byte count');
  if (typeof p.sha256 !== 'string' || !HEX.sha256.test(p.sha256)) throw bad('the claimed sha256 is not 64 lower-case hex digits');
  // build-workers of earlier versions claim a SHA-512 too: signed when claimed, after being checked like the rest
  if (p.sha512 !== undefined && (typeof p.sha512 !== 'string' || !HEX.sha512.test(p.sha512))) throw bad('the claimed sha512 is not 128 lower-case hex digits');
  if (p.md5 !== undefined && (typeof p.md5 !== 'string' || !HEX.md5.test(p.md5))) throw bad('the claimed md5 is not 32 lower-case hex digits');
  return { key: p.key as string, size: p.size as number, sha256: p.sha256, ...(p.sha512 !== undefined ? { sha512: p.sha512 } : {}), ...(p.md5 !== undefined ? { md5: p.md5 } : {}) };
}

/**
 * The stored object vouched for by the storage server itself: a digest the server computed from the bytes it holds
 * (a full-object SHA-256 checksum, else the MD5 ETag of a single-part upload) equals the one claimed, which the
 * build-worker computed from the same bytes it took the SHA-256 of. Then the stored bytes are the bytes
 * those digests describe without reading them here.
 */
function serverVouches(info: StoredObjectInfo, claims: Pick<AssetClaims, 'sha256' | 'md5'>): boolean {
  const server = info.serverDigests;
  if (!server) return false;
  return server.sha256 === claims.sha256 || (claims.md5 !== undefined && server.md5 === claims.md5);
}

/**
 * The statement of a stored asset, derived here: the claimed digests (or, for `{key}` alone, those recorded in the
 * object's metadata), once the stored object is found to have the claimed size and bytes that match them — by the
 * storage server's own digest of them (serverVouches), else read and hashed by this service. A mismatch is refused
 * (409): never signed. The statement names the object's own key and the stored version that was checked.
 */
async function checkedAssetStatement(objects: StoredObjects, key: string, claimed: AssetClaims | undefined) {
  const refuse = (status: number, why: string) => new FactoryError(status, `refusing to sign ${key}: ${why}`);
  const head = await objects.head(key);
  if (!head) throw refuse(404, "it is not an object in the factory's store");
  const claims = claimed ?? assetRecordFrom(key, head, 'application/octet-stream');
  if (!claims) throw refuse(409, 'no digests were claimed and it carries no recorded digests');
  if (head.size !== claims.size) throw refuse(409, `it holds ${head.size} bytes, not the ${claims.size} claimed`);
  const statement = (stored: StoredObjectInfo) => assetStatement({ key, size: claims.size, sha256: claims.sha256, sha512: claims.sha512 }, validatorOf(stored));
  if (serverVouches(head, { sha256: claims.sha256, md5: claimed?.md5 })) return statement(head);

  const got = await objects.get(key);
  if (!got) throw refuse(404, "it is not an object in the factory's store");
  // {key} alone: the digests recorded with the version read (it may have been replaced since the HEAD)
  const expected = claimed ?? assetRecordFrom(key, got.info, 'application/octet-stream');
  if (!expected) {
    destroyBody(got.body);
    throw refuse(409, 'it carries no recorded digests');
  }
  const actual = await digestStream(got.body, { sha512: expected.sha512 !== undefined });
  if (actual.size !== expected.size || actual.sha256 !== expected.sha256 || actual.sha512 !== expected.sha512) {
    throw refuse(409, `its stored bytes (${actual.size} bytes, sha256 ${actual.sha256}) do not match the ${claimed ? 'claimed' : 'recorded'} digests (${expected.size} bytes, sha256 ${expected.sha256})`);
  }
  return assetStatement({ key, size: expected.size, sha256: expected.sha256, sha512: expected.sha512 }, validatorOf(got.info));
}

/** The signing service's own metrics, registered on `registry`. */
export function registerSigningMetrics(registry: Registry): SigningMetrics {
  const signatures = new Counter({ name: 'factory_signatures_total', help: 'Signatures made', labelNames: ['key'], registers: [registry] });
  return { signed: (key) => signatures.inc({ key }) };
}

/** The digest names an OCI index in the factory's store, and every manifest it lists is stored too. */
async function requireStoredIndex(content: StoredManifests, digest: string): Promise<void> {
  const refuse = (why: string) => new FactoryError(404, `refusing to sign ${digest}: ${why}`);
  const index = await content.getManifest(digest);
  if (!index) throw refuse("it is not a manifest in the factory's store");
  if (index.mediaType !== MediaTypes.ociIndex) throw refuse(`it is a ${index.mediaType}, not an installer index`);
  let manifests: unknown;
  try {
    manifests = (JSON.parse(index.bytes.toString('utf8')) as { manifests?: unknown }).manifests;
  } catch {
    throw refuse('the stored index is not JSON');
  }
  if (!Array.isArray(manifests) || manifests.length === 0) throw refuse('the index lists no manifests');
  for (const m of manifests as Array<{ digest?: unknown }>) {
    if (typeof m?.digest !== 'string' || !(await content.getManifest(m.digest))) throw refuse(`a manifest it lists (${String(m?.digest)}) is not in the factory's store`);
  }
}
