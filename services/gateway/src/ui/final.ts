/**
 * What the final page offers for a schematic and the wizard's choices (anchor-api §9 "Final page contents"): every
 * URL exactly as the API serves it, absolute from the factory's external URLs.
 */
import { atLeast, compareSemver, SBC_DISK_IMAGE, supportsOverlays, supportsSecureBoot, talosctlDownloads, unifiedInstaller } from '@factory/talos';
import type { MessageKey } from './i18n';
import { LOCAL_CLUSTER_MIN, platformInfo, semverOf, WizardState } from './state';

export const BOOTER_IMAGE = 'ghcr.io/siderolabs/booter:v0.3.0';
const DOCS = 'https://docs.siderolabs.com/talos';

export interface AssetLink {
  /** the asset path under `/image/<id>/<version>/` */
  path: string;
  url: string;
  /** what it is, for its label */
  label: MessageKey;
}

export interface FinalModel {
  schematicId: string;
  /** `v`-prefixed */
  versionTag: string;
  diskImages: AssetLink[];
  isos: AssetLink[];
  pxeUrl?: string;
  /** installer reference for installing (metal, or cloud platforms that boot more than a disk image) */
  installRef?: string;
  upgradeRef: string;
  localClusterCommand?: string;
  booterCommand?: string;
  extraAssets: AssetLink[];
  talosctlListUrl?: string;
  docs: Array<{ label: MessageKey; url: string }>;
  secureboot: boolean;
}

export interface FinalInput {
  state: WizardState;
  schematicId: string;
  externalUrl: string;
  externalPxeUrl: string;
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

export function finalModel(i: FinalInput): FinalModel {
  const s = i.state;
  const version = semverOf(s.version as string);
  const tag = `v${s.version}`;
  const arch = s.arch ?? 'amd64';
  const platform = s.platform ?? 'metal';
  const sb = s.secureboot;
  const sbSuffix = sb ? '-secureboot' : '';
  const base = trimSlash(i.externalUrl);
  const imageBase = `${base}/image/${i.schematicId}/${tag}/`;
  const asset = (path: string, label: MessageKey): AssetLink => ({ path, url: `${imageBase}${path}`, label });
  const info = platformInfo(platform);
  const methods = s.target === 'sbc' ? ['disk-image'] : (info?.bootMethods ?? []);

  const diskImages: AssetLink[] = [];
  const isos: AssetLink[] = [];
  let pxeUrl: string | undefined;
  if (s.target === 'sbc') {
    diskImages.push(asset(SBC_DISK_IMAGE, 'asset.diskImage'));
  } else {
    if (methods.includes('disk-image')) {
      if (platform === 'metal') {
        diskImages.push(asset(`metal-${arch}${sbSuffix}.raw.zst`, 'asset.diskImage'));
        if (!sb) diskImages.push(asset(`metal-${arch}.qcow2`, 'asset.diskImageQcow2'));
      } else if (info?.diskImageSuffix) {
        diskImages.push(asset(`${platform}-${arch}${sbSuffix}.${info.diskImageSuffix}`, 'asset.diskImage'));
      }
    }
    if (methods.includes('iso')) isos.push(asset(`${platform}-${arch}${sbSuffix}.iso`, 'asset.iso'));
    if (methods.includes('pxe')) pxeUrl = `${trimSlash(i.externalPxeUrl)}/pxe/${i.schematicId}/${tag}/${platform}-${arch}${sbSuffix}`;
  }

  const host = new URL(base).host;
  const installerImage = unifiedInstaller(version) ? `${platform}-installer${sbSuffix}` : `installer${sbSuffix}`;
  const ref = `${host}/${installerImage}/${i.schematicId}:${tag}`;
  const diskImageOnly = methods.length === 1 && methods[0] === 'disk-image';
  const installRef = s.target === 'metal' || (s.target === 'cloud' && !diskImageOnly) ? ref : undefined;

  const extraAssets: AssetLink[] = [];
  if (s.target === 'metal') {
    if (sb) {
      extraAssets.push(asset(`metal-${arch}-secureboot-uki.efi`, 'asset.uki'));
    } else {
      extraAssets.push(asset(`kernel-${arch}`, 'asset.kernel'));
      extraAssets.push(asset(`cmdline-metal-${arch}`, 'asset.cmdline'));
      extraAssets.push(asset(`initramfs-${arch}.xz`, 'asset.initramfs'));
      if (supportsSecureBoot(version)) extraAssets.push(asset(`metal-${arch}-uki.efi`, 'asset.uki'));
    }
  }

  const xy = `v${version.major}.${version.minor}`;
  const docs: FinalModel['docs'] = [
    { label: 'docs.whatsNew', url: `${DOCS}/${xy}/getting-started/whats-new-in-talos` },
    { label: 'docs.supportMatrix', url: `${DOCS}/${xy}/getting-started/support-matrix` },
    { label: 'docs.gettingStarted', url: `${DOCS}/${xy}/getting-started/getting-started` },
  ];
  if (s.target === 'sbc' && supportsOverlays(version)) docs.push({ label: 'docs.board', url: `${DOCS}/${xy}/platform-specific-installations/single-board-computers/${s.board}` });
  else if (s.target === 'cloud') docs.push({ label: 'docs.platform', url: `${DOCS}/${xy}/platform-specific-installations/cloud-platforms/${platform}` });
  else docs.push({ label: 'docs.platform', url: `${DOCS}/${xy}/platform-specific-installations/bare-metal-platforms/iso` });
  if (sb) docs.push({ label: 'docs.secureBoot', url: `${DOCS}/${xy}/platform-specific-installations/bare-metal-platforms/secureboot` });
  if (atLeast(version, 1, 5)) docs.push({ label: 'docs.productionNotes', url: `${DOCS}/${xy}/getting-started/prodnotes` });
  if (atLeast(version, 1, 6)) docs.push({ label: 'docs.troubleshooting', url: `${DOCS}/${xy}/troubleshooting/troubleshooting` });

  return {
    schematicId: i.schematicId,
    versionTag: tag,
    diskImages,
    isos,
    ...(pxeUrl ? { pxeUrl } : {}),
    ...(installRef ? { installRef } : {}),
    upgradeRef: ref,
    ...(compareSemver(version, LOCAL_CLUSTER_MIN) >= 0 ? { localClusterCommand: `talosctl cluster create qemu --schematic-id=${i.schematicId} --talos-version=${tag}` } : {}),
    ...(s.target === 'metal' ? { booterCommand: `docker run --rm --network host ${BOOTER_IMAGE} --talos-version=${tag} --schematic-id=${i.schematicId}` } : {}),
    extraAssets,
    ...(s.target === 'metal' && talosctlDownloads(version) ? { talosctlListUrl: `${base}/talosctl/${tag}` } : {}),
    docs,
    secureboot: sb,
  };
}

/** Every asset of the page (disk images, ISOs, extra assets), in page order. */
export function pageAssets(m: FinalModel): AssetLink[] {
  return [...m.diskImages, ...m.isos, ...m.extraAssets];
}
