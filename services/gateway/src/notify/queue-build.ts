/**
 * The one seam between pre-warm and the builds: queue the build of one asset, resolved and validated exactly as
 * `/image` resolves it, under the asset's job ID (`asset-<key>`: a later `/image` request of that asset waits on this
 * very build), without waiting for it. An asset already stored is not built again.
 */
import type { Queue } from 'bullmq';
import { assetJobId, assetKey, assetObjectKey, AssetLookup, AssetProfile, buildSpecOf, findAsset } from '@factory/asset';
import type { PayloadOf } from '@factory/queue';
import { contentTypeFor } from '@factory/talos';
import type { QueueBuild } from './service';

export function queueAssetBuild(o: { profile: (schematic: string, version: string, assetPath: string) => Promise<AssetProfile>; store: AssetLookup; buildQueue: () => Queue }): QueueBuild {
  return async (schematic, version, assetPath, priority) => {
    const profile = await o.profile(schematic, version, assetPath);
    const key = assetKey(profile);
    if (await findAsset(o.store, assetObjectKey(key), contentTypeFor(profile.path))) return 'stored';
    const payload: PayloadOf<'build.asset'> = { spec: buildSpecOf(profile), key };
    // removed when done, like every build job (storage holds the result)
    await o.buildQueue().add('build.asset', payload, { jobId: assetJobId(key), priority, removeOnComplete: true, removeOnFail: true });
    return 'queued';
  };
}
