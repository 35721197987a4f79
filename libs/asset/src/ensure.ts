/**
 * The one way any service obtains a stored asset: look it up, else have it built by exactly one `build.asset` job
 * cluster-wide (its job ID derives from the asset key).
 */
import { JobVanishedError } from '@factory/errors';
import { contentTypeFor } from '@factory/talos';
import { assetJobId, assetKey, assetObjectKey } from './identity';
import type { AssetProfile } from './profile';
import { AssetRecord, assetRecordFrom, StoredObjectInfo } from './record';

/** The payload of a `build.asset` job: the resolved profile and its key. */
export interface BuildAssetPayload {
  profile: AssetProfile;
  key: string;
}

/** Structural: the queue client's `call` for `build.asset`. */
export interface AssetBuildCaller {
  call(name: 'build.asset', payload: BuildAssetPayload, opts: { jobId: string; timeoutMs: number; removeWhenDone: boolean; priority?: number }): Promise<AssetRecord>;
}

/**
 * What a caller decided about a build it is about to queue (see `beforeBuild`): the BullMQ priority the job gets if
 * this request creates it (lower runs first; a job already queued by someone else keeps its own), and what to do
 * once the wait is over, whatever its outcome.
 */
export interface BuildTicket {
  priority?: number;
  release?: () => void;
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
    /**
     * Called on a storage miss, before the build is queued, with the build's job ID: admission (it may throw, e.g. a
     * 429) and the priority of the job. Cache hits never reach it.
     */
    beforeBuild?: (jobId: string) => Promise<BuildTicket>;
  },
): Promise<AssetRecord> {
  const key = assetKey(profile);
  const objectKey = assetObjectKey(key);
  const fallbackContentType = contentTypeFor(profile.path);
  const hit = assetRecordFrom(objectKey, await store.head(objectKey), fallbackContentType);
  o.onStored?.(!!hit);
  if (hit) return hit;
  const jobId = assetJobId(key);
  const ticket = (await o.beforeBuild?.(jobId)) ?? {};
  try {
    return await jobs.call('build.asset', { profile, key }, { jobId, timeoutMs: o.timeoutMs, removeWhenDone: true, ...(ticket.priority ? { priority: ticket.priority } : {}) });
  } catch (err) {
    if (err instanceof JobVanishedError) {
      const published = assetRecordFrom(objectKey, await store.head(objectKey), fallbackContentType);
      if (published) return published;
    }
    throw err;
  } finally {
    ticket.release?.();
  }
}
