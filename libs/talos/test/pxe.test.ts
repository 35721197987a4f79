import { buildFactoryCmdline, cleanPath, joinPath, parsePxePath, parseRequestVersion, pxeScript, PxeScriptInput, urlJoin } from '../src';

const ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';
const CMD_150 =
  'talos.platform=metal console=ttyS0 console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512';
const CMD_1110 = 'talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1';
const EQUINIX_150 =
  'talos.platform=equinixMetal console=ttyS1,115200n8 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512';

/** What the PXE handler does: version `v`-prefix, parse `cmdline-<path>`, build the cmdline asset, render. */
function servePxe(baseUrl: string, version: string, path: string, extra: { extraArgs?: string[] } = {}): string {
  const versionTag = version.startsWith('v') ? version : `v${version}`;
  const semver = parseRequestVersion(versionTag)!;
  const req = parsePxePath(path);
  const cmdline = buildFactoryCmdline({ platform: req.platform, arch: req.arch, version: semver, kind: req.kind, secureboot: req.secureboot, ...extra });
  return pxeScript({ baseUrl, schematicId: ID, versionTag, arch: req.arch, platform: req.platform, secureboot: req.secureboot, cmdline });
}

const standard = (endpoint: string, ver: string, cmd: string, arch = 'amd64') =>
  `#!ipxe\n\nimgfree\nkernel ${endpoint}/image/${ID}/${ver}/kernel-${arch} ${cmd}\ninitrd ${endpoint}/image/${ID}/${ver}/initramfs-${arch}.xz\nboot\n`;

describe('pxeScript: anchor §4 vectors', () => {
  const E = 'http://localhost:1234';
  test('v1.5.0 metal-amd64 and metal-x86_64', () => {
    expect(servePxe(E, 'v1.5.0', 'metal-amd64')).toBe(standard(E, 'v1.5.0', CMD_150));
    expect(servePxe(E, 'v1.5.0', 'metal-x86_64')).toBe(standard(E, 'v1.5.0', CMD_150));
  });
  test('v1.11.0 metal-amd64 (version without v gets one)', () => {
    expect(servePxe(E, '1.11.0', 'metal-amd64')).toBe(standard(E, 'v1.11.0', CMD_1110));
  });
  test('equinixMetal-amd64 v1.5.0', () => {
    expect(servePxe(E, 'v1.5.0', 'equinixMetal-amd64')).toBe(standard(E, 'v1.5.0', EQUINIX_150));
  });
  test('metal-amd64-secureboot v1.11.0', () => {
    expect(servePxe(E, 'v1.11.0', 'metal-amd64-secureboot')).toBe(
      `#!ipxe\n\nimgfree\nkernel ${E}/image/${ID}/v1.11.0/metal-amd64-secureboot-uki.efi ${CMD_1110} lockdown=confidentiality\nboot\n`,
    );
  });
  test('metal-amd64-secureboot v1.5.0 (integration test form)', () => {
    expect(servePxe(E, 'v1.5.0', 'metal-amd64-secureboot')).toBe(
      `#!ipxe\n\nimgfree\nkernel ${E}/image/${ID}/v1.5.0/metal-amd64-secureboot-uki.efi ${CMD_150} lockdown=confidentiality\nboot\n`,
    );
  });
  test('arm64 and extra args', () => {
    expect(servePxe(E, 'v1.11.0', 'metal-arm64', { extraArgs: ['nolapic'] })).toBe(
      standard(E, 'v1.11.0', CMD_1110.replace('console=tty0', 'console=ttyAMA0 console=tty0') + ' nolapic', 'arm64'),
    );
  });
  test('the SB UKI name uses the platform as written (packet) while the cmdline has equinixMetal', () => {
    const out = servePxe(E, 'v1.11.0', 'packet-arm64-secureboot');
    expect(out).toBe(
      `#!ipxe\n\nimgfree\nkernel ${E}/image/${ID}/v1.11.0/packet-arm64-secureboot-uki.efi talos.platform=equinixMetal console=ttyAMA0,115200 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 lockdown=confidentiality\nboot\n`,
    );
  });
});

describe('base URL join semantics', () => {
  const input = (baseUrl: string): PxeScriptInput => ({ baseUrl, schematicId: ID, versionTag: 'v1.11.0', arch: 'amd64', platform: 'metal', secureboot: false, cmdline: 'x' });
  test.each([
    ['http://localhost:1234', 'http://localhost:1234'],
    ['http://localhost:1234/', 'http://localhost:1234'],
    ['https://pxe.example.com/factory', 'https://pxe.example.com/factory'],
    ['https://pxe.example.com/factory/', 'https://pxe.example.com/factory'],
    ['https://pxe.example.com//a//b/', 'https://pxe.example.com/a/b'],
    ['https://user:pa%40ss@pxe.example.com:8443/', 'https://user:pa%40ss@pxe.example.com:8443'],
  ])('%s', (base, endpoint) => {
    expect(pxeScript(input(base))).toBe(standard(endpoint, 'v1.11.0', 'x'));
  });

  test('urlJoin details', () => {
    expect(urlJoin('http://h', 'image', 'a', 'b')).toBe('http://h/image/a/b');
    expect(urlJoin('http://h/p/../q/', 'image')).toBe('http://h/q/image');
    expect(urlJoin('http://h/base?x=1', 'image')).toBe('http://h/base/image?x=1');
    expect(urlJoin('http://h/base', 'dir/')).toBe('http://h/base/dir/');
    expect(urlJoin('/rel/base', 'image')).toBe('/rel/base/image');
  });

  test('Go path.Clean / path.Join', () => {
    expect(cleanPath('')).toBe('.');
    expect(cleanPath('/')).toBe('/');
    expect(cleanPath('a//b/./c/..')).toBe('a/b');
    expect(cleanPath('/../a')).toBe('/a');
    expect(cleanPath('../a/../..')).toBe('../..');
    expect(joinPath('', '')).toBe('');
    expect(joinPath('/', 'image', 'x')).toBe('/image/x');
    expect(joinPath('a', '', 'b/')).toBe('a/b');
  });
});
