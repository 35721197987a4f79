/**
 * In-memory OCI/Docker image model and OCI image-layout writer.
 * Every JSON document is compact and built with a fixed key order, so identical inputs give identical digests.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { SigningKey, signPayload, signatureTag, simpleSigningPayload } from './sign';
import { byteCompare, mkdirp, sha256hex, SOURCE_DATE_EPOCH } from './util';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
} as const;

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

export type ImageFormat = 'oci' | 'docker';
export type Arch = 'amd64' | 'arm64';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** Content-addressed blob store of one repository. */
export class BlobStore {
  readonly blobs = new Map<string, Buffer>();

  put(data: Buffer, mediaType: string): Descriptor {
    const digest = `sha256:${sha256hex(data)}`;
    if (!this.blobs.has(digest)) this.blobs.set(digest, data);
    return { mediaType, digest, size: data.length };
  }

  get(digest: string): Buffer {
    const b = this.blobs.get(digest);
    if (!b) throw new Error(`blob ${digest} not found`);
    return b;
  }

  /** Copy a blob and everything it references from another store. */
  copyFrom(other: BlobStore, desc: Descriptor): void {
    const data = other.get(desc.digest);
    this.blobs.set(desc.digest, data);
    if (desc.mediaType === MT.ociIndex || desc.mediaType === MT.dockerList) {
      const idx = JSON.parse(data.toString()) as { manifests: Descriptor[] };
      for (const m of idx.manifests) this.copyFrom(other, m);
    } else if (desc.mediaType === MT.ociManifest || desc.mediaType === MT.dockerManifest) {
      const man = JSON.parse(data.toString()) as { config: Descriptor; layers: Descriptor[] };
      this.copyFrom(other, man.config);
      for (const l of man.layers) this.copyFrom(other, l);
    }
  }
}

function descJson(d: Descriptor, docker: boolean): Record<string, unknown> {
  // docker distribution writes mediaType, size, digest; OCI (go-containerregistry/containerd) mediaType, digest, size
  const o: Record<string, unknown> = docker
    ? { mediaType: d.mediaType, size: d.size, digest: d.digest }
    : { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform) o.platform = d.platform.variant ? d.platform : { architecture: d.platform.architecture, os: d.platform.os };
  if (d.annotations) o.annotations = d.annotations;
  return o;
}

export function gzipLayer(tar: Buffer): Promise<Buffer> {
  // node's gzip header has mtime 0 and no file name, so the output depends only on the input and the level
  return new Promise((resolve, reject) =>
    zlib.gzip(tar, { level: 6 }, (err, out) => (err ? reject(err) : resolve(out))),
  );
}

export interface ImageConfigSection {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  Labels?: Record<string, string>;
  WorkingDir?: string;
}

export interface BuildImageOptions {
  format: ImageFormat;
  arch: Arch;
  /** Uncompressed layer tarballs, bottom first. */
  layers: Buffer[];
  config?: ImageConfigSection;
  /** History "created_by" strings, one per layer. */
  history?: string[];
  /** Pre-compressed layers (same order) to avoid compressing twice. */
  gzipped?: Buffer[];
}

const CREATED = new Date(SOURCE_DATE_EPOCH * 1000).toISOString().replace(/\.000Z$/, 'Z');

/** Build one single-platform image; returns the manifest descriptor with platform set. */
export async function buildImage(store: BlobStore, opts: BuildImageOptions): Promise<Descriptor> {
  const docker = opts.format === 'docker';
  const gz = opts.gzipped ?? (await Promise.all(opts.layers.map((l) => gzipLayer(l))));
  const layerDescs = gz.map((g) => store.put(g, docker ? MT.dockerLayerGzip : MT.ociLayerGzip));
  const diffIds = opts.layers.map((l) => `sha256:${sha256hex(l)}`);
  const config: Record<string, unknown> = {
    architecture: opts.arch,
    created: CREATED,
    history: opts.layers.map((_, i) => ({ created: CREATED, created_by: opts.history?.[i] ?? 'demo-releases', comment: 'demo-releases' })),
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
    config: opts.config ?? {},
  };
  const configDesc = store.put(Buffer.from(JSON.stringify(config)), docker ? MT.dockerConfig : MT.ociConfig);
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? MT.dockerManifest : MT.ociManifest,
    config: descJson(configDesc, docker),
    layers: layerDescs.map((d) => descJson(d, docker)),
  };
  const desc = store.put(Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
  return { ...desc, platform: { architecture: opts.arch, os: 'linux' } };
}

