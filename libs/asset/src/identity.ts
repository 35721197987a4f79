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
   * Secure Boot outputs only: names the certificates they are signed with and enrol (secureBootSignerId), so that a
   * rotated key gives new assets instead of serving ones signed with, or enrolling, the old one.
   */
  signer?: string;
}

/** Hex SHA-256 of a signing certificate's PEM text. */
export function signingCertificateSha256(certPem: string): string {
  return createHash('sha256').update(certPem).digest('hex');
}

/** The certificates a Secure Boot asset's bytes depend on: the signing certificate, and own PK and KEK when configured. */
export interface SecureBootCertificates {
  signingCertPem: string;
  pkCertPem?: string;
  kekCertPem?: string;
}

/**
 * What names a Secure Boot signer in asset identities. With the signing certificate alone (it then plays PK, KEK and
 * db, as in the anchor) it is that certificate's SHA-256, as in every earlier version, so existing assets keep their
 * keys. Own PK and KEK certificates, which ISOs and disk images enrol, are named too: configuring or rotating them
 * gives new assets rather than serving ones that enrol the old keys.
 */
export function secureBootSignerId(certs: SecureBootCertificates): string {
  if (!certs.pkCertPem && !certs.kekCertPem) return signingCertificateSha256(certs.signingCertPem);
  const named = { signing: certs.signingCertPem, pk: certs.pkCertPem ?? null, kek: certs.kekCertPem ?? null };
  return createHash('sha256').update(JSON.stringify(named)).digest('hex');
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
