import { SemVer, unifiedInstaller } from '@factory/talos';

/** Which boot assets an installer image carries (talos-formats §1.4 step 4, anchor-api §5.3). */

export type InstallerArch = 'amd64' | 'arm64';

export type InstallerArtifactRole =
  /** systemd-boot EFI binary (signed when secureboot) */
  | 'systemd-boot'
  /** the UKI (signed when secureboot) */
  | 'uki'
  /** plain kernel (legacy, non-UKI installers) */
  | 'kernel'
  /** initramfs.xz with extensions (legacy, non-UKI installers) */
  | 'initramfs';

export interface InstallerArtifactPath {
  /** path inside the image, e.g. `usr/install/amd64/vmlinuz.efi` */
  path: string;
  role: InstallerArtifactRole;
}

/**
 * The artifact paths of the installer's artifacts layer, sorted by path:
 * * Talos >= 1.10 or secureboot: `usr/install/<arch>/systemd-boot.efi` and the UKI as `usr/install/<arch>/vmlinuz.efi`
 *   (secureboot before 1.10: `vmlinuz.efi.signed`);
 * * otherwise `usr/install/<arch>/initramfs.xz` and `usr/install/<arch>/vmlinuz`.
 */
export function installerArtifactPaths(
  version: SemVer,
  arch: InstallerArch,
  secureboot: boolean,
): InstallerArtifactPath[] {
  if (arch !== 'amd64' && arch !== 'arm64') throw new RangeError(`unsupported installer arch: ${String(arch)}`);
  const dir = `usr/install/${arch}`;
  const unified = unifiedInstaller(version);
  if (unified || secureboot) {
    return [
      { path: `${dir}/systemd-boot.efi`, role: 'systemd-boot' },
      { path: `${dir}/${!unified && secureboot ? 'vmlinuz.efi.signed' : 'vmlinuz.efi'}`, role: 'uki' },
    ];
  }
  return [
    { path: `${dir}/initramfs.xz`, role: 'initramfs' },
    { path: `${dir}/vmlinuz`, role: 'kernel' },
  ];
}
