import {
  adjustedDiskSizeMiB,
  boot2GiB,
  diskBootloader,
  dropInitOnAlloc,
  embedsUki,
  extraArgsApply,
  firmwarePath,
  grubResetEntries,
  ima,
  isoBootloaderSelectable,
  isoFlavour,
  isoHaltIfInstalled,
  isoVolumeLabel,
  kernelModulesPath,
  metalConsoleTtyS0,
  metaApplies,
  metaGzip,
  moduleSigEnforce,
  nvmeTimeoutAwsOnly,
  OutputKind,
  parseSemver,
  partitionSizesMiB,
  procMemForceOverride,
  schematicExtraInfo,
  sdBootForUefi,
  selinux,
  SemVer,
  skipDataPartitions,
  supportsEmbeddedConfig,
  supportsMultidoc,
  supportsOverlays,
  supportsSecureBoot,
  supportsUki,
  talosctlDownloads,
  ukiProfiles,
  unifiedInstaller,
  usesZstd,
  usrMerge,
  xfsMinAllocationGroup,
  xfsMkfsConfig,
} from '../src';

const v = (s: string): SemVer => parseSemver(s)!;

describe('version gates (talos-formats §11, anchor §3.6)', () => {
  // [predicate, name, last version where false, first version where true]
  const gates: Array<[(x: SemVer) => boolean, string, string, string]> = [
    [grubResetEntries, 'grubResetEntries', '1.3.7', '1.4.0-alpha.0'],
    [supportsUki, 'supportsUki', '1.4.99', '1.5.0-beta.1'],
    [supportsSecureBoot, 'supportsSecureBoot', '1.4.8', '1.5.0'],
    [supportsMultidoc, 'supportsMultidoc', '1.4.8', '1.5.0'],
    [metaGzip, 'metaGzip', '1.6.2', '1.6.3-alpha.0'],
    [supportsOverlays, 'supportsOverlays', '1.6.7', '1.7.0-alpha.1'],
    [schematicExtraInfo, 'schematicExtraInfo', '1.6.7', '1.7.0'],
    [usesZstd, 'usesZstd', '1.7.6', '1.8.0'],
    [isoVolumeLabel, 'isoVolumeLabel', '1.7.6', '1.8.0'],
    [isoHaltIfInstalled, 'isoHaltIfInstalled', '1.7.6', '1.8.0-alpha.2'],
    [skipDataPartitions, 'skipDataPartitions', '1.7.6', '1.8.0'],
    [selinux, 'selinux', '1.9.5', '1.10.0-alpha.0'],
    [sdBootForUefi, 'sdBootForUefi', '1.9.5', '1.10.0'],
    [usrMerge, 'usrMerge', '1.9.5', '1.10.0'],
    [ukiProfiles, 'ukiProfiles', '1.9.5', '1.10.0'],
    [unifiedInstaller, 'unifiedInstaller', '1.9.5', '1.10.0'],
    [boot2GiB, 'boot2GiB', '1.10.7', '1.11.0'],
    [talosctlDownloads, 'talosctlDownloads', '1.10.7', '1.11.0-alpha.1'],
    [supportsEmbeddedConfig, 'supportsEmbeddedConfig', '1.11.5', '1.12.0-beta.0'],
    [isoBootloaderSelectable, 'isoBootloaderSelectable', '1.11.5', '1.12.0'],
    [moduleSigEnforce, 'moduleSigEnforce', '1.11.5', '1.12.0'],
    [procMemForceOverride, 'procMemForceOverride', '1.12.4', '1.13.0'],
    [dropInitOnAlloc, 'dropInitOnAlloc', '1.13.9', '1.14.0-rc.1'],
    [nvmeTimeoutAwsOnly, 'nvmeTimeoutAwsOnly', '1.13.9', '1.14.0'],
    [xfsMinAllocationGroup, 'xfsMinAllocationGroup', '1.13.9', '1.14.0'],
  ];
  test.each(gates)('%p %s: false at %s, true from %s', (pred, _name, before, from) => {
    expect(pred(v(before))).toBe(false);
    expect(pred(v(from))).toBe(true);
    expect(pred(v('2.0.0'))).toBe(true);
    expect(pred(v('1.2.0'))).toBe(false);
  });

  test('inverted gates', () => {
    expect(metalConsoleTtyS0(v('1.7.6'))).toBe(true);
    expect(metalConsoleTtyS0(v('1.8.0-alpha.0'))).toBe(false);
    expect(ima(v('1.10.7'))).toBe(true);
    expect(ima(v('1.10.99'))).toBe(true);
    expect(ima(v('1.10.100'))).toBe(false);
    expect(ima(v('1.11.0-alpha.0'))).toBe(false);
  });

  test('paths and sizes', () => {
    expect(kernelModulesPath(v('1.9.0'))).toBe('/lib/modules');
    expect(kernelModulesPath(v('1.10.0'))).toBe('/usr/lib/modules');
    expect(firmwarePath(v('1.9.0'))).toBe('/lib/firmware');
    expect(firmwarePath(v('1.10.0-beta.0'))).toBe('/usr/lib/firmware');
    expect(xfsMkfsConfig(v('1.7.0'))).toBe('/usr/share/xfsprogs/mkfs/lts_6.1.conf');
    expect(xfsMkfsConfig(v('1.8.0'))).toBe('/usr/share/xfsprogs/mkfs/lts_6.6.conf');
    expect(xfsMkfsConfig(v('1.11.0'))).toBe('/usr/share/xfsprogs/mkfs/lts_6.12.conf');
    expect(xfsMkfsConfig(v('1.13.0'))).toBe('/usr/share/xfsprogs/mkfs/lts_6.18.conf');
    expect(partitionSizesMiB(v('1.10.0'))).toEqual({ grubEfi: 100, grubBios: 1, grubBoot: 1000, ukiEfi: 1101, meta: 1, state: 100, ephemeralMin: 2048 });
    expect(partitionSizesMiB(v('1.11.0'))).toMatchObject({ grubBoot: 2000, ukiEfi: 2101 });
  });
});

