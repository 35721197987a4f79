/**
 * @factory/registry: the factory's own OCI content in the object store (OciContentStore) and the pull side of the
 * OCI distribution API over it (createRegistryRouter, mounted at `/v2`), with the anchor's `/v2` route grammar.
 */
export {
  OciContentStore, MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES, OCI_KEY_PREFIX, BLOB_KEY_PREFIX, TAG_KEY_PREFIX, REFERRER_KEY_PREFIX,
  blobKey, tagKey, sha256Hex,
} from './store';
export type {
  Descriptor, BlobInfo, StoredManifest, PutBlobResult, ReferrersIndex, PutManifestOptions, CosignSignatureOptions,
} from './store';
export {
  parseRegistryPath, parseInstallerImageName, invalidImageMessage, isBuildReference, proxyRouteGrammarError,
  isOciRepositoryName, isOciTag, isOciDigest,
} from './routes';
export type {
  RegistryRoute, PingRoute, SchematicRoute, ProxyRoute, RouteNotFound, RegistryResource, ProxyResource, InstallerImage,
} from './routes';
export {
  createRegistryRouter, sendTextError, HANDOFF_REQUEST_HEADER, HANDOFF_OBJECT_HEADER, HANDOFF_LENGTH_HEADER, HANDOFF_RANGE_HEADER,
} from './router';
export type { RegistryRouterDeps, RepositoryRequest, ManifestRequest } from './router';
export { RegistryError, manifestUnknown, blobUnknown, ociErrorBody, defaultErrorInfo } from './errors';
export type { OciErrorCodeName, HttpErrorInfo } from './errors';
export { endToEndHeaders, isInternalHeader } from './headers';
