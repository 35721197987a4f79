/**
 * What names one downloadable asset: schematic, Talos version and the normalized request of its path. Two requests
 * with the same identity are the same asset (`x86_64` and `amd64` are one), hence one object and one build.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { AssetRequest } from '@factory/talos';

export interface AssetIdentity extends AssetRequest {
  schematicId: string;
  /** `vX.Y.Z` */
  version: string;
  /** The canonical asset path (e.g. `metal-amd64.iso`): content type and default download name. */
  path: string;
  /**
   * Secure Boot outputs only: hex SHA-256 of the signing certificate's DER (signingCertificateSha256) the edge was
   * told about. Part of the asset key, so a rotated key never serves assets signed with the old one; the build-worker
   * refuses to build when the signing service's certificate is another.
   */
  signingCertSha256?: string;
}

/** Hex SHA-256 of an X.509 certificate's DER (the first certificate of a PEM). */
export function signingCertificateSha256(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

/**
 * Bump when the bytes a build produces change for the same inputs (a fix in an imaging step), so old cached assets
 * are not served for new requests.
 */
export const ASSET_RECIPE = 1;

/** Content-derived key of an asset: the object-store key and the BullMQ job ID both derive from it. */
export function assetKey(a: AssetIdentity): string {
  const identity = {
    recipe: ASSET_RECIPE,
    schematicId: a.schematicId,
    version: a.version,
    kind: a.kind,
    platform: a.platform,
    arch: a.arch,
    secureboot: a.secureboot,
    outFormat: a.outFormat,
    disk: a.disk ?? null,
    // only present for Secure Boot outputs: every other key stays what it was
    ...(a.signingCertSha256 ? { signingCertSha256: a.signingCertSha256 } : {}),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** Every built asset's object key starts with this (the storage budget evicts only under it). */
export const ASSET_OBJECT_PREFIX = 'assets/';
export const assetObjectKey = (key: string) => `${ASSET_OBJECT_PREFIX}${key}`;
export const assetJobId = (key: string) => `asset-${key}`;