describe('bootloader and ISO flavour', () => {
  test.each<[string, 'amd64' | 'arm64', boolean, string | undefined, string]>([
    ['1.9.0', 'amd64', false, undefined, 'grub'],
    ['1.9.0', 'arm64', false, undefined, 'grub'],
    ['1.9.0', 'amd64', true, undefined, 'sd-boot'],
    ['1.10.0', 'amd64', false, undefined, 'dual-boot'],
    ['1.10.0', 'arm64', false, undefined, 'sd-boot'],
    ['1.11.0', 'amd64', false, 'none', 'dual-boot'],
    ['1.12.0', 'amd64', false, 'grub', 'grub'],
    ['1.12.0', 'amd64', false, 'sd-boot', 'sd-boot'],
    ['1.12.0', 'arm64', false, 'dual-boot', 'dual-boot'],
    ['1.12.0', 'amd64', true, 'grub', 'sd-boot'],
    ['1.9.0', 'amd64', false, 'sd-boot', 'sd-boot'],
  ])('disk %s %s sb=%s bootloader=%s → %s', (ver, arch, secureboot, bootloader, expected) => {
    expect(diskBootloader({ version: v(ver), arch, secureboot, bootloader: bootloader as never })).toBe(expected);
  });

  test.each<[string, 'amd64' | 'arm64', boolean, string | undefined, string]>([
    ['1.5.0', 'amd64', true, undefined, 'uefi'],
    ['1.9.5', 'amd64', false, undefined, 'grub'],
    ['1.9.5', 'arm64', false, undefined, 'grub'],
    ['1.9.5', 'amd64', false, 'sd-boot', 'grub'],
    ['1.10.0', 'amd64', false, undefined, 'hybrid'],
    ['1.11.3', 'arm64', false, undefined, 'hybrid'],
    ['1.11.3', 'amd64', false, 'grub', 'hybrid'],
    ['1.12.0', 'amd64', false, undefined, 'hybrid'],
    ['1.12.0', 'arm64', false, undefined, 'uefi'],
    ['1.12.0', 'amd64', false, 'none', 'hybrid'],
    ['1.12.0', 'amd64', false, 'dual-boot', 'hybrid'],
    ['1.12.0', 'amd64', false, 'sd-boot', 'uefi'],
    ['1.12.0', 'amd64', false, 'grub', 'grub'],
    ['1.12.0-beta.1', 'arm64', false, 'grub', 'grub'],
    ['1.14.0', 'amd64', true, 'grub', 'uefi'],
  ])('ISO %s %s sb=%s bootloader=%s → %s', (ver, arch, secureboot, bootloader, expected) => {
    expect(isoFlavour({ version: v(ver), arch, secureboot, bootloader: bootloader as never })).toBe(expected);
  });

  test('disk size growth', () => {
    expect(adjustedDiskSizeMiB(1246, 'grub', v('1.9.0'))).toBe(1246);
    expect(adjustedDiskSizeMiB(1246, 'dual-boot', v('1.10.0'))).toBe(1246 + 1 + 1000);
    expect(adjustedDiskSizeMiB(1246, 'dual-boot', v('1.11.0'))).toBe(1246 + 1000 + 1 + 2000);
    expect(adjustedDiskSizeMiB(8192, 'sd-boot', v('1.11.0'))).toBe(8192 + 1000);
    expect(adjustedDiskSizeMiB(8192, 'grub', v('1.12.0'))).toBe(9192);
  });
});

describe('customization rules per output (anchor §3.5)', () => {
  const kinds: OutputKind[] = ['kernel', 'cmdline', 'initramfs', 'iso', 'uki', 'installer', 'image'];
  test.each<[string, boolean, Record<OutputKind, boolean>]>([
    ['1.9.0', false, { kernel: false, cmdline: true, initramfs: false, iso: true, uki: false, installer: false, image: true }],
    ['1.9.0', true, { kernel: false, cmdline: true, initramfs: false, iso: true, uki: true, installer: true, image: true }],
    ['1.10.0', false, { kernel: false, cmdline: true, initramfs: false, iso: true, uki: true, installer: true, image: true }],
    ['1.10.0-alpha.1', false, { kernel: false, cmdline: true, initramfs: false, iso: true, uki: true, installer: true, image: true }],
  ])('extraArgsApply %s sb=%s', (ver, sb, expected) => {
    for (const k of kinds) expect([k, extraArgsApply(k, v(ver), sb)]).toEqual([k, expected[k]]);
  });

  test('metaApplies', () => {
    expect(kinds.filter(metaApplies)).toEqual(['cmdline', 'iso', 'image']);
  });

  test('embedsUki', () => {
    expect(embedsUki('uki', v('1.4.0'), false)).toBe(false);
    expect(embedsUki('uki', v('1.5.0'), false)).toBe(true);
    expect(embedsUki('iso', v('1.9.0'), false)).toBe(false);
    expect(embedsUki('iso', v('1.9.0'), true)).toBe(true);
    expect(embedsUki('image', v('1.10.0'), false)).toBe(true);
    expect(embedsUki('installer', v('1.4.0'), true)).toBe(false);
    expect(embedsUki('cmdline', v('1.12.0'), true)).toBe(false);
    expect(embedsUki('kernel', v('1.12.0'), true)).toBe(false);
  });
});
