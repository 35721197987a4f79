/** Read-side helpers for OCI layouts written by the builder (used by tests and for debugging). */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Descriptor, MT, readLayoutTags } from './oci';
import { readTar, TarReadEntry } from './tar';

export function readBlob(layoutDir: string, digest: string): Buffer {
  return fs.readFileSync(path.join(layoutDir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
}

export interface ResolvedImage {
  top: Descriptor;
  manifestDigest: string;
  manifest: { mediaType?: string; config: Descriptor; layers: Descriptor[] };
  config: { architecture: string; os: string; config: Record<string, unknown>; rootfs: { diff_ids: string[] } };
}

/** Resolve tag -> platform manifest (for an index) in an OCI layout. */
export function resolveImage(layoutDir: string, tag: string, arch = 'amd64'): ResolvedImage {
  const top = readLayoutTags(layoutDir).get(tag);
  if (!top) throw new Error(`tag ${tag} not found in ${layoutDir}`);
  let manifestDigest = top.digest;
  if (top.mediaType === MT.ociIndex || top.mediaType === MT.dockerList) {
    const idx = JSON.parse(readBlob(layoutDir, top.digest).toString()) as { manifests: Descriptor[] };
    const m = idx.manifests.find((x) => x.platform?.architecture === arch);
    if (!m) throw new Error(`no ${arch} manifest for ${tag}`);
    manifestDigest = m.digest;
  }
  const manifest = JSON.parse(readBlob(layoutDir, manifestDigest).toString()) as ResolvedImage['manifest'];
  const config = JSON.parse(readBlob(layoutDir, manifest.config.digest).toString()) as ResolvedImage['config'];
  return { top, manifestDigest, manifest, config };
}

/** Flattened file system of an image (later layers win), keyed by path without leading "./" or trailing "/". */
export function readImageFiles(layoutDir: string, tag: string, arch = 'amd64'): Map<string, TarReadEntry> {
  const img = resolveImage(layoutDir, tag, arch);
  const files = new Map<string, TarReadEntry>();
  for (const l of img.manifest.layers) {
    for (const e of readTar(zlib.gunzipSync(readBlob(layoutDir, l.digest)))) files.set(e.path.replace(/^\.\//, '').replace(/\/$/, ''), e);
  }
  return files;
}
