/** A published asset as object storage describes it. */

/** An OCI content descriptor (manifest or index) in the factory's own OCI store. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** Where a finished asset lives in object storage, and what it is. */
export interface AssetRecord {
  key: string;
  size: number;
  sha256: string;
  /** Computed by the build-worker from the file it published, kept in the object's metadata; never from stored bytes. */
  sha512: string;
  /**
   * MD5 of the bytes, recorded by the build-worker for S3 stores: the signing service compares it with the ETag the S3
   * server computed from the stored bytes (see ObjectInfo.serverDigests) instead of downloading them.
   */
  md5?: string;
  contentType: string;
  /**
   * Installer tarballs only: the same image as an OCI (Docker schema2) manifest whose blobs are already in the OCI
   * store, ready to be listed in an installer index.
   */
  image?: OciDescriptor;
}

/** Object metadata keys that carry an installer tarball's OCI manifest descriptor (see AssetRecord.image). */
const IMAGE_META = { mediaType: 'oci-media-type', digest: 'oci-digest', size: 'oci-size' } as const;
/** Object metadata key of the asset's SHA-512 (the store itself records the SHA-256). */
const SHA512_META = 'sha512';
const SHA512_HEX = /^[0-9a-f]{128}$/;
/** Object metadata key of the asset's MD5 (optional; see AssetRecord.md5). */
const MD5_META = 'md5';
const MD5_HEX = /^[0-9a-f]{32}$/;

/** The user metadata an asset object is published with. */
export function assetMetadata(sha512: string, image?: OciDescriptor, md5?: string): Record<string, string> {
  const meta: Record<string, string> = { [SHA512_META]: sha512 };
  if (md5) meta[MD5_META] = md5;
  if (image) Object.assign(meta, { [IMAGE_META.mediaType]: image.mediaType, [IMAGE_META.digest]: image.digest, [IMAGE_META.size]: String(image.size) });
  return meta;
}

/** What an object store says about a stored asset (structural: any store's `head` result fits). */
export interface StoredObjectInfo {
  size: number;
  sha256?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/**
 * The AssetRecord an asset object's metadata describes; undefined when it describes none (no object, or one stored
 * without its build-time digests, e.g. by an older version: it is rebuilt).
 */
export function assetRecordFrom(objectKey: string, info: StoredObjectInfo | null | undefined, fallbackContentType: string): AssetRecord | undefined {
  const m = info?.metadata ?? {};
  if (!info?.sha256 || !SHA512_HEX.test(m[SHA512_META] ?? '')) return undefined;
  const record: AssetRecord = { key: objectKey, size: info.size, sha256: info.sha256, sha512: m[SHA512_META], contentType: info.contentType ?? fallbackContentType };
  if (MD5_HEX.test(m[MD5_META] ?? '')) record.md5 = m[MD5_META];
  if (m[IMAGE_META.digest] && m[IMAGE_META.mediaType]) {
    record.image = { mediaType: m[IMAGE_META.mediaType], digest: m[IMAGE_META.digest], size: Number(m[IMAGE_META.size]) };
  }
  return record;
}
