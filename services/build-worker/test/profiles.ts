/** Asset profiles for the recipe tests: a plain metal amd64 kernel of v1.11.3 unless `over` says otherwise. */
import type { AssetProfile } from '@factory/asset';

export const testProfile = (over: Partial<AssetProfile>): AssetProfile => ({
  schematicId: 'f'.repeat(64),
  version: 'v1.11.3',
  kind: 'kernel',
  platform: 'metal',
  arch: 'amd64',
  secureboot: false,
  outFormat: 'raw',
  path: 'kernel-amd64',
  schematicYaml: 'customization: {}\n',
  extensions: [],
  extraKernelArgs: [],
  meta: [],
  sectorSize: 512,
  ...over,
});
