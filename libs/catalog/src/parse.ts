/**
 * Pure parsing of the upstream catalog images' files (talos-formats §2): `image-digests` + `descriptions.yaml` of
 * `siderolabs/extensions:<v>`, and `overlays.yaml` of `siderolabs/overlays:<v>`.
 */
import YAML from 'yaml';
import { parseImageReference as parseImageRef } from '@factory/oci';

/** An official extension as the catalog lists it (`GET /version/:v/extensions/official`). */
export interface ExtensionEntry {
  /** the repository path, e.g. `siderolabs/gvisor` */
  name: string;
  ref: string;
  digest: string;
  author: string;
  description: string;
}

/** An overlay as the catalog lists it (`GET /version/:v/overlays/official`). */
export interface OverlayEntry {
  name: string;
  /** the repository path, e.g. `siderolabs/sbc-raspberrypi` */
  image: string;
  ref: string;
  digest: string;
}

export interface CatalogExtension extends ExtensionEntry {
  /** Repository path to pull from (`siderolabs/gvisor`), and the tag as listed. */
  repository: string;
  tag: string;
}

/**
 * One extension per `image-digests` line (lines without `@` are skipped). The registry of each line is replaced by
 * the configured one in `ref`; the namespace is not part of `ref` (the anchor does the same).
 */
export function parseExtensionsCatalog(imageDigests: string, descriptionsYaml: string | undefined, registry: string): CatalogExtension[] {
  let descriptions: Record<string, { author?: unknown; description?: unknown }> = {};
  if (descriptionsYaml && descriptionsYaml.trim()) {
    const parsed = YAML.parse(descriptionsYaml, { maxAliasCount: 100 });
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) descriptions = parsed;
    else throw new Error('descriptions.yaml is not a mapping');
  }
  const out: CatalogExtension[] = [];
  for (const rawLine of imageDigests.split('\n')) {
    const line = rawLine.trim();
    const at = line.indexOf('@');
    if (at < 0) continue;
    const ref = parseImageRef(line.slice(0, at));
    const digest = line.slice(at + 1);
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error(`invalid digest in image-digests line ${JSON.stringify(line)}`);
    const tag = ref.tag ?? 'latest';
    const d = descriptions[line] ?? {};
    out.push({
      name: ref.repository,
      ref: `${registry}/${ref.repository}:${tag}`,
      digest,
      author: typeof d.author === 'string' ? d.author : '',
      description: typeof d.description === 'string' ? d.description : '',
      repository: ref.repository,
      tag,
    });
  }
  return out;
}

export interface CatalogOverlay extends OverlayEntry {
  repository: string;
}

export function parseOverlaysCatalog(overlaysYaml: string): CatalogOverlay[] {
  const parsed = YAML.parse(overlaysYaml, { maxAliasCount: 100 }) as { overlays?: unknown } | null;
  const list = parsed?.overlays;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new Error('overlays.yaml: overlays is not a list');
  return list.map((o: { name?: unknown; image?: unknown; digest?: unknown }) => {
    if (typeof o?.name !== 'string' || typeof o?.image !== 'string' || typeof o?.digest !== 'string') {
      throw new Error('overlays.yaml: every overlay needs name, image and digest');
    }
    const ref = parseImageRef(o.image);
    return {
      name: o.name,
      image: ref.repository,
      ref: `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}`,
      digest: o.digest,
      repository: ref.repository,
    };
  });
}

/** Schematic extension names that upstream renamed; the old name resolves to the new one (talos-formats §2.1). */
export const EXTENSION_ALIASES: Readonly<Record<string, string>> = {
  'siderolabs/v4l-uvc': 'siderolabs/v4l-uvc-drivers',
  'siderolabs/usb-modem': 'siderolabs/usb-modem-drivers',
  'siderolabs/gasket': 'siderolabs/gasket-driver',
  'siderolabs/talos-vmtoolsd': 'siderolabs/vmtoolsd-guest-agent',
  'siderolabs/xe-guest-utilities': 'siderolabs/xen-guest-agent',
  'siderolabs/nvidia-container-toolkit': 'siderolabs/nvidia-container-toolkit-lts',
  'siderolabs/nvidia-open-gpu-kernel-modules': 'siderolabs/nvidia-open-gpu-kernel-modules-lts',
  'siderolabs/nonfree-kmod-nvidia': 'siderolabs/nonfree-kmod-nvidia-lts',
  'siderolabs/nvidia-fabricmanager': 'siderolabs/nvidia-fabric-manager-lts',
  'siderolabs/i915-ucode': 'siderolabs/i915',
  'siderolabs/amdgpu-firmware': 'siderolabs/amdgpu',
};
