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
  /**
   * Only for assets stored by earlier versions, whose statements (or metadata) name it. Assets built now are signed
   * with their SHA-256 alone, which binds their bytes; their SHA-512 is computed when someone asks for the
   * `<asset>.sha512` (Sha512Deriver), from stored bytes checked against the signed SHA-256. Computing it for every
   * build cost ~80 ms of CPU per 56 MB ISO, on the cores the upload and the S3 server need.
   */
  sha512?: string;
  contentType: string;
  /**
   * Installer tarballs only: the same image as an OCI (Docker schema2) manifest whose blobs are already in the OCI
   * store, ready to be listed in an installer index.
   */
  image?: OciDescriptor;
}

/** Object metadata keys that carry an installer tarball's OCI manifest descriptor (see AssetRecord.image). */
const IMAGE_META = { mediaType: 'oci-media-type', digest: 'oci-digest', size: 'oci-size' } as const;
/** Object metadata key of the asset's SHA-512, written by earlier versions (the store itself records the SHA-256). */
const SHA512_META = 'sha512';
const SHA512_HEX = /^[0-9a-f]{128}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The user metadata an asset object is published with: only what a reader needs before its signature file exists
 * (an installer tarball's OCI descriptor). Its digests live in the signed statement (see assetRecordFrom).
 */
export function assetMetadata(image?: OciDescriptor): Record<string, string> {
  return image ? { [IMAGE_META.mediaType]: image.mediaType, [IMAGE_META.digest]: image.digest, [IMAGE_META.size]: String(image.size) } : {};
}

/** What an object store says about a stored asset (structural: any store's `head` result fits). */
export interface StoredObjectInfo {
  size: number;
  sha256?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/** The digests a signature file's statement names: unverified until its signature is checked (see signedCheck). */
export interface StatementDigests {
  sha256?: unknown;
  sha512?: unknown;
}

/**
 * The AssetRecord of a stored asset object; undefined when nothing describes its digests.
 *
 * The digests come from the signed statement of its signature file when given (`statement`: the SHA-256, and the
 * SHA-512 where an earlier version signed one), else from the object's metadata (objects stored by earlier versions
 * carry the SHA-256 and SHA-512 there). Key and size are always the object's own — never the statement's — so a
 * signature over another key or size does not verify for this record: a statement only vouches for the object it
 * names, at the size stored.
 */
export function assetRecordFrom(objectKey: string, info: StoredObjectInfo | null | undefined, fallbackContentType: string, statement?: StatementDigests): AssetRecord | undefined {
  if (!info) return undefined;
  const m = info.metadata ?? {};
  let digests = statementDigests(statement);
  if (!digests && info.sha256 && SHA512_HEX.test(m[SHA512_META] ?? '')) digests = { sha256: info.sha256, sha512: m[SHA512_META] };
  if (!digests) return undefined;
  const record: AssetRecord = { key: objectKey, size: info.size, ...digests, contentType: info.contentType ?? fallbackContentType };
  if (m[IMAGE_META.digest] && m[IMAGE_META.mediaType]) {
    record.image = { mediaType: m[IMAGE_META.mediaType], digest: m[IMAGE_META.digest], size: Number(m[IMAGE_META.size]) };
  }
  return record;
}

/** A statement's SHA-256, and its SHA-512 where it names one; undefined when it describes nothing well-formed. */
function statementDigests(statement: StatementDigests | undefined): { sha256: string; sha512?: string } | undefined {
  if (typeof statement?.sha256 !== 'string' || !SHA256_HEX.test(statement.sha256)) return undefined;
  if (statement.sha512 === undefined) return { sha256: statement.sha256 };
  return typeof statement.sha512 === 'string' && SHA512_HEX.test(statement.sha512) ? { sha256: statement.sha256, sha512: statement.sha512 } : undefined;
}