/** Build a multi-platform index / manifest list from per-platform manifest descriptors. */
export function buildIndex(store: BlobStore, format: ImageFormat, manifests: Descriptor[]): Descriptor {
  const docker = format === 'docker';
  const index = {
    schemaVersion: 2,
    mediaType: docker ? MT.dockerList : MT.ociIndex,
    manifests: manifests.map((m) => descJson(m, docker)),
  };
  return store.put(Buffer.from(JSON.stringify(index)), index.mediaType);
}

/** A repository: blobs plus tags (tag -> top-level descriptor). */
export class Repository {
  readonly store = new BlobStore();
  readonly tags = new Map<string, Descriptor>();

  constructor(readonly name: string) {}

  tag(tag: string, desc: Descriptor): void {
    const { platform: _p, annotations: _a, ...plain } = desc;
    this.tags.set(tag, plain);
  }

  /**
   * Add cosign simple-signing signatures for every distinct tagged digest (except signature tags themselves).
   * identity is the docker-reference written into the payload.
   */
  sign(key: SigningKey, identity: string): void {
    const digests = new Set<string>();
    for (const [tag, d] of this.tags) if (!tag.endsWith('.sig')) digests.add(d.digest);
    for (const digest of [...digests].sort()) {
      const payload = simpleSigningPayload(identity, digest);
      const sig = signPayload(key, payload);
      this.tag(signatureTag(digest), buildSignatureManifest(this.store, payload, sig));
    }
  }
}

/** cosign-style signature manifest: OCI manifest, one simple-signing layer carrying the signature annotation. */
export function buildSignatureManifest(store: BlobStore, payload: Buffer, signatureB64: string): Descriptor {
  const layer = store.put(payload, MT.cosignSimpleSigning);
  const config = {
    architecture: '',
    created: '0001-01-01T00:00:00Z',
    history: [{ created: '0001-01-01T00:00:00Z' }],
    os: '',
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    config: {},
  };
  const configDesc = store.put(Buffer.from(JSON.stringify(config)), MT.ociConfig);
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: descJson(configDesc, false),
    layers: [descJson({ ...layer, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signatureB64 } }, false)],
  };
  return store.put(Buffer.from(JSON.stringify(manifest)), MT.ociManifest);
}

/** Write a repository as an OCI image layout (index.json ref names = tags). Replaces an existing layout. */
export function writeLayout(dir: string, repo: Repository): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const blobDir = mkdirp(path.join(tmp, 'blobs', 'sha256'));
  for (const [digest, data] of [...repo.store.blobs].sort((a, b) => byteCompare(a[0], b[0]))) {
    fs.writeFileSync(path.join(blobDir, digest.slice('sha256:'.length)), data);
  }
  fs.writeFileSync(path.join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests = [...repo.tags]
    .sort((a, b) => byteCompare(a[0], b[0]))
    .map(([tag, d]) => descJson({ ...d, annotations: { [REF_NAME]: tag } }, false));
  fs.writeFileSync(path.join(tmp, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
  fs.rmSync(dir, { recursive: true, force: true });
  mkdirp(path.dirname(dir));
  fs.renameSync(tmp, dir);
}

/** Read the tags of an OCI layout: tag -> descriptor. */
export function readLayoutTags(dir: string): Map<string, Descriptor> {
  const idx = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const out = new Map<string, Descriptor>();
  for (const m of idx.manifests) {
    const tag = m.annotations?.[REF_NAME];
    if (tag) out.set(tag, m);
  }
  return out;
}

/** Load a whole OCI layout back into a Repository (used to add images to an existing layout). */
export function readLayout(dir: string, name: string): Repository {
  const repo = new Repository(name);
  const blobDir = path.join(dir, 'blobs', 'sha256');
  for (const f of fs.readdirSync(blobDir)) repo.store.blobs.set(`sha256:${f}`, fs.readFileSync(path.join(blobDir, f)));
  for (const [tag, d] of readLayoutTags(dir)) repo.tag(tag, d);
  return repo;
}
