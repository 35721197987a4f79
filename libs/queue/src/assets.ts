import { createHash } from 'node:crypto';
import type { CallOptions } from './client';
import { JobVanishedError } from './client';
import type { AssetRecord, AssetSpec, OciDescriptor, PayloadOf } from './contracts';

/**
 * Bump when the bytes a build produces change for the same inputs (a fix in an imaging step), so old cached assets
 * are not served for new requests.
 */
export const ASSET_RECIPE = 1;

/** Content-derived key of an asset: the object-store key and the BullMQ job ID both derive from it. */
export function assetKey(spec: AssetSpec): string {
  const identity = {
    recipe: ASSET_RECIPE,
    schematicId: spec.schematicId,
    version: spec.version,
    kind: spec.kind,
    platform: spec.platform,
    arch: spec.arch,
    secureboot: spec.secureboot,
    outFormat: spec.outFormat,
    disk: spec.disk ?? null,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

export const assetObjectKey = (key: string) => `assets/${key}`;
export const assetJobId = (key: string) => `asset-${key}`;

/** Object metadata keys that carry an installer tarball's OCI manifest descriptor (see AssetRecord.image). */
const IMAGE_META = { mediaType: 'oci-media-type', digest: 'oci-digest', size: 'oci-size' } as const;

export function imageMetadata(image: OciDescriptor): Record<string, string> {
  return { [IMAGE_META.mediaType]: image.mediaType, [IMAGE_META.digest]: image.digest, [IMAGE_META.size]: String(image.size) };
}

/** What an object store says about a stored asset (structural: any store's `head` result fits). */
export interface StoredObjectInfo {
  size: number;
  sha256?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/** The AssetRecord of a published asset object; undefined while it is not (completely) published. */
export function assetRecordFrom(objectKey: string, info: StoredObjectInfo | null, fallbackContentType: string): AssetRecord | undefined {
  if (!info?.sha256) return undefined;
  const record: AssetRecord = { key: objectKey, size: info.size, sha256: info.sha256, contentType: info.contentType ?? fallbackContentType };
  const m = info.metadata ?? {};
  if (m[IMAGE_META.digest] && m[IMAGE_META.mediaType]) {
    record.image = { mediaType: m[IMAGE_META.mediaType], digest: m[IMAGE_META.digest], size: Number(m[IMAGE_META.size]) };
  }
  return record;
}

export interface AssetBuildCaller {
  call(name: 'build.asset', payload: PayloadOf<'build.asset'>, opts: CallOptions): Promise<AssetRecord>;
}

/**
 * The stored asset, built first when missing (one build cluster-wide: the job ID derives from the asset key).
 * Build jobs are removed when done (storage holds the result), so a job can vanish between enqueueing and waiting:
 * then the object is already published.
 */
export async function ensureAsset(
  jobs: AssetBuildCaller,
  store: { head(key: string): Promise<StoredObjectInfo | null> },
  payload: PayloadOf<'build.asset'>,
  o: { fallbackContentType: string; timeoutMs: number; onStored?: (hit: boolean) => void },
): Promise<AssetRecord> {
  const objectKey = assetObjectKey(payload.key);
  const hit = assetRecordFrom(objectKey, await store.head(objectKey), o.fallbackContentType);
  o.onStored?.(!!hit);
  if (hit) return hit;
  try {
    return await jobs.call('build.asset', payload, { jobId: assetJobId(payload.key), timeoutMs: o.timeoutMs, removeWhenDone: true });
  } catch (err) {
    if (err instanceof JobVanishedError) {
      const published = assetRecordFrom(objectKey, await store.head(objectKey), o.fallbackContentType);
      if (published) return published;
    }
    throw err;
  }
}
