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

/** One talosctl binary: a root file of `siderolabs/talosctl-all:<version>`, pinned by the image's digest. */
export interface TalosctlBinary {
  /** `vX.Y.Z` */
  version: string;
  /** digest of the talosctl-all image (index) the file is read from */
  digest: string;
  /** `talosctl-<os>-<arch>[.exe]` (isTalosctlFileName) */
  file: string;
}

/** What a `build.talosctl` job carries: the binary and its asset key. */
export interface TalosctlAssetSpec extends TalosctlBinary {
  key: string;
}

/**
 * Content-derived key of a talosctl binary: a new upstream image for the version (another digest) is another asset.
 * Its own namespace (`talosctl`) keeps it apart from every schematic asset's key.
 */
export function talosctlAssetKey(b: TalosctlBinary): string {
  const identity = { recipe: ASSET_RECIPE, talosctl: { version: b.version, digest: b.digest, file: b.file } };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** Every built asset's object key starts with this (the storage budget evicts only under it). */
export const ASSET_OBJECT_PREFIX = 'assets/';
export const assetObjectKey = (key: string) => `${ASSET_OBJECT_PREFIX}${key}`;
export const assetJobId = (key: string) => `asset-${key}`;
