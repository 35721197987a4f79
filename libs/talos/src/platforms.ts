/**
 * Talos platforms as the imager knows them (anchor §3.3, talos-formats §5.3) and the UI's platform table (anchor
 * Appendix A, Talos v1.14.0-rc.1 `platforms` package).
 */
import type { Arch } from './profile';
import { compareSemver, parseSemver, SemVer } from './version';
import { metalConsoleTtyS0, nvmeTimeoutAwsOnly } from './quirks';

/**
 * Every platform name the imager accepts (`talos.platform=` source). `packet` is the legacy alias of `equinixMetal`
 * (the imager renders it as `talos.platform=equinixMetal`); `container` has no kernel arguments.
 */
export const KNOWN_PLATFORMS: readonly string[] = [
  'akamai',
  'alibabacloud',
  'aws',
  'azure',
  'cloudstack',
  'container',
  'digital-ocean',
  'equinixMetal',
  'exoscale',
  'gcp',
  'hcloud',
  'metal',
  'nocloud',
  'opennebula',
  'openstack',
  'oracle',
  'packet',
  'scaleway',
  'upcloud',
  'vmware',
  'vultr',
];

const KNOWN = new Set(KNOWN_PLATFORMS);

export function isKnownPlatform(name: string): boolean {
  return KNOWN.has(name);
}

/** The value the imager writes as `talos.platform=` (the platform's own name, so `packet` → `equinixMetal`). */
export function canonicalPlatformName(name: string): string {
  return name === 'packet' ? 'equinixMetal' : name;
}

/**
 * Platform kernel arguments, in order, as `key=value` / bare `key` strings (talos-formats §5.3). Quirks: metal amd64
 * carries `console=ttyS0` before 1.8; aws carries `nvme_core.io_timeout` from 1.14 on (when it left the defaults).
 * Throws for unknown platforms (the imager fails with `unknown platform: "<name>"`).
 */
export function platformKernelArgs(platform: string, arch: Arch, version: SemVer): string[] {
  const twoConsoles = ['console=tty1', 'console=ttyS0', 'net.ifnames=0'];
  switch (platform) {
    case 'metal':
      if (arch === 'arm64') return ['console=ttyAMA0', 'console=tty0'];
      return metalConsoleTtyS0(version) ? ['console=ttyS0', 'console=tty0'] : ['console=tty0'];
    case 'aws':
      return nvmeTimeoutAwsOnly(version) ? [...twoConsoles, 'nvme_core.io_timeout=4294967295'] : twoConsoles;
    case 'gcp':
      return ['console=ttyS0', 'net.ifnames=0', 'talos.dashboard.disabled=1', 'sysctl.kernel.kexec_load_disabled=1'];
    case 'azure':
      return [
        'console=ttyS0,115200n8',
        'earlyprintk=ttyS0,115200',
        'rootdelay=300',
        'net.ifnames=0',
        'talos.dashboard.disabled=1',
        'sysctl.kernel.kexec_load_disabled=1',
      ];
    case 'equinixMetal':
    case 'packet':
      return arch === 'arm64' ? ['console=ttyAMA0,115200'] : ['console=ttyS1,115200n8'];
    case 'vmware':
      return arch === 'arm64'
        ? ['talos.config=guestinfo', 'console=tty0', 'console=ttyAMA0', 'net.ifnames=0']
        : ['talos.config=guestinfo', 'console=tty0', 'console=ttyS0', 'earlyprintk=ttyS0,115200', 'net.ifnames=0'];
    case 'akamai':
    case 'digital-ocean':
      return ['console=ttyS0', 'console=tty0', 'console=tty1', 'net.ifnames=0'];
    case 'alibabacloud':
    case 'cloudstack':
    case 'exoscale':
    case 'hcloud':
    case 'nocloud':
    case 'opennebula':
    case 'openstack':
      return twoConsoles;
    case 'oracle':
    case 'scaleway':
      return [...twoConsoles, 'talos.dashboard.disabled=1'];
    case 'upcloud':
    case 'vultr':
      return ['net.ifnames=0'];
    case 'container':
      return [];
    default:
      throw new Error(`unknown platform: ${JSON.stringify(platform)}`);
  }
}

/** `MinRAWDiskSize` (MiB). */
export const MIN_RAW_DISK_SIZE_MIB = 1246;
/** `DefaultRAWDiskSize` (MiB). */
export const DEFAULT_RAW_DISK_SIZE_MIB = 8192;

/**
 * Disk size / format options of the Talos built-in profile named like the platform (anchor §3.2). Only these two
 * fields are used by the factory; platforms without a built-in profile (equinixMetal, packet, container) are absent.
 */
