import { AssetRequest, formatAssetPath, KNOWN_PLATFORMS, parseAssetPath, parsePxePath, ProfilePathError } from '../src';

function err(path: string, parse = parseAssetPath): string {
  try {
    parse(path);
  } catch (e) {
    expect(e).toBeInstanceOf(ProfilePathError);
    return (e as Error).message;
  }
  throw new Error(`expected ${path} to fail`);
}

const simple = (kind: AssetRequest['kind'], platform: string, arch: 'amd64' | 'arm64', secureboot = false): AssetRequest => ({
  kind,
  platform,
  arch,
  secureboot,
  outFormat: 'raw',
});

describe('parseAssetPath: anchor unit-test vectors', () => {
  test.each<[string, AssetRequest]>([
    ['kernel-amd64', simple('kernel', 'metal', 'amd64')],
    ['kernel-arm64', simple('kernel', 'metal', 'arm64')],
    ['cmdline-metal-arm64', simple('cmdline', 'metal', 'arm64')],
    ['cmdline-aws-amd64-secureboot', simple('cmdline', 'aws', 'amd64', true)],
    ['initramfs-amd64.xz', simple('initramfs', 'metal', 'amd64')],
    ['metal-arm64-secureboot.iso', simple('iso', 'metal', 'arm64', true)],
    ['metal-amd64-secureboot-uki.efi', simple('uki', 'metal', 'amd64', true)],
    ['metal-amd64-uki.efi', simple('uki', 'metal', 'amd64')],
    ['installer-amd64.tar', simple('installer', 'metal', 'amd64')],
    ['metal-installer-amd64.tar', simple('installer', 'metal', 'amd64')],
    ['digital-ocean-installer-amd64.tar', simple('installer', 'digital-ocean', 'amd64')],
    ['metal-arm64.raw.xz', { ...simple('image', 'metal', 'arm64'), outFormat: '.xz', disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['metal-arm64.raw.zst', { ...simple('image', 'metal', 'arm64'), outFormat: '.zst', disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    [
      'aws-amd64-secureboot.qcow2.tar.gz',
      { ...simple('image', 'aws', 'amd64', true), outFormat: '.tar.gz', disk: { format: 'qcow2', sizeMiB: 8192, formatOptions: 'cluster_size=8k' } },
    ],
    ['azure-amd64.vhd', { ...simple('image', 'azure', 'amd64'), disk: { format: 'vhd', sizeMiB: 8192, formatOptions: 'subformat=fixed,force_size' } }],
    ['digital-ocean-amd64.raw.gz', { ...simple('image', 'digital-ocean', 'amd64'), outFormat: '.gz', disk: { format: 'raw', sizeMiB: 8192, formatOptions: '' } }],
  ])('%s', (path, expected) => {
    expect(parseAssetPath(path)).toEqual(expected);
  });

  test.each([
    ['kernel-foo', 'invalid architecture: "foo"'],
    ['metal-rpi_generic-arm64.raw.xz', 'invalid architecture: "rpi_generic-arm64"'],
    ['metal-amd64.ssd', 'invalid profile path: "metal-amd64.ssd"'],
  ])('%s → %s', (path, message) => {
    expect(err(path)).toBe(message);
  });
});

describe('parseAssetPath: grammar details', () => {
  test.each<[string, Partial<AssetRequest>]>([
    ['kernel-x86_64', { kind: 'kernel', arch: 'amd64', platform: 'metal' }],
    ['kernel-i386', { kind: 'kernel', arch: 'amd64' }],
    ['initramfs-arm64.xz', { kind: 'initramfs', arch: 'arm64', platform: 'metal' }],
    ['initramfs-x86_64.xz', { kind: 'initramfs', arch: 'amd64' }],
    ['cmdline-digital-ocean-amd64', { kind: 'cmdline', platform: 'digital-ocean', arch: 'amd64', secureboot: false }],
    ['cmdline-equinixMetal-arm64', { kind: 'cmdline', platform: 'equinixMetal', arch: 'arm64' }],
    ['cmdline-packet-amd64', { kind: 'cmdline', platform: 'packet', arch: 'amd64' }],
    ['nocloud-amd64-secureboot.iso', { kind: 'iso', platform: 'nocloud', arch: 'amd64', secureboot: true }],
    ['vmware-arm64.iso', { kind: 'iso', platform: 'vmware', arch: 'arm64', secureboot: false }],
    ['aws-arm64-uki.efi', { kind: 'uki', platform: 'aws', arch: 'arm64' }],
    ['installer-arm64-secureboot.tar', { kind: 'installer', platform: 'metal', arch: 'arm64', secureboot: true }],
    ['aws-installer-arm64-secureboot.tar', { kind: 'installer', platform: 'aws', arch: 'arm64', secureboot: true }],
    ['digital-ocean-installer-amd64-secureboot.tar', { kind: 'installer', platform: 'digital-ocean', secureboot: true }],
    ['metal-x86_64.iso', { kind: 'iso', arch: 'amd64' }],
    ['metal-amd64.raw', { kind: 'image', outFormat: 'raw', disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['metal-amd64.qcow2.xz', { kind: 'image', outFormat: '.xz', disk: { format: 'qcow2', sizeMiB: 1246, formatOptions: 'cluster_size=8k' } }],
    ['metal-amd64.raw.tar.gz', { outFormat: '.tar.gz', disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['azure-amd64.vhd.xz', { outFormat: '.xz', disk: { format: 'vhd', sizeMiB: 8192, formatOptions: 'subformat=fixed,force_size' } }],
    // built-in options win whatever the disk format
    ['azure-arm64-secureboot.raw.zst', { secureboot: true, outFormat: '.zst', disk: { format: 'raw', sizeMiB: 8192, formatOptions: 'subformat=fixed,force_size' } }],
    ['alibabacloud-amd64.raw', { disk: { format: 'raw', sizeMiB: 1246, formatOptions: 'cluster_size=8k' } }],
    ['alibabacloud-arm64.qcow2', { disk: { format: 'qcow2', sizeMiB: 1246, formatOptions: 'cluster_size=8k' } }],
    ['exoscale-amd64.qcow2.zst', { outFormat: '.zst', disk: { format: 'qcow2', sizeMiB: 10240, formatOptions: 'cluster_size=8k' } }],
    ['oracle-arm64.qcow2', { outFormat: 'raw', disk: { format: 'qcow2', sizeMiB: 8192, formatOptions: 'cluster_size=8k' } }],
    ['oracle-amd64.raw.xz', { disk: { format: 'raw', sizeMiB: 8192, formatOptions: 'cluster_size=8k' } }],
    ['vmware-amd64.ova', { outFormat: 'raw', disk: { format: 'ova', sizeMiB: 8192, formatOptions: '' } }],
    ['vmware-amd64.ova.gz', { outFormat: '.gz', disk: { format: 'ova', sizeMiB: 8192, formatOptions: '' } }],
    ['gcp-arm64.raw.tar.gz', { outFormat: '.tar.gz', disk: { format: 'raw', sizeMiB: 8192, formatOptions: '' } }],
    ['hcloud-amd64.raw.xz', { disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['nocloud-amd64.raw.xz', { disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['opennebula-amd64.raw.zst', { disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['openstack-arm64.raw.xz', { disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['scaleway-amd64.raw.zst', { disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['akamai-amd64.raw.gz', { disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' } }],
    ['cloudstack-amd64.raw.gz', { disk: { format: 'raw', sizeMiB: 8192, formatOptions: '' } }],
    ['upcloud-amd64.raw.xz', { disk: { format: 'raw', sizeMiB: 8192, formatOptions: '' } }],
    ['vultr-amd64.raw.xz', { disk: { format: 'raw', sizeMiB: 8192, formatOptions: '' } }],
    // platforms without a built-in profile use DefaultRAWDiskSize
    ['equinixMetal-amd64.raw.xz', { platform: 'equinixMetal', disk: { format: 'raw', sizeMiB: 8192, formatOptions: '' } }],
    ['packet-arm64.qcow2', { platform: 'packet', disk: { format: 'qcow2', sizeMiB: 8192, formatOptions: 'cluster_size=8k' } }],
    ['container-amd64.raw', { platform: 'container', disk: { format: 'raw', sizeMiB: 8192, formatOptions: '' } }],
  ])('%s', (path, expected) => {
    expect(parseAssetPath(path)).toMatchObject(expected);
  });

  test('non-image kinds carry no disk options and raw out format', () => {
    for (const p of ['kernel-amd64', 'cmdline-metal-amd64', 'initramfs-amd64.xz', 'metal-amd64.iso', 'metal-amd64-uki.efi', 'installer-amd64.tar']) {
      const r = parseAssetPath(p);
      expect(r.disk).toBeUndefined();
      expect(r.outFormat).toBe('raw');
    }
  });

  test.each([
    // rule order / fall-through
    ['initramfs-amd64', 'invalid profile path: "initramfs-amd64"'],
    ['initramfs-amd64-secureboot.xz', 'invalid architecture: "amd64-secureboot"'],
    ['installer-amd64', 'invalid profile path: "installer-amd64"'],
    ['installer-metal-amd64.tar', 'invalid architecture: "metal-amd64"'],
    ['metal-installer-amd64', 'invalid profile path: "metal-installer-amd64"'],
    ['metal-installer-amd64.iso', 'invalid architecture: "installer-amd64"'],
    ['kernel-amd64-secureboot', 'invalid architecture: "amd64-secureboot"'],
    ['kernel-amd64.iso', 'invalid architecture: "amd64.iso"'],
    ['cmdline-metal', 'invalid platform-arch: "metal"'],
    ['cmdline-metal-secureboot', 'invalid platform-arch: "metal"'],
    ['cmdline-metal-amd64.txt', 'invalid architecture: "amd64.txt"'],
    ['cmdline-metal-riscv64', 'invalid architecture: "riscv64"'],
    ['cmdline-', 'invalid platform-arch: ""'],
    ['.iso', 'invalid platform-arch: ""'],
    ['metal.iso', 'invalid platform-arch: "metal"'],
    ['-uki.efi', 'invalid platform-arch: ""'],
    // the digital-ocean special case needs `ocean-`
    ['digital-ocean.raw', 'invalid architecture: "ocean"'],
    ['cmdline-digital-ocean', 'invalid architecture: "ocean"'],
    // disk image suffixes: compression first, then the disk format, error shows the rest after step a
    ['metal-amd64.tar.gz', 'invalid profile path: "metal-amd64"'],
    ['metal-amd64.raw.gz.xz', 'invalid profile path: "metal-amd64.raw.gz"'],
    ['metal-amd64.img.xz', 'invalid profile path: "metal-amd64.img"'],
    ['metal-amd64', 'invalid profile path: "metal-amd64"'],
    ['', 'invalid profile path: ""'],
    ['metal-amd64.RAW', 'invalid profile path: "metal-amd64.RAW"'],
    ['metal-AMD64.raw', 'invalid architecture: "AMD64"'],
    ['metal.raw', 'invalid platform-arch: "metal"'],
    // Go %q quoting of odd input
    ['kernel-a"b', 'invalid architecture: "a\\"b"'],
    ['kernel-\u0000\t', 'invalid architecture: "\\x00\\t"'],
    ['kernel-é', 'invalid architecture: "é"'],
  ])('%j → %s', (path, message) => {
    expect(err(path)).toBe(message);
  });

  test('unknown platforms are rejected after the rest parsed (deliberate 4xx; the anchor fails later with 500)', () => {
    expect(err('foo-amd64.iso')).toBe('unknown platform: "foo"');
    expect(err('cmdline-Metal-amd64')).toBe('unknown platform: "Metal"');
    expect(err('rpi_generic-arm64.raw.xz')).toBe('unknown platform: "rpi_generic"');
    expect(err('digital-amd64.raw.gz')).toBe('unknown platform: "digital"');
    expect(err('iso-amd64.raw')).toBe('unknown platform: "iso"');
    expect(err('foo-installer-amd64.tar')).toBe('unknown platform: "foo"');
    // other errors take precedence, as they would upstream
    expect(err('foo-bar.iso')).toBe('invalid architecture: "bar"');
    expect(err('foo.ssd')).toBe('invalid profile path: "foo.ssd"');
  });

  test('every known platform parses for both arches', () => {
    for (const platform of KNOWN_PLATFORMS) {
      for (const arch of ['amd64', 'arm64'] as const) {
        expect(parseAssetPath(`cmdline-${platform}-${arch}`)).toEqual(simple('cmdline', platform, arch));
        expect(parseAssetPath(`${platform}-${arch}-secureboot.iso`)).toEqual(simple('iso', platform, arch, true));
        expect(parseAssetPath(`${platform}-${arch}.raw.xz`).kind).toBe('image');
      }
    }
    expect(KNOWN_PLATFORMS).toHaveLength(21);
  });

  test('ProfilePathError is an Error with the inner text', () => {
    const e = new ProfilePathError('x');
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe('x');
    expect(`error parsing profile from path: ${e.message}`).toBe('error parsing profile from path: x');
  });
});

describe('parsePxePath', () => {
  test.each<[string, AssetRequest]>([
    ['metal-amd64', simple('cmdline', 'metal', 'amd64')],
    ['metal-x86_64', simple('cmdline', 'metal', 'amd64')],
    ['metal-i386', simple('cmdline', 'metal', 'amd64')],
    ['equinixMetal-amd64', simple('cmdline', 'equinixMetal', 'amd64')],
    ['metal-amd64-secureboot', simple('cmdline', 'metal', 'amd64', true)],
    ['digital-ocean-amd64', simple('cmdline', 'digital-ocean', 'amd64')],
  ])('%s', (path, expected) => {
    expect(parsePxePath(path)).toEqual(expected);
  });

  test('errors', () => {
    expect(err('metal', parsePxePath)).toBe('invalid platform-arch: "metal"');
    expect(err('metal-arm', parsePxePath)).toBe('invalid architecture: "arm"');
    expect(err('nope-amd64', parsePxePath)).toBe('unknown platform: "nope"');
  });
});

describe('formatAssetPath', () => {
  test.each([
    'kernel-amd64',
    'cmdline-metal-amd64',
    'cmdline-aws-arm64-secureboot',
    'cmdline-digital-ocean-amd64',
    'initramfs-arm64.xz',
    'metal-amd64.iso',
    'nocloud-arm64-secureboot.iso',
    'metal-amd64-uki.efi',
    'metal-arm64-secureboot-uki.efi',
    'installer-amd64.tar',
    'installer-arm64-secureboot.tar',
    'aws-installer-amd64.tar',
    'digital-ocean-installer-amd64-secureboot.tar',
    'metal-amd64.raw',
    'metal-arm64.raw.zst',
    'aws-amd64-secureboot.qcow2.tar.gz',
    'azure-amd64.vhd.xz',
    'vmware-amd64.ova',
    'digital-ocean-amd64.raw.gz',
  ])('round-trips %s', (path) => {
    expect(formatAssetPath(parseAssetPath(path))).toBe(path);
  });

  test('normalizes arch aliases and the legacy metal installer name', () => {
    expect(formatAssetPath(parseAssetPath('kernel-x86_64'))).toBe('kernel-amd64');
    expect(formatAssetPath(parseAssetPath('metal-installer-amd64.tar'))).toBe('installer-amd64.tar');
  });
});
