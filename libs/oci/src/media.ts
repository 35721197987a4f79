/** Media types and small digest / name helpers. */
import { createHash } from 'node:crypto';
import { OciError } from './errors';

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
} as const;

/** Accept header for manifest requests: OCI and Docker schema2, indexes and image manifests. */
export const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

export function isIndexMediaType(mt: string): boolean {
  return mt === MediaTypes.ociIndex || mt === MediaTypes.dockerManifestList;
}

export function isImageManifestMediaType(mt: string): boolean {
  return mt === MediaTypes.ociManifest || mt === MediaTypes.dockerManifest;
}

const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const HEX_LEN: Record<string, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest { algorithm: 'sha256' | 'sha512'; hex: string }

/** True if `s` looks like a content digest (`algo:encoded`), as opposed to a tag. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Parses and validates a sha256/sha512 digest; throws OciError INVALID otherwise. */
export function parseDigest(s: string): ParsedDigest {
  const m = DIGEST_RE.exec(s);
  if (!m) throw new OciError('INVALID', `invalid digest: ${JSON.stringify(s)}`);
  const algorithm = m[1];
  const hex = m[2];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') throw new OciError('INVALID', `unsupported digest algorithm: ${algorithm}`);
  if (hex.length !== HEX_LEN[algorithm] || !/^[0-9a-f]+$/.test(hex)) throw new OciError('INVALID', `invalid ${algorithm} digest: ${JSON.stringify(s)}`);
  return { algorithm, hex };
}

/** "sha256:<hex of data>" */
export function sha256Digest(data: Buffer | Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** Digest of data with the algorithm of `like` (sha256 or sha512). */
export function digestWithAlgorithm(algorithm: 'sha256' | 'sha512', data: Buffer | Uint8Array): string {
  return `${algorithm}:` + createHash(algorithm).update(data).digest('hex');
}

const REPO_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPO_RE = new RegExp(`^${REPO_COMPONENT}(?:/${REPO_COMPONENT})*$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isValidRepository(repo: string): boolean {
  return repo.length <= 255 && REPO_RE.test(repo);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function assertRepository(repo: string): void {
  if (!isValidRepository(repo)) throw new OciError('INVALID', `invalid repository name: ${JSON.stringify(repo)}`);
}

/** A manifest reference is a tag or a digest. */
export function assertReference(ref: string): void {
  if (isDigest(ref)) { parseDigest(ref); return; }
  if (!isValidTag(ref)) throw new OciError('INVALID', `invalid reference: ${JSON.stringify(ref)}`);
}

export interface ImageReference {
  /** registry host[:port]; "docker.io" for Docker Hub short names */
  registry: string;
  /** repository path inside the registry, e.g. "siderolabs/imager" (Docker Hub short names get "library/") */
  repository: string;
  tag?: string;
  digest?: string;
}

/**
 * Parses "registry/repo[:tag][@digest]" the way docker does: the first component is a registry when it contains "." or ":"
 * or is "localhost"; otherwise the registry is docker.io (and single-component names get the "library/" prefix).
 */
export function parseImageReference(ref: string): ImageReference {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    parseDigest(digest);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new OciError('INVALID', `invalid tag in reference ${JSON.stringify(ref)}`);
  }
  let registry = 'docker.io';
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (!isValidRepository(repository)) throw new OciError('INVALID', `invalid repository in reference ${JSON.stringify(ref)}`);
  const out: ImageReference = { registry, repository };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}
