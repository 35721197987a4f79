/**
 * The demo Talos releases: which tags exist and what each one's version quirks are.
 *
 * Deliberately independent of @factory/talos (whose quirks.ts names what the factory's imager does per version): these
 * describe what upstream release *content* looks like, and a fixture derived from the code under test could not catch
 * that code getting a threshold wrong.
 */

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  prerelease: string;
}

export function parseVersion(v: string): SemVer {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/.exec(v);
  if (!m) throw new Error(`not a version: ${v}`);
  return { major: +m[1], minor: +m[2], patch: +m[3], prerelease: m[4] ?? '' };
}

/** major.minor.patch comparison (prerelease ignored, like the imager quirks). */
export function versionAtLeast(v: string, min: string): boolean {
  const a = parseVersion(v);
  const b = parseVersion(min);
  if (a.major !== b.major) return a.major > b.major;
  if (a.minor !== b.minor) return a.minor > b.minor;
  return a.patch >= b.patch;
}

export interface TalosQuirks {
  /** initramfs and squashfs compressed with zstd (>= 1.8), else xz -C crc32. */
  zstd: boolean;
  /** /usr/lib/{modules,firmware} (>= 1.10), else /lib/{modules,firmware}. */
  usrMerge: boolean;
  /** installer-base image exists (>= 1.10), else the legacy two-layer installer image. */
  installerBase: boolean;
  /** usr/install/<arch>/talos.spdx.json (>= 1.11). */
  spdx: boolean;
  /** talosctl-all image (>= 1.11). */
  talosctl: boolean;
}

export function quirks(version: string): TalosQuirks {
  return {
    zstd: versionAtLeast(version, '1.8.0'),
    usrMerge: versionAtLeast(version, '1.10.0'),
    installerBase: versionAtLeast(version, '1.10.0'),
    spdx: versionAtLeast(version, '1.11.0'),
    talosctl: versionAtLeast(version, '1.11.0'),
  };
}

export function modulesDir(version: string): string {
  return quirks(version).usrMerge ? 'usr/lib/modules' : 'lib/modules';
}

export function firmwareDir(version: string): string {
  return quirks(version).usrMerge ? 'usr/lib/firmware' : 'lib/firmware';
}

/** Real (built) demo Talos versions, oldest first; the last one is the newest. */
export const DEMO_TALOS_VERSIONS = ['v1.7.7', 'v1.11.3', 'v1.12.2'] as const;

/**
 * Extra imager tags pointing at an existing manifest, to exercise the factory's version filter.
 * value = the built version whose index the tag points at.
 */
export const EXTRA_IMAGER_TAGS: Record<string, string> = {
  'v1.1.0': 'v1.7.7', // below the 1.2.0 minimum -> dropped
  'v1.11.0-beta.1': 'v1.11.3', // prerelease of a non-newest minor -> dropped
  'v1.12.0-alpha.0-5-gabcdef': 'v1.12.2', // malformed prerelease -> dropped
  latest: 'v1.12.2', // not semver -> ignored
  'not-a-version': 'v1.12.2', // not semver -> ignored
};

export interface DemoExtensionSpec {
  /** last path segment; the repository is siderolabs/<name> */
  name: string;
  kind: 'hello' | 'intel-ucode' | 'dummy-module' | 'marker';
  description: string;
  /** extension version (also the image tag) per Talos version; missing = not in that version's catalog */
  versions: Partial<Record<string, string>>;
}

export const DEMO_EXTENSIONS: DemoExtensionSpec[] = [
  {
    name: 'hello',
    kind: 'hello',
    description: '[demo] Plain extension that drops a marker file into /usr/local/etc/fixture-ext.\n',
    versions: { 'v1.7.7': '1.0.0', 'v1.11.3': '1.1.0', 'v1.12.2': '1.2.0' },
  },
  {
    name: 'intel-ucode',
    kind: 'intel-ucode',
    description: '[demo] Intel CPU microcode (dummy blob) plus a firmware file.\n',
    versions: { 'v1.7.7': '20240312', 'v1.11.3': '20250211', 'v1.12.2': '20250812' },
  },
  {
    name: 'dummy-module',
    kind: 'dummy-module',
    description: "[demo] Ships the kernel's dummy.ko as an out-of-tree (extras) module.\n",
    versions: { 'v1.7.7': '1.0.0-v1.7.7', 'v1.11.3': '1.0.0-v1.11.3', 'v1.12.2': '1.0.0-v1.12.2' },
  },
  {
    name: 'gasket-driver',
    kind: 'marker',
    description: '[demo] Only present in the newest release catalog.\n',
    versions: { 'v1.12.2': '97aeba5-v1.12.2' },
  },
];

export const EXTENSION_CONSTRAINT = '>= v1.7.0';
export const EXTENSION_AUTHOR = 'Sidero Labs (demo)';

export const OVERLAY_IMAGE = 'sbc-fixture';
export const OVERLAY_TAG = 'v0.1.0';
export const OVERLAY_NAME = 'fixture_board';
