/** @factory/oci — OCI distribution client, image reading and cosign (simple signing) verification. */
export { OciError, CosignError } from './errors';
export type { OciErrorCode, CosignFailure, RegistryErrorDetail } from './errors';
export { RegistryClient, MAX_MANIFEST_BYTES, parseWwwAuthenticate, selectPlatform } from './client';
export type { RegistryClientOptions, Descriptor, FetchedManifest, Platform, Challenge } from './client';
export {
  cosignSignatureTag, simpleSigningPayload, verifyCosignSignature, pushCosignSignature, signPayload,
  COSIGN_SIGNATURE_ANNOTATION, COSIGN_PAYLOAD_TYPE,
} from './cosign';
export type { VerifyCosignOptions, CosignVerification, CosignSignOptions } from './cosign';
export { readImageFiles, listImageFiles, normalizeTarPath } from './image';
export type { ReadImageLimits } from './image';
export {
  MediaTypes, MANIFEST_ACCEPT, isIndexMediaType, isImageManifestMediaType, isDigest, parseDigest, sha256Digest,
  isValidRepository, isValidTag, parseImageReference,
} from './media';
export type { ImageReference, ParsedDigest } from './media';
