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
  contentType: string;
  /**
   * Installer tarballs only: the same image as an OCI (Docker schema2) manifest whose blobs are already in the OCI
   * store, ready to be listed in an installer index.
   */
  image?: OciDescriptor;
}

/** Object metadata keys that carry an installer tarball's OCI manifest descriptor (see AssetRecord.image). */
const IMAGE_META = { mediaType: 'oci-media-type', digest: 'oci-digest', size: 'oci-size' } as const;

export function imageMetadata(image: OciDescriptor): Record<string, string> {
  return { [IMAGE_META.mediaType]: image.mediaType, [IMAGE_META.digest]: image.digest, [IMAGE_META.size]: String(image.size) };
}

/** What an object store says about a stored asset (structural: any store's `head` result fits). */
export interface StoredObjectInfo {
  size: number;
  sha256?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/** The AssetRecord of a published asset object; undefined while it is not (completely) published. */
export function assetRecordFrom(objectKey: string, info: StoredObjectInfo | null, fallbackContentType: string): AssetRecord | undefined {
  if (!info?.sha256) return undefined;
  const record: AssetRecord = { key: objectKey, size: info.size, sha256: info.sha256, contentType: info.contentType ?? fallbackContentType };
  const m = info.metadata ?? {};
  if (m[IMAGE_META.digest] && m[IMAGE_META.mediaType]) {
    record.image = { mediaType: m[IMAGE_META.mediaType], digest: m[IMAGE_META.digest], size: Number(m[IMAGE_META.size]) };
  }
  return record;
}
