/** Installer images are made of the same asset profiles as `/image/<id>/<v>/installer-<arch>.tar` downloads. */
import { assetKey, resolveAssetProfile } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import { parseSchematic } from '@factory/schematic';
import { formatAssetPath, parseAssetPath } from '@factory/talos';
import { installerProfiles } from '../src/installers';

const catalog = {
  versions: async () => ['v1.11.3'],
  extensions: async () => [{ name: 'siderolabs/hello', ref: 'r', digest: `sha256:${'a'.repeat(64)}`, author: '', description: '' }],
  overlays: async () => [],
};
const yaml = 'customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/hello\n';
const id = 'e'.repeat(64);

test('amd64 and arm64 profiles with the keys of the tarball downloads', async () => {
  const ref = { image: 'aws-installer', schematicId: id, platform: 'aws', secureboot: false, version: 'v1.11.3' };
  const profiles = await installerProfiles(ref, yaml, catalog);
  expect(profiles.map((p) => [p.arch, p.path])).toEqual([
    ['amd64', 'aws-installer-amd64.tar'],
    ['arm64', 'aws-installer-arm64.tar'],
  ]);
  for (const p of profiles) {
    const download = await resolveAssetProfile(
      { schematicId: id, schematic: parseSchematic(yaml), schematicYaml: yaml, rawVersion: '1.11.3', parsePath: () => parseAssetPath(p.path), assetPath: formatAssetPath },
      catalog,
    );
    expect(assetKey(download)).toBe(assetKey(p));
    expect(p.extensions).toEqual([{ name: 'siderolabs/hello', digest: `sha256:${'a'.repeat(64)}` }]);
  }
});

test('secure boot installers and unavailable versions fail before any build', async () => {
  const sb = installerProfiles({ image: 'installer-secureboot', schematicId: id, platform: 'metal', secureboot: true, version: 'v1.11.3' }, yaml, catalog);
  await expect(sb).rejects.toEqual(new FactoryError(400, 'error enhancing profile from schematic: secure boot is disabled'));
  const old = installerProfiles({ image: 'installer', schematicId: id, platform: 'metal', secureboot: false, version: 'v1.10.0' }, 'customization: {}\n', catalog);
  await expect(old).rejects.toEqual(new FactoryError(404, 'error enhancing profile from schematic: failed to get base installer: version 1.10.0 is not available'));
});
