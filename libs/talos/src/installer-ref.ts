/**
 * The installer image reference the factory's UI hands out for "Initial Installation" and "Upgrading" (anchor §9):
 * `<host>/<platform>-installer[-secureboot]/<schematic>:<version>` for Talos ≥ 1.10, before that the legacy
 * `<host>/installer[-secureboot]/<schematic>:<version>`. The registry accepts both names for every version
 * (libs/registry parseInstallerImageName is the inverse); this is only which one is recommended.
 */
import { platformInstallerImages } from './quirks';
import { SemVer, tagOf } from './version';

export interface InstallerReferenceInput {
  /** registry host as clients reach it: the external URL's host (with its port, if any) */
  host: string;
  schematicId: string;
  version: SemVer;
  /** Talos platform, default `metal` */
  platform?: string;
  secureboot?: boolean;
}

/** Repository name of the installer image: `metal-installer`, `aws-installer-secureboot`, `installer` (< 1.10), … */
export function installerImageName(version: SemVer, platform = 'metal', secureboot = false): string {
  const base = platformInstallerImages(version) ? `${platform}-installer` : 'installer';
  return secureboot ? `${base}-secureboot` : base;
}

export function installerReference(input: InstallerReferenceInput): string {
  const image = installerImageName(input.version, input.platform, input.secureboot);
  return `${input.host}/${image}/${input.schematicId}:${tagOf(input.version)}`;
}