export const PLATFORM_DISK_DEFAULTS: Readonly<Record<string, { sizeMiB: number; formatOptions?: string }>> = {
  akamai: { sizeMiB: MIN_RAW_DISK_SIZE_MIB },
  alibabacloud: { sizeMiB: MIN_RAW_DISK_SIZE_MIB, formatOptions: 'cluster_size=8k' },
  aws: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB },
  azure: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB, formatOptions: 'subformat=fixed,force_size' },
  cloudstack: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB },
  'digital-ocean': { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB },
  exoscale: { sizeMiB: 10240, formatOptions: 'cluster_size=8k' },
  gcp: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB },
  hcloud: { sizeMiB: MIN_RAW_DISK_SIZE_MIB },
  metal: { sizeMiB: MIN_RAW_DISK_SIZE_MIB },
  nocloud: { sizeMiB: MIN_RAW_DISK_SIZE_MIB },
  opennebula: { sizeMiB: MIN_RAW_DISK_SIZE_MIB },
  openstack: { sizeMiB: MIN_RAW_DISK_SIZE_MIB },
  oracle: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB, formatOptions: 'cluster_size=8k' },
  scaleway: { sizeMiB: MIN_RAW_DISK_SIZE_MIB },
  upcloud: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB },
  vmware: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB },
  vultr: { sizeMiB: DEFAULT_RAW_DISK_SIZE_MIB },
};

export type BootMethod = 'iso' | 'disk-image' | 'pxe';

/** One row of the UI platform table (anchor Appendix A). */
export interface PlatformInfo {
  name: string;
  label: string;
  arches: Arch[];
  /** Suggested disk image suffix (without the leading dot); absent when the platform has no disk image. */
  diskImageSuffix?: string;
  bootMethods: BootMethod[];
  secureBoot: boolean;
  /** Minimum Talos version offering this platform (strict semver, no `v`). */
  minVersion?: string;
}

const both: Arch[] = ['amd64', 'arm64'];
const amd: Arch[] = ['amd64'];

/** The cloud/bare-metal platforms shown by the UI, in UI order. */
export const PLATFORMS: readonly PlatformInfo[] = [
  { name: 'metal', label: 'Bare Metal', arches: both, diskImageSuffix: 'raw.zst', bootMethods: ['iso', 'disk-image', 'pxe'], secureBoot: true },
  { name: 'aws', label: 'Amazon Web Services (AWS)', arches: both, diskImageSuffix: 'raw.xz', bootMethods: ['disk-image'], secureBoot: false },
  { name: 'gcp', label: 'Google Cloud (GCP)', arches: both, diskImageSuffix: 'raw.tar.gz', bootMethods: ['disk-image'], secureBoot: false },
  { name: 'equinixMetal', label: 'Equinix Metal', arches: both, bootMethods: ['pxe'], secureBoot: false },
  { name: 'azure', label: 'Microsoft Azure', arches: both, diskImageSuffix: 'vhd.xz', bootMethods: ['disk-image'], secureBoot: true },
  { name: 'digital-ocean', label: 'Digital Ocean', arches: amd, diskImageSuffix: 'raw.gz', bootMethods: ['disk-image'], secureBoot: false },
  { name: 'nocloud', label: 'Nocloud', arches: both, diskImageSuffix: 'raw.xz', bootMethods: ['disk-image', 'iso', 'pxe'], secureBoot: true },
  { name: 'openstack', label: 'OpenStack', arches: both, diskImageSuffix: 'raw.xz', bootMethods: ['disk-image', 'iso', 'pxe'], secureBoot: false },
  { name: 'vmware', label: 'VMWare', arches: both, diskImageSuffix: 'ova', bootMethods: ['disk-image', 'iso'], secureBoot: false },
  { name: 'akamai', label: 'Akamai', arches: amd, diskImageSuffix: 'raw.gz', bootMethods: ['disk-image'], secureBoot: false, minVersion: '1.7.0' },
  {
    name: 'cloudstack',
    label: 'Apache CloudStack',
    arches: both,
    diskImageSuffix: 'raw.gz',
    bootMethods: ['disk-image'],
    secureBoot: true,
    minVersion: '1.8.0-alpha.2',
  },
  { name: 'hcloud', label: 'Hetzner', arches: amd, diskImageSuffix: 'raw.xz', bootMethods: ['disk-image'], secureBoot: false },
  { name: 'oracle', label: 'Oracle Cloud', arches: both, diskImageSuffix: 'qcow2', bootMethods: ['disk-image'], secureBoot: false },
  { name: 'upcloud', label: 'UpCloud', arches: amd, diskImageSuffix: 'raw.xz', bootMethods: ['disk-image'], secureBoot: false },
  { name: 'vultr', label: 'Vultr', arches: amd, bootMethods: ['iso', 'pxe'], secureBoot: false },
  { name: 'exoscale', label: 'Exoscale', arches: both, diskImageSuffix: 'qcow2', bootMethods: ['disk-image'], secureBoot: false, minVersion: '1.3.0' },
  { name: 'opennebula', label: 'OpenNebula', arches: both, diskImageSuffix: 'raw.zst', bootMethods: ['disk-image', 'iso'], secureBoot: false, minVersion: '1.7.0' },
  { name: 'scaleway', label: 'Scaleway', arches: both, diskImageSuffix: 'raw.zst', bootMethods: ['disk-image', 'iso'], secureBoot: false },
  {
    name: 'alibabacloud',
    label: 'AlibabaCloud',
    arches: both,
    diskImageSuffix: 'qcow2',
    bootMethods: ['disk-image'],
    secureBoot: false,
    minVersion: '1.14.0-beta.2',
  },
];

