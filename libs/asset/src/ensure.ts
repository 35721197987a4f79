/**
 * The one way any service obtains a stored asset: look it up, else have it built by exactly one `build.asset` job
 * cluster-wide (its job ID derives from the asset key).
 */
import { JobVanishedError } from '@factory/errors';
import { contentTypeFor } from '@factory/talos';
import { assetJobId, assetKey, assetObjectKey } from './identity';
import { AssetBuildSpec, AssetProfile, buildSpecOf } from './profile';
import { AssetRecord, assetRecordFrom, StoredObjectInfo } from './record';

/**
 * The payload of a `build.asset` job: the spec of the resolved profile (references only: the build-worker reads the
 * schematic by ID) and the asset key.
 */
export interface BuildAssetPayload {
  spec: AssetBuildSpec;
  key: string;
}

/** Structural: the queue client's `call` for `build.asset`. */
export interface AssetBuildCaller {
  call(name: 'build.asset', payload: BuildAssetPayload, opts: { jobId: string; timeoutMs: number; removeWhenDone: boolean }): Promise<AssetRecord>;
}

export interface ObjectLookup {
  head(key: string): Promise<StoredObjectInfo | null>;
}

/**
 * The stored asset, built first when missing. Build jobs are removed when done (storage holds the result), so a job
 * can vanish between enqueueing and waiting: then the object is already published.
 */
export async function ensureAsset(
  jobs: AssetBuildCaller,
  store: ObjectLookup,
  profile: AssetProfile,
  o: {
    timeoutMs: number;
    onStored?: (hit: boolean) => void;
    /** Called with the object key when the asset was found stored (its last access, for the storage budget). */
    onHit?: (objectKey: string) => void;
  },
): Promise<AssetRecord> {
  const key = assetKey(profile);
  const objectKey = assetObjectKey(key);
  const fallbackContentType = contentTypeFor(profile.path);
  const hit = assetRecordFrom(objectKey, await store.head(objectKey), fallbackContentType);
  o.onStored?.(!!hit);
  if (hit) {
    o.onHit?.(objectKey);
    return hit;
  }
  try {
    return await jobs.call('build.asset', { spec: buildSpecOf(profile), key }, { jobId: assetJobId(key), timeoutMs: o.timeoutMs, removeWhenDone: true });
  } catch (err) {
    if (err instanceof JobVanishedError) {
      const published = assetRecordFrom(objectKey, await store.head(objectKey), fallbackContentType);
      if (published) return published;
    }
    throw err;
  }
}
