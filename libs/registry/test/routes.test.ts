import {
  invalidImageMessage, isBuildReference, parseInstallerImageName, parseRegistryPath,
} from '../src';

const ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

describe('parseRegistryPath (anchor-api §5.1 vectors)', () => {
  test.each(['', '/', '//'])('ping %j', (p) => {
    expect(parseRegistryPath(p)).toEqual({ kind: 'ping' });
  });

  test('manifest', () => {
    expect(parseRegistryPath(`/metal-installer/${ID}/manifests/v1.7.0`)).toEqual({
      kind: 'schematic', image: 'metal-installer', schematicId: ID, resource: 'manifests', reference: 'v1.7.0',
    });
  });

  test('blob', () => {
    expect(parseRegistryPath('/installer/abc123/blobs/sha256:deadbeef')).toEqual({
      kind: 'schematic', image: 'installer', schematicId: 'abc123', resource: 'blobs', reference: 'sha256:deadbeef',
    });
  });

  test('referrers', () => {
    expect(parseRegistryPath('/installer/abc123/referrers/sha256:deadbeef')).toEqual({
      kind: 'schematic', image: 'installer', schematicId: 'abc123', resource: 'referrers', reference: 'sha256:deadbeef',
    });
  });

  test('proxy image with slashes', () => {
    expect(parseRegistryPath('/siderolabs/talosctl/v.13.5/manifests/latest')).toEqual({
      kind: 'proxy', image: 'talosctl/v.13.5', resource: 'manifests', reference: 'latest',
    });
  });

  test('proxy tags/list, blobs, referrers', () => {
    expect(parseRegistryPath('/siderolabs/installer/tags/list')).toEqual({ kind: 'proxy', image: 'installer', resource: 'tags', reference: 'list' });
    expect(parseRegistryPath('/siderolabs/installer-base/blobs/sha256:aa')).toMatchObject({ kind: 'proxy', resource: 'blobs' });
    expect(parseRegistryPath('/siderolabs/installer-base/referrers/sha256:aa')).toMatchObject({ kind: 'proxy', resource: 'referrers' });
  });

  test('trailing slash is trimmed', () => {
    expect(parseRegistryPath(`/installer/${ID}/manifests/v1.7.0/`)).toMatchObject({ kind: 'schematic', reference: 'v1.7.0' });
  });

  test.each([
    '/foo',
    '/foo/bar',
    '/foo/manifests/v1',
    '/a/b/c/manifests/v1',
    '/image/schematic/tags/v1',
    '/image/schematic/tags/list',
    '/siderolabs/manifests/v1',
    '/siderolabs/talosctl/tags/v1',
    '/siderolabs/talosctl/tags/foo',
  ])('not found: %s', (p) => {
    expect(parseRegistryPath(p)).toEqual({ kind: 'error', status: 404, error: `unknown registry path: "${p}"` });
  });

  test('404 text quotes the path like Go %q', () => {
    expect(parseRegistryPath('/a/b/c/manifests/v1')).toMatchObject({ error: 'unknown registry path: "/a/b/c/manifests/v1"' });
    expect(parseRegistryPath('/a"b\\c\n\x01é\u2028')).toMatchObject({ error: 'unknown registry path: "/a\\"b\\\\c\\n\\x01é\\u2028"' });
  });
});

describe('parseInstallerImageName (§5.2)', () => {
  test.each([
    ['installer', { platform: 'metal', secureboot: false }],
    ['installer-secureboot', { platform: 'metal', secureboot: true }],
    ['metal-installer', { platform: 'metal', secureboot: false }],
    ['aws-installer', { platform: 'aws', secureboot: false }],
    ['digital-ocean-installer', { platform: 'digital-ocean', secureboot: false }],
    ['metal-installer-secureboot', { platform: 'metal', secureboot: true }],
    ['nocloud-installer-secureboot', { platform: 'nocloud', secureboot: true }],
    ['unknownplatform-installer', { platform: 'unknownplatform', secureboot: false }],
  ])('%s', (name, want) => {
    expect(parseInstallerImageName(name)).toEqual(want);
  });

  test.each(['imager', 'installer-base', 'installers', 'metal-installer-secure', 'talosctl', ''])('invalid %j', (name) => {
    expect(parseInstallerImageName(name)).toBeNull();
  });

  test('error text', () => {
    expect(invalidImageMessage('imager')).toBe('invalid image: imager');
  });
});

test('isBuildReference: latest and v* go to the builder; digests and other tags come from storage', () => {
  expect(isBuildReference('latest')).toBe(true);
  expect(isBuildReference('v1.11.0')).toBe(true);
  expect(isBuildReference('sha256:' + ID)).toBe(false);
  expect(isBuildReference(`sha256-${ID}.sig`)).toBe(false);
  expect(isBuildReference('1.11.0')).toBe(false);
});