/** One single-board computer of the UI's SBC table (anchor Appendix A): its overlay and the first version offering it. */
export interface SbcInfo {
  /** the board's name in the UI and in URLs (`board=`) */
  name: string;
  label: string;
  /** `overlay.name` of the schematic */
  overlayName: string;
  /** `overlay.image` of the schematic (no registry) */
  overlayImage: string;
  /** Minimum Talos version offering this board (strict semver, no `v`). */
  minVersion?: string;
}

const rockchip = 'siderolabs/sbc-rockchip';
const sbc = (name: string, label: string, overlayImage: string, minVersion?: string, overlayName = name): SbcInfo => ({
  name,
  label,
  overlayName,
  overlayImage,
  ...(minVersion ? { minVersion } : {}),
});

/**
 * The SBCs shown by the UI, in UI order (anchor Appendix A). Every board boots `metal-arm64.raw.xz`; overlays need
 * Talos 1.7 or later, so the UI offers boards only from there on whatever their own minimum says.
 */
export const SBCS: readonly SbcInfo[] = [
  sbc('rpi_generic', 'Raspberry Pi Series', 'siderolabs/sbc-raspberrypi'),
  sbc('rpi_5', 'Raspberry Pi 5', 'siderolabs/sbc-raspberrypi', '1.12.3'),
  sbc('revpi_generic', 'Revolution Pi Series', 'siderolabs/sbc-raspberrypi', '1.10.0-beta.0'),
  sbc('bananapi_m64', 'Banana Pi M64', 'siderolabs/sbc-allwinner'),
  sbc('nanopi_r4s', 'Friendlyelec Nano PI R4S', rockchip, '1.3.0', 'nanopi-r4s'),
  sbc('nanopi_r5s', 'Friendlyelec Nano PI R5S', rockchip, '1.8.0-alpha.2', 'nanopi-r5s'),
  sbc('jetson_nano', 'Jetson Nano', 'siderolabs/sbc-jetson'),
  sbc('libretech_all_h3_cc_h5', 'Libre Computer Board ALL-H3-CC', 'siderolabs/sbc-allwinner'),
  sbc('orangepi_r1_plus_lts', 'Orange Pi R1 Plus LTS', rockchip, '1.7.0', 'orangepi-r1-plus-lts'),
  sbc('pine64', 'Pine64', 'siderolabs/sbc-allwinner'),
  sbc('rock64', 'Pine64 Rock64', rockchip),
  sbc('rock4cplus', 'Radxa ROCK 4C Plus', rockchip, '1.7.0'),
  sbc('rock4se', 'Radxa ROCK 4SE', rockchip, '1.8.0-alpha.1'),
  sbc('rock5a', 'Radxa ROCK 5A', rockchip, '1.10.0-beta.0'),
  sbc('rock5b', 'Radxa ROCK 5B', rockchip, '1.9.2'),
  sbc('rockpi_4', 'Radxa ROCK PI 4', rockchip, undefined, 'rockpi4'),
  sbc('rockpi_4c', 'Radxa ROCK PI 4C', rockchip, undefined, 'rockpi4c'),
  sbc('helios64', 'Kobol Helios64', rockchip, '1.8.0-alpha.2'),
  sbc('turingrk1', 'Turing RK1', rockchip, '1.9.0-beta.0'),
  sbc('orangepi-5', 'Orange Pi 5', rockchip, '1.9.2'),
  sbc('orangepi-5-plus', 'Orange Pi 5 Plus', rockchip, '1.10.0-beta.0'),
  sbc('rockpro64', 'Pine64 RockPro64', rockchip, '1.10.0-beta.0'),
  sbc('odroid-m1', 'Hardkernel ODROID-M1', rockchip, '1.12.0-beta.0'),
  sbc('radxa-zero-3e', 'Radxa ZERO 3E', rockchip, '1.12.0-beta.0'),
  sbc('rock3b', 'Radxa ROCK 3B', rockchip, '1.12.0-beta.0'),
  sbc('orangepi-5-max', 'Orange Pi 5 Max', rockchip, '1.12.0-beta.0'),
  sbc('rock5t', 'Radxa ROCK 5T', rockchip, '1.12.0-beta.0'),
  sbc('friendlyelec-cm3588-nas', 'FriendlyElec CM3588 NAS', rockchip, '1.13.0-alpha.1'),
  sbc('rock5b-plus', 'Radxa ROCK 5B+', rockchip, '1.13.0-alpha.1'),
];

/** The disk image every SBC boots from. */
export const SBC_DISK_IMAGE = 'metal-arm64.raw.xz';

/** Whether a table row with `minVersion` is offered for `version`. */
export function offeredFor(row: { minVersion?: string }, version: SemVer): boolean {
  if (!row.minVersion) return true;
  const min = parseSemver(row.minVersion);
  return !min || compareSemver(version, min) >= 0;
}
