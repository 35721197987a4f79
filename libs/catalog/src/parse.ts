/**
 * Pure parsing of the upstream catalog images' files (talos-formats §2): `image-digests` + `descriptions.yaml` of
 * `siderolabs/extensions:<v>`, and `overlays.yaml` of `siderolabs/overlays:<v>`.
 */
import YAML from 'yaml';
import type { ExtensionEntry, OverlayEntry } from '@factory/queue';

export interface ImageRef {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Docker-style reference parsing: the first component is a registry when it has a dot, a colon or is localhost. */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) {
    registry = parts.shift()!;
  }
  let repository = parts.join('/');
  if (registry === 'docker.io' && parts.length === 1) repository = `library/${repository}`;
  if (!repository || !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repository)) {
    throw new Error(`invalid image reference ${JSON.stringify(ref)}`);
  }
  if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) throw new Error(`invalid tag in image reference ${JSON.stringify(ref)}`);
  if (digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error(`invalid digest in image reference ${JSON.stringify(ref)}`);
  return { registry, repository, tag, digest };
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
