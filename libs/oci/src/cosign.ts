/**
 * Cosign "simple signing" with a key (legacy `sha256-<hex>.sig` tag scheme): payload construction, verification, signing.
 */
import { goJsonString } from '@factory/gocompat';
import { createPrivateKey, createPublicKey, KeyObject, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { RegistryClient } from './client';
import { CosignError, OciError } from './errors';
import { MediaTypes, isImageManifestMediaType, parseDigest, sha256Digest } from './media';

export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_PAYLOAD_TYPE = 'cosign container image signature';
/** Signature payloads are tiny; anything bigger is refused. */
const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** At most this many signature layers are examined. */
const MAX_SIGNATURE_LAYERS = 100;

/** "sha256:abc" → "sha256-abc.sig" */
export function cosignSignatureTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex}.sig`;
}

/**
 * The exact bytes cosign signs:
 * {"critical":{"identity":{"docker-reference":"…"},"image":{"docker-manifest-digest":"…"},"type":"cosign container image signature"},"optional":null}
 */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(
    `{"critical":{"identity":{"docker-reference":${goJsonString(dockerReference)}},` +
    `"image":{"docker-manifest-digest":${goJsonString(manifestDigest)}},` +
    `"type":${goJsonString(COSIGN_PAYLOAD_TYPE)}},"optional":null}`,
    'utf8',
  );
}

function loadPublicKey(publicKey: string | KeyObject): KeyObject {
  try {
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
    const t = key.asymmetricKeyType;
    if (t !== 'ec' && t !== 'rsa' && t !== 'ed25519') throw new Error(`unsupported key type ${t}`);
    return key;
  } catch (err) {
    throw new CosignError('BAD_KEY', `cosign: cannot load public key: ${(err as Error).message}`, { cause: err });
  }
}

/** ECDSA (DER) and RSA PKCS#1 v1.5 over SHA-256; Ed25519 over the raw payload — the key types cosign supports. */
function verifyRaw(key: KeyObject, payload: Buffer, signature: Buffer): boolean {
  try {
    return cryptoVerify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key, signature);
  } catch {
    return false;
  }
}

export interface VerifyCosignOptions {
  /** if set, the payload's critical.identity.docker-reference must equal this (cosign itself does not check it by default) */
  dockerReference?: string;
}

/** Result details of a successful verification. */
export interface CosignVerification {
  /** the verified payload (parsed) */
  payload: any;
  /** index of the layer that verified */
  layer: number;
}

/**
 * Verifies a key-based cosign signature of `repo@digest` (signature manifest at tag `sha256-<hex>.sig` of the same repo).
 * Accepts if ANY simple-signing layer's payload verifies with the key AND names this digest and the cosign payload type.
 * Throws CosignError (NO_SIGNATURE / BAD_KEY / INVALID_SIGNATURE); transport problems surface as OciError.
 */
export async function verifyCosignSignature(
  client: RegistryClient, repo: string, digest: string, publicKeyPem: string | KeyObject, opts: VerifyCosignOptions = {},
): Promise<CosignVerification> {
  const key = loadPublicKey(publicKeyPem);
  const tag = cosignSignatureTag(digest);
  const subject = `${repo}@${digest}`;
  let sig;
  try {
    sig = await client.getManifest(repo, tag);
  } catch (err) {
    if (err instanceof OciError && err.code === 'NOT_FOUND') {
      throw new CosignError('NO_SIGNATURE', `cosign: no signatures found for ${subject} (no ${tag} tag)`, { cause: err });
    }
    throw err;
  }
  if (!isImageManifestMediaType(sig.mediaType) || !Array.isArray(sig.json.layers)) {
    throw new CosignError('NO_SIGNATURE', `cosign: ${repo}:${tag} is a ${sig.mediaType}, not a signature manifest`);
  }
  const layers: any[] = sig.json.layers.slice(0, MAX_SIGNATURE_LAYERS);
  const problems: string[] = [];
  let candidates = 0;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    if (!l || l.mediaType !== MediaTypes.cosignSimpleSigning) continue;
    candidates++;
    const b64 = l.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
    if (typeof b64 !== 'string' || !b64) { problems.push(`layer ${i}: no ${COSIGN_SIGNATURE_ANNOTATION} annotation`); continue; }
    if (typeof l.digest !== 'string' || typeof l.size !== 'number' || l.size > MAX_PAYLOAD_BYTES) {
      problems.push(`layer ${i}: bad payload descriptor`);
      continue;
    }
    let payload: Buffer;
    try {
      payload = await client.getBlob(repo, l.digest, MAX_PAYLOAD_BYTES);
    } catch (err) {
      if (err instanceof OciError && (err.code === 'UNAVAILABLE' || err.code === 'UNAUTHORIZED')) throw err;
      problems.push(`layer ${i}: payload: ${(err as Error).message}`);
      continue;
    }
    const signature = Buffer.from(b64, 'base64');
    if (!signature.length || !verifyRaw(key, payload, signature)) {
      problems.push(`layer ${i}: invalid signature`);
      continue;
    }
    let json: any;
    try { json = JSON.parse(payload.toString('utf8')); } catch { problems.push(`layer ${i}: payload is not JSON`); continue; }
    const critical = json?.critical;
    if (critical?.type !== COSIGN_PAYLOAD_TYPE) { problems.push(`layer ${i}: payload type is ${JSON.stringify(critical?.type)}`); continue; }
    const named = critical?.image?.['docker-manifest-digest'];
    if (named !== digest) { problems.push(`layer ${i}: payload names digest ${JSON.stringify(named)}`); continue; }
    if (opts.dockerReference !== undefined && critical?.identity?.['docker-reference'] !== opts.dockerReference) {
      problems.push(`layer ${i}: payload identity ${JSON.stringify(critical?.identity?.['docker-reference'])} is not ${opts.dockerReference}`);
      continue;
    }
    return { payload: json, layer: i };
  }
  if (!candidates) throw new CosignError('NO_SIGNATURE', `cosign: ${repo}:${tag} has no simple-signing layers`);
  throw new CosignError('INVALID_SIGNATURE', `cosign: no valid signature for ${subject}: ${problems.join('; ')}`);
}

export interface CosignSignOptions {
  /** replace the existing signature manifest instead of appending a layer to it (default false: cosign appends) */
  replace?: boolean;
  /** config "created" timestamp (default: now) */
  created?: Date;
}

/** Signs payload bytes with a PEM (EC PRIVATE KEY / PKCS#8) or KeyObject private key; returns the base64 signature. */
export function signPayload(privateKey: string | KeyObject, payload: Buffer): string {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  return cryptoSign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key).toString('base64');
}

/**
 * Signs `repo@digest` and pushes the signature manifest at `sha256-<hex>.sig` in the same repository
 * (OCI manifest, OCI config, one simple-signing layer per signature). Returns the signature manifest digest.
 */
export async function pushCosignSignature(
  client: RegistryClient, repo: string, digest: string, privateKey: string | KeyObject, dockerReference: string,
  opts: CosignSignOptions = {},
): Promise<string> {
  const tag = cosignSignatureTag(digest);
  const payload = simpleSigningPayload(dockerReference, digest);
  const signature = signPayload(privateKey, payload);
  const payloadDigest = await client.pushBlob(repo, payload);
  const layer = { mediaType: MediaTypes.cosignSimpleSigning, size: payload.length, digest: payloadDigest,
    annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature } };
  let layers: any[] = [];
  if (!opts.replace) {
    try {
      const existing = await client.getManifest(repo, tag);
      if (Array.isArray(existing.json.layers)) layers = existing.json.layers.filter((l: any) => l && typeof l.digest === 'string');
    } catch (err) {
      if (!(err instanceof OciError && err.code === 'NOT_FOUND')) throw err;
    }
  }
  layers.push(layer);
  const created = (opts.created ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const config = Buffer.from(JSON.stringify({
    architecture: '', created, history: layers.map(() => ({ created })), os: '',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {},
  }));
  const configDigest = await client.pushBlob(repo, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, size: config.length, digest: configDigest },
    layers,
  }));
  await client.pushManifest(repo, tag, MediaTypes.ociManifest, manifest);
  return sha256Digest(manifest);
}
