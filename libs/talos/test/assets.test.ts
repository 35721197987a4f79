import { contentDisposition, contentTypeFor, downloadFileName, fileExt, isoUkiPath, isoVolumeId, isoVolumeSetId, osRelease, toVolumeId } from '../src';

describe('contentTypeFor (anchor §1.3 mime table)', () => {
  test.each([
    ['metal-amd64-uki.efi', 'application/efi'],
    ['metal-amd64-secureboot-uki.efi', 'application/efi'],
    ['metal-amd64.iso', 'application/x-iso9660-image'],
    ['metal-amd64.raw.xz', 'application/x-xz'],
    ['initramfs-amd64.xz', 'application/x-xz'],
    ['digital-ocean-amd64.raw.gz', 'application/gzip'],
    ['gcp-amd64.raw.tar.gz', 'application/gzip'],
    ['oracle-amd64.qcow2', 'application/x-qemu-disk'],
    ['kernel-amd64', 'application/octet-stream'],
    ['cmdline-metal-amd64', 'application/octet-stream'],
    ['installer-amd64.tar', 'application/x-tar'],
    ['metal-installer-arm64-secureboot.tar', 'application/x-tar'],
    ['metal-amd64.raw.zst', 'application/octet-stream'],
    ['azure-amd64.vhd', 'application/octet-stream'],
    ['vmware-amd64.ova', 'application/octet-stream'],
    ['metal-amd64.raw', 'application/octet-stream'],
    ['weird.', 'application/octet-stream'],
    ['dir.d/file', 'application/octet-stream'],
  ])('%s → %s', (path, type) => {
    expect(contentTypeFor(path)).toBe(type);
  });

  test('fileExt is Go filepath.Ext', () => {
    expect(fileExt('a.tar.gz')).toBe('.gz');
    expect(fileExt('a')).toBe('');
    expect(fileExt('a.b/c')).toBe('');
    expect(fileExt('.hidden')).toBe('.hidden');
  });
});

describe('Content-Disposition and file names', () => {
  test('exact header value', () => {
    expect(contentDisposition('metal-amd64.iso')).toBe('attachment; filename="metal-amd64.iso"');
    expect(contentDisposition('my "odd" name')).toBe('attachment; filename="my "odd" name"');
    // Non-ASCII names used to be written raw, which Node refuses in a header (ERR_INVALID_CHAR → 500).
    expect(contentDisposition('中文.iso')).toBe(`attachment; filename="__.iso"; filename*=UTF-8''%E4%B8%AD%E6%96%87.iso`);
    expect(contentDisposition("café's (1).raw")).toBe(`attachment; filename="caf_'s (1).raw"; filename*=UTF-8''caf%C3%A9%27s%20%281%29.raw`);
    expect(contentDisposition('😀"x')).toBe(`attachment; filename="__x"; filename*=UTF-8''%F0%9F%98%80%22x`);
  });
  test('?filename= override when non-empty', () => {
    expect(downloadFileName('metal-amd64.iso')).toBe('metal-amd64.iso');
    expect(downloadFileName('metal-amd64.iso', '')).toBe('metal-amd64.iso');
    expect(downloadFileName('metal-amd64.iso', null)).toBe('metal-amd64.iso');
    expect(downloadFileName('metal-amd64.iso', 'talos.iso')).toBe('talos.iso');
  });
});

describe('osRelease (talos-formats §6.2)', () => {
  test('exact text', () => {
    expect(osRelease('v1.11.5')).toBe(
      'NAME="Talos"\nID=talos\nVERSION_ID=v1.11.5\nPRETTY_NAME="Talos (v1.11.5)"\nHOME_URL="https://www.talos.dev/"\nBUG_REPORT_URL="https://github.com/siderolabs/talos/issues"\nVENDOR_NAME="Sidero Labs"\nVENDOR_URL="https://www.siderolabs.com/"\n',
    );
  });
  test('custom name: ID lowercased, spaces to underscores', () => {
    expect(osRelease('v1.0.0', 'Talos New')).toBe(
      'NAME="Talos New"\nID=talos_new\nVERSION_ID=v1.0.0\nPRETTY_NAME="Talos New (v1.0.0)"\nHOME_URL="https://www.talos.dev/"\nBUG_REPORT_URL="https://github.com/siderolabs/talos/issues"\nVENDOR_NAME="Sidero Labs"\nVENDOR_URL="https://www.siderolabs.com/"\n',
    );
  });
});

describe('ISO volume label (talos-formats §7)', () => {
  test.each([
    ['v1.11.5', 'TALOS_V1_11_5', 'Talos-v1.11.5'],
    ['v1.8.0', 'TALOS_V1_8_0', 'Talos-v1.8.0'],
    ['v1.8.0-beta.0', 'TALOS_V1_8_0_BETA_0', 'Talos-v1.8.0-beta.0'],
    ['v1.14.0-rc.1', 'TALOS_V1_14_0_RC_1', 'Talos-v1.14.0-rc.1'],
    ['v1.7.6', undefined, undefined],
    ['v1.2.0', undefined, undefined],
  ])('%s', (tag, volid, volset) => {
    expect(isoVolumeId(tag)).toBe(volid);
    expect(isoVolumeSetId(tag)).toBe(volset);
  });
  test('volume ID mapping', () => {
    expect(toVolumeId('Talos-v1.7.6')).toBe('TALOS_V1_7_6');
    expect(toVolumeId('Talos-v1.7.6-beta.0')).toBe('TALOS_V1_7_6_BETA_0');
    expect(toVolumeId('Talos-v1.12.0-alpha.1+build.meta-data.long')).toBe('TALOS_V1_12_0_ALPHA_1BUILD_META_');
    expect(toVolumeId('Talos-v1.12.0-alpha.1+build.meta-data.long')).toHaveLength(32);
  });
  test('UKI path in ISO', () => {
    expect(isoUkiPath('v1.11.5')).toBe('EFI/Linux/Talos-v1.11.5.efi');
  });
});
