/**
 * Every job the services exchange, declared once: its queue, its payload and its result. Services talk ONLY
 * through these jobs. A handler answers with a Reply: a permanent error (bad input, not found) is a normal reply
 * that carries an HTTP status, so BullMQ never retries it; only unexpected errors fail the job and are retried.
 */

import type { AssetClaims, AssetRecord, AssetStatement, BuildAssetPayload, OciDescriptor, ScrubReport, TalosctlAssetSpec } from '@factory/asset';
import type { EvictionReport } from '@factory/budget';
import type { ExtensionEntry, OverlayEntry, TalosctlRelease } from '@factory/catalog';
import type { SectionDigest } from '@factory/pcr';

export const QUEUES = ['schematic', 'upstream', 'signing', 'build', 'registry', 'maintenance', 'notify'] as const;
export type QueueName = (typeof QUEUES)[number];

/** An installer repository of the factory's registry (`<image>/<schematic>`), see anchor-api §5.2. */
export interface InstallerRef {
  /** `installer`, `installer-secureboot`, `<platform>-installer`, `<platform>-installer-secureboot` */
  image: string;
  schematicId: string;
  platform: string;
  secureboot: boolean;
  /** `vX.Y.Z` (already resolved from `latest`) */
  version: string;
}

export interface JobContracts {
  /**
   * Build (or find) an asset. The job ID is derived from the asset key, so concurrent requests anywhere in the
   * cluster share one build. The payload is the spec of the asset profile the edge resolved and validated (references
   * only: the worker reads the schematic by ID from storage and builds it).
   */
  'build.asset': { queue: 'build'; payload: BuildAssetPayload; result: AssetRecord };

  /**
   * One pass of the storage budget: evict least recently used artifacts until the object store is within budget.
   * Served by build-workers (one pass at a time); added on a schedule and after a publish, with deterministic job IDs.
   */
  'maintenance.evict': { queue: 'maintenance'; payload: { reason: 'schedule' | 'publish' }; result: EvictionReport };

  /**
   * Build (or find) the installer index `<image>/<schematic>:<version>` (amd64 + arm64 installer images, signed),
   * publishing its tag last. Job ID derived from the repository and version: one build however many pullers.
   */
  'registry.installer': { queue: 'registry'; payload: InstallerRef; result: OciDescriptor };

  /** Parse, canonicalize and durably store a schematic (idempotent: the ID is content-derived). */
  'schematic.create': { queue: 'schematic'; payload: { body: string }; result: { id: string; yaml: string; created: boolean } };
  /** Canonical YAML of a stored schematic; 404 reply when unknown. */
  'schematic.get': { queue: 'schematic'; payload: { id: string }; result: { yaml: string } };
  /** Readiness of the schematic store (its object storage answers). */
  'schematic.ping': { queue: 'schematic'; payload: Record<string, never>; result: { storage: string } };

  /** Talos versions offered (imager tags, filtered), or the configured broken list. */
  'upstream.versions': { queue: 'upstream'; payload: { broken: boolean }; result: { versions: string[] } };
  'upstream.extensions': { queue: 'upstream'; payload: { version: string }; result: { extensions: ExtensionEntry[] } };
  'upstream.overlays': { queue: 'upstream'; payload: { version: string }; result: { overlays: OverlayEntry[] } };
  /** Readiness of the upstream registry (reachable, catalog readable). */
  'upstream.ping': { queue: 'upstream'; payload: Record<string, never>; result: { registry: string } };

  /** Public half of a key held by the signing service. */
  'signing.publicKey': { queue: 'signing'; payload: { key: 'cosign' }; result: { pem: string } };
  /**
   * Cosign-sign an installer index of the factory's registry. The signing service signs only what it can check: it
   * derives the simple-signing payload itself (`<factory host>/<repository>`, digest) after finding the index, and
   * every manifest it lists, in the factory's own OCI store — never a caller's bytes.
   */
  'signing.installer': { queue: 'signing'; payload: { repository: string; digest: string }; result: { payloadBase64: string; signatureBase64: string } };
  /**
   * Sign the digests of a stored asset (`assets/<key>`). The payload is what the build-worker claims about the bytes
   * it stored (AssetClaims; `{key}` alone: the digests recorded in the object's metadata, as earlier versions stored
   * them). The signing service signs only what it checked: the stored size, then the stored bytes — vouched for by
   * the storage server's own digest of them (a full-object SHA-256 checksum, or the MD5 ETag of a single-part upload
   * equal to the claimed MD5), else read and hashed — and signs the statement {key, size, sha256, stored} (and the
   * sha512 an earlier build-worker claimed) only when they match (else a 409 reply). The caller stores the signature next to the asset (its `.sig`).
   */
  'signing.asset': { queue: 'signing'; payload: AssetClaims | { key: string }; result: { statement: AssetStatement; signatureBase64: string } };

  /** Verify every stored asset at rest (signature and digests), quarantining what fails (build-worker; scheduled). */
  'maintenance.scrub': { queue: 'maintenance'; payload: Record<string, never>; result: ScrubReport };

