/**
 * What names one downloadable asset: schematic, Talos version and the normalized request of its path. Two requests
 * with the same identity are the same asset (`x86_64` and `amd64` are one), hence one object and one build.
 */
import { createHash } from 'node:crypto';
import type { AssetRequest } from '@factory/talos';

export interface AssetIdentity extends AssetRequest {
  schematicId: string;
  /** `vX.Y.Z` */
  version: string;
  /** The canonical asset path (e.g. `metal-amd64.iso`): content type and default download name. */
  path: string;
  /**
   * Secure Boot outputs only: the SHA-256 (hex) of the signing certificate they are signed with, so that a rotated key
   * gives new assets instead of serving ones signed with the old key (signingCertificateSha256).
   */
  signer?: string;
}

/** What names a Secure Boot signer in asset identities: hex SHA-256 of its signing certificate's PEM text. */
export function signingCertificateSha256(certPem: string): string {
  return createHash('sha256').update(certPem).digest('hex');
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
    // absent for outputs that are not signed, keeping their keys as they were
    ...(a.signer ? { signer: a.signer } : {}),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** Every built asset's object key starts with this (the storage budget evicts only under it). */
export const ASSET_OBJECT_PREFIX = 'assets/';
export const assetObjectKey = (key: string) => `${ASSET_OBJECT_PREFIX}${key}`;
export const assetJobId = (key: string) => `asset-${key}`;
