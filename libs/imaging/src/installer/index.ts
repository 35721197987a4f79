/**
 * Installer images (talos-formats §1.3–1.4, anchor-api §5.3): assembly of the per-arch Docker schema2 image from the
 * installer(-base) layers plus boot artifacts (and an SBC overlay), and the docker-save tarball download.
 */
export {
  buildInstallerImage,
  DOCKER_MANIFEST_MEDIA_TYPE,
  DOCKER_CONFIG_MEDIA_TYPE,
  DOCKER_LAYER_GZIP_MEDIA_TYPE,
  OVERLAY_ARTIFACTS_PREFIX,
  OVERLAY_INSTALLER_PATH,
  OVERLAY_EXTRA_OPTIONS_PATH,
} from './image';
export type { InstallerImageInput, InstallerImage, InstallerImageLayer, InstallerImageBlob, InstallerBaseLayer } from './image';
export { writeDockerArchive, dockerArchiveManifest } from './archive';
export { installerArtifactPaths } from './paths';
export type { InstallerArch, InstallerArtifactPath, InstallerArtifactRole } from './paths';
export { InstallerImageError } from './errors';
export type { InstallerImageErrorCode } from './errors';
export { INSTALLER_GZIP_LEVEL } from './layer';
