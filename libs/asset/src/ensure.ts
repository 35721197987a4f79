/**
 * The one way any service obtains a stored asset: look it up, else have it built by exactly one `build.asset` job
 * cluster-wide (its job ID derives from the asset key).
 */
import { FactoryError, JobVanishedError } from '@factory/errors';
import { contentTypeFor } from '@factory/talos';
import { assetJobId, assetKey, assetObjectKey } from './identity';
import { AssetLookup, AssetVerifier, findAsset, StoredAsset } from './integrity';
import { AssetBuildSpec, AssetProfile, buildSpecOf } from './profile';
import type { AssetRecord } from './record';

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

export interface EnsureOptions {
  timeoutMs: number;
  /** Told whether the asset was found published (true) or had to be built (false). */
  onStored?: (hit: boolean) => void;
  /** Called with the object key when the asset was found stored (its last access, for the storage budget). */
  onHit?: (objectKey: string) => void;
  /**
   * Called on a storage miss, before the build is queued, with the build's job ID: admission (it may throw, e.g. a
   * 429) and the priority of the job. Cache hits never reach it.
   */
  beforeBuild?: (jobId: string) => Promise<BuildTicket>;
}

/**
 * The published asset (object and signature file, see findAsset), built first when missing. Build jobs are removed
 * when done (storage holds the result), so a job can vanish between enqueueing and waiting: then the object is
 * already published.
 */
export async function ensureAsset(jobs: AssetBuildCaller, store: AssetLookup, profile: AssetProfile, o: EnsureOptions): Promise<StoredAsset> {
  const key = assetKey(profile);
  const objectKey = assetObjectKey(key);
  const find = () => findAsset(store, objectKey, contentTypeFor(profile.path));
  const hit = await find();
  o.onStored?.(!!hit);
  if (hit) {
    o.onHit?.(objectKey);
    return hit;
  }
  const jobId = assetJobId(key);
  const ticket = (await o.beforeBuild?.(jobId)) ?? {};
  try {
    await jobs.call('build.asset', { spec: buildSpecOf(profile), key }, { jobId, timeoutMs: o.timeoutMs, removeWhenDone: true, ...(ticket.priority ? { priority: ticket.priority } : {}) });
  } catch (err) {
    if (!(err instanceof JobVanishedError)) throw err;
  } finally {
    ticket.release?.();
  }
  const published = await find();
  if (!published) throw new FactoryError(503, 'asset disappeared from storage; retry');
  return published;
}

/** How many times a request looks again (after a quarantine and rebuild, or a concurrent replacement) before a 503. */
const MAX_ATTEMPTS = 3;

/**
 * The published asset, verified before anything is served from it (AssetVerifier): a corrupted or forged one is
 * quarantined and rebuilt through ensureAsset, and the rebuilt one is verified in turn.
 */
export async function ensureVerifiedAsset(jobs: AssetBuildCaller, verifier: AssetVerifier, store: AssetLookup, profile: AssetProfile, o: EnsureOptions): Promise<AssetRecord> {
  for (let attempt = 1; ; attempt++) {
    const asset = await ensureAsset(jobs, store, profile, o);
    const verdict = await verifier.check(asset);
    if (verdict.ok) return asset.record;
    if (verdict.problem !== 'changed') await verifier.quarantine(asset, verdict.problem, verdict.detail);
    if (attempt >= MAX_ATTEMPTS) throw new FactoryError(503, `the stored asset failed verification ${attempt} times (${verdict.problem}); retry later`);
  }
}
