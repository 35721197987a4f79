import { createHash } from 'node:crypto';
import type { AssetSpec } from './contracts';

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
