import { installerImageName, installerReference, parseSemver, SemVer } from '@factory/talos';

const v = (s: string): SemVer => parseSemver(s)!;
const id = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

describe('installer image references (anchor §9)', () => {
  it('names the image per platform from 1.10 on (prereleases of 1.10 included)', () => {
    expect(installerImageName(v('1.10.0'))).toBe('metal-installer');
    expect(installerImageName(v('1.10.0-alpha.1'))).toBe('metal-installer');
    expect(installerImageName(v('1.12.2'), 'aws', true)).toBe('aws-installer-secureboot');
  });

  it('uses the legacy installer name before 1.10, whatever the platform', () => {
    expect(installerImageName(v('1.9.5'))).toBe('installer');
    expect(installerImageName(v('1.9.5'), 'aws', true)).toBe('installer-secureboot');
  });

  it('joins host, image, schematic and the v-prefixed version', () => {
    expect(installerReference({ host: 'factory.example:8080', schematicId: id, version: v('1.12.2') })).toBe(`factory.example:8080/metal-installer/${id}:v1.12.2`);
    expect(installerReference({ host: 'factory.example', schematicId: id, version: v('1.8.0'), secureboot: true })).toBe(`factory.example/installer-secureboot/${id}:v1.8.0`);
  });
});
