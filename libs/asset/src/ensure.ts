/**
 * The one way any service obtains a stored asset: look it up, else have it built by exactly one `build.asset` job
 * cluster-wide (its job ID derives from the asset key).
 */
import { FactoryError, JobVanishedError } from '@factory/errors';
import { contentTypeFor, talosctlContentType } from '@factory/talos';
import { assetJobId, assetKey, assetObjectKey, TalosctlAssetSpec, TalosctlBinary, talosctlAssetKey } from './identity';
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
  call(name: 'build.asset', payload: BuildAssetPayload, opts: { jobId: string; timeoutMs: number; removeWhenDone: boolean } & BuildWaitOptions): Promise<AssetRecord>;
}

/** How a build is queued and waited for (see AssetTarget.build). */
export interface BuildWaitOptions {
  timeoutMs: number;
  priority?: number;
  /** called once the job is in the queue (added, or joined), before the wait */
  onEnqueued?: () => void;
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
 * One asset to obtain: where it is stored (its key and content type) and how to have it built when missing (one job
 * per asset cluster-wide, its ID derived from the key). Boot assets, disk images and installers are built from an
 * asset profile (profileTarget); talosctl binaries are extracted from their image (talosctlTarget).
 */
export interface AssetTarget {
  /** the asset key (assetKey, talosctlAssetKey): object key and job ID derive from it */
  key: string;
  contentType: string;
  /** Queues the build under `jobId` and waits for it. */
  build(jobId: string, opts: BuildWaitOptions): Promise<unknown>;
}

/** The target of an asset profile: its `build.asset` job. */
export function profileTarget(jobs: AssetBuildCaller, profile: AssetProfile): AssetTarget {
  const key = assetKey(profile);
  return {
    key,
    contentType: contentTypeFor(profile.path),
    build: (jobId, opts) => jobs.call('build.asset', { spec: buildSpecOf(profile), key }, { jobId, removeWhenDone: true, ...opts }),
  };
}

/** Structural: the queue client's `call` for `build.talosctl`. */
export interface TalosctlBuildCaller {
  call(name: 'build.talosctl', payload: TalosctlAssetSpec, opts: { jobId: string; timeoutMs: number; removeWhenDone: boolean } & BuildWaitOptions): Promise<AssetRecord>;
}

/** The target of a talosctl binary: its `build.talosctl` job (extraction from the pinned image). */
export function talosctlTarget(jobs: TalosctlBuildCaller, binary: TalosctlBinary): AssetTarget {
  const key = talosctlAssetKey(binary);
  return {
    key,
    contentType: talosctlContentType(binary.file),
    build: (jobId, opts) => jobs.call('build.talosctl', { ...binary, key }, { jobId, removeWhenDone: true, ...opts }),
  };
}

/**
 * The published asset (object and signature file, see findAsset), built first when missing. Build jobs are removed
 * when done (storage holds the result), so a job can vanish between enqueueing and waiting: then the object is
 * already published.
 */
export function ensureAsset(jobs: AssetBuildCaller, store: AssetLookup, profile: AssetProfile, o: EnsureOptions): Promise<StoredAsset> {
  return ensureStoredAsset(store, profileTarget(jobs, profile), o);
}

/** ensureAsset for any target. */
export async function ensureStoredAsset(store: AssetLookup, target: AssetTarget, o: EnsureOptions): Promise<StoredAsset> {
  const objectKey = assetObjectKey(target.key);
  const find = () => findAsset(store, objectKey, target.contentType);
  const hit = await find();
  o.onStored?.(!!hit);
  if (hit) {
    o.onHit?.(objectKey);
    return hit;
  }
  const jobId = assetJobId(target.key);
  const ticket = (await o.beforeBuild?.(jobId)) ?? {};
  try {
    await target.build(jobId, { timeoutMs: o.timeoutMs, ...(ticket.priority ? { priority: ticket.priority } : {}) });
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
export function ensureVerifiedAsset(jobs: AssetBuildCaller, verifier: AssetVerifier, store: AssetLookup, profile: AssetProfile, o: EnsureOptions): Promise<AssetRecord> {
  return ensureVerifiedStoredAsset(verifier, store, profileTarget(jobs, profile), o);
}

/** ensureVerifiedAsset for any target. */
export async function ensureVerifiedStoredAsset(verifier: AssetVerifier, store: AssetLookup, target: AssetTarget, o: EnsureOptions): Promise<AssetRecord> {
  for (let attempt = 1; ; attempt++) {
    const asset = await ensureStoredAsset(store, target, o);
    const verdict = await verifier.check(asset);
    if (verdict.ok) return asset.record;
    if (verdict.problem !== 'changed') await verifier.quarantine(asset, verdict.problem, verdict.detail);
    if (attempt >= MAX_ATTEMPTS) throw new FactoryError(503, `the stored asset failed verification ${attempt} times (${verdict.problem}); retry later`);
  }
}
