/**
 * Talos platforms as the imager knows them (anchor §3.3, talos-formats §5.3) and the UI's platform table (anchor
 * Appendix A, Talos v1.14.0-rc.1 `platforms` package).
 */
import type { Arch } from './profile';
import type { SemVer } from './version';
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