  /**
   * Public Secure Boot material of the signing service: the UKI signing certificate (what `/secureboot/signing-cert.pem`
   * serves, and db of the enrolment databases) and the PCR public key (the `.pcrpkey` section). `enabled: false` when
   * Secure Boot is not configured.
   */
  'signing.secureBootPublic': { queue: 'signing'; payload: Record<string, never>; result: SecureBootPublic };
  /**
   * Sign the PCR 11 policy of one UKI profile (talos-formats §6.3). The caller sends the digests of the sections the
   * stub measures for that profile (base sections with the profile's own in their place, `profileSections`); the
   * signing service recomputes the PCR values and policy digests itself, signs only when the `.pcrpkey` section is its
   * own PCR public key, and returns the `.pcrsig` section's JSON.
   */
  'signing.pcrPolicy': { queue: 'signing'; payload: { sections: SectionDigest[] }; result: { pcrsig: string } };
  /**
   * Authenticode-sign a PE image (sd-boot, UKI) given its SHA-256 Authenticode digest (hex), which the build-worker
   * computes (@factory/authenticode authenticodeDigest). The signing service builds the SpcIndirectDataContent
   * SignedData itself: it signs only that structure, never caller bytes. Result: the SignedData (ContentInfo DER) the
   * worker embeds as the image's WIN_CERTIFICATE (signPeFile).
   */
  'signing.authenticode': { queue: 'signing'; payload: { sha256: string }; result: { signedDataBase64: string } };
  /**
   * PK/KEK/db `.auth` files (EFI_VARIABLE_AUTHENTICATION_2) enrolling the Secure Boot certificate, base64.
   * `includeWellKnownCertificates` (the schematic's option) appends the well-known Microsoft certificates to KEK and db
   * (talos-formats §7.5); absent or false gives the files without them.
   */
  'signing.secureBootEnrollment': {
    queue: 'signing';
    payload: { includeWellKnownCertificates?: boolean };
    result: { PK: string; KEK: string; db: string };
  };

  /**
   * The talosctl binaries of a Talos version (root files of its verified `talosctl-all` image, listed from the layers'
   * tar headers, sorted) and the image digest they are pinned to; 404 reply when the version is not offered or has no
   * such image; no files before Talos 1.11.
   */
  'upstream.talosctl': { queue: 'upstream'; payload: { version: string }; result: TalosctlRelease };
  /**
   * Extract one talosctl binary from the `talosctl-all` image pinned by digest and publish it as an asset (stored,
   * signed, `.sig` last), like any built asset. Job ID derived from the asset key (talosctlAssetKey).
   */
  'build.talosctl': { queue: 'build'; payload: TalosctlAssetSpec; result: AssetRecord };

  /**
   * One webhook delivery (gateway; issue 14): POST `body` (the exact bytes that are signed, the same on every attempt)
   * to the hook's URL. The job ID is the delivery's ID, derived from the hook and the event, so every gateway that
   * sees an event queues the same job once. 6 attempts with exponential backoff; a permanent refusal (see
   * services/gateway/src/notify/delivery.ts) is an answer, not a failure, and is not retried.
   */
  'notify.deliver': { queue: 'notify'; payload: WebhookDeliveryPayload; result: { delivered: boolean; status?: number; error?: string } };
  /**
   * The periodic Talos version check (one per cluster: a job scheduler with a fixed ID): versions never seen before
   * get their pre-warm builds queued (priority `prewarm`) and a `version.available` event.
   */
  'notify.versionCheck': { queue: 'notify'; payload: Record<string, never>; result: { newVersions: string[] } };
}

/** What a `notify.deliver` job carries: references and the signed body, never the hook's secret. */
export interface WebhookDeliveryPayload {
  hookId: string;
  deliveryId: string;
  event: string;
  /** the JSON body as sent (the signature is over these bytes) */
  body: string;
}

/** The Secure Boot public material; `pkCertPem`/`kekCertPem` only when own PK/KEK are configured (else the signing certificate plays them). */
export type SecureBootPublic = { enabled: false } | { enabled: true; signingCertPem: string; pcrPublicKeyPem: string; pkCertPem?: string; kekCertPem?: string };

export type JobName = keyof JobContracts;
export type PayloadOf<K extends JobName> = JobContracts[K]['payload'];
export type ResultOf<K extends JobName> = JobContracts[K]['result'];

export const JOB_QUEUE: { [K in JobName]: JobContracts[K]['queue'] } = {
  'schematic.create': 'schematic',
  'schematic.get': 'schematic',
  'schematic.ping': 'schematic',
  'upstream.versions': 'upstream',
  'upstream.extensions': 'upstream',
  'upstream.overlays': 'upstream',
  'upstream.ping': 'upstream',
  'build.asset': 'build',
  'maintenance.evict': 'maintenance',
  'registry.installer': 'registry',
  'signing.publicKey': 'signing',
  'signing.installer': 'signing',
  'signing.asset': 'signing',
  'maintenance.scrub': 'maintenance',
  'signing.secureBootPublic': 'signing',
  'signing.pcrPolicy': 'signing',
  'signing.authenticode': 'signing',
  'signing.secureBootEnrollment': 'signing',
  'upstream.talosctl': 'upstream',
  'build.talosctl': 'build',
  'notify.deliver': 'notify',
  'notify.versionCheck': 'notify',
};

export type Reply<T> = { ok: true; value: T } | { ok: false; status: number; message: string };
