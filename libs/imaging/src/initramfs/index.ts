/**
 * Initramfs with system extensions (talos-formats §3.4, §4): safe layer extraction, the virtual schematic /
 * embedded-config extensions, and the assembly of [microcode cpio] + base initramfs + compressed extensions cpio.
 */
export { UnsafeArchiveError, ExtensionCompatibilityError } from './errors';
export { extractLayers, normalizeEntryPath, DEFAULT_EXTRACT_LIMITS, SELINUX_PAX_KEY } from './extract';
export type { ExtractLimits } from './extract';
export {
  writeSchematicExtension,
  writeEmbeddedConfigExtension,
  schematicManifestYaml,
  embeddedConfigManifestYaml,
  EMBEDDED_CONFIG_SELINUX_LABEL,
} from './virtual';
export { assembleInitramfs } from './assemble';
export { layerKey } from './layer-cache';
export type { LayerCache } from './layer-cache';
export type { AssembleOptions, AssembleResult, ExtensionDir } from './assemble';
export { parseManifest, loadExtension, metadataForYaml } from './manifest';
export type { ExtensionManifest, ExtensionMetadata, LoadedExtension } from './manifest';
export { parseRange, constraintAllows, trimV } from './semver-range';
export type { VersionRange } from './semver-range';
export { mksquashfsTree, mksquashfsFeatures } from './squashfs';
export type { SquashOptions, SquashResult, MksquashfsFeatures } from './squashfs';
export { detectCompression } from './decompress';
export type { Compression } from './decompress';
