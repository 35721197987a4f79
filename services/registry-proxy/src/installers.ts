/**
 * Installer images of the factory's registry (anchor-api §5.3): `<image>/<schematic>:<version>` is an OCI index of
 * the amd64 and arm64 installer images, built as installer tarballs by build-workers (whose blobs and manifests land
 * in the OCI store as they are built), signed by the signing service, and tagged last — so a tag is visible only
 * when every blob, both manifests, the index and its signature are stored.
 */
import { createPublicKey, KeyObject, verify } from 'node:crypto';
import { COSIGN_SIGNATURE_ANNOTATION, cosignSignatureTag, Descriptor, MediaTypes, simpleSigningPayload } from '@factory/oci';
import { AssetProfile, CatalogView, enhanceProfile, ensureAsset, OciDescriptor } from '@factory/asset';
import type { InstallerRef, PayloadOf, ResultOf } from '@factory/queue';
import { parseSchematic } from '@factory/schematic';
import { FactoryError, JobVanishedError } from '@factory/errors';
import type { OciContentStore } from '@factory/registry';
import type { ObjectStore } from '@factory/storage';
import { formatAssetPath, parseRequestVersion } from '@factory/talos';
import type { Logger } from '@factory/telemetry';

/** The jobs this module asks other services for. */
export interface InstallerJobs {
  call(name: 'schematic.get', payload: PayloadOf<'schematic.get'>, opts?: { timeoutMs?: number }): Promise<ResultOf<'schematic.get'>>;
  call(name: 'build.asset', payload: PayloadOf<'build.asset'>, opts: { jobId: string; timeoutMs: number; removeWhenDone: boolean; priority?: number }): Promise<ResultOf<'build.asset'>>;
  call(name: 'signing.installer', payload: PayloadOf<'signing.installer'>, opts?: { timeoutMs?: number }): Promise<ResultOf<'signing.installer'>>;
  call(name: 'signing.publicKey', payload: PayloadOf<'signing.publicKey'>, opts?: { timeoutMs?: number }): Promise<ResultOf<'signing.publicKey'>>;
  call(name: 'signing.secureBootPublic', payload: PayloadOf<'signing.secureBootPublic'>, opts?: { timeoutMs?: number }): Promise<ResultOf<'signing.secureBootPublic'>>;
}

export interface InstallerOptions {
  jobs: InstallerJobs;
  /** the upstream catalog, for resolving the installer asset profiles */
  catalog: CatalogView;
  objects: ObjectStore;
  oci: OciContentStore;
  /** host[:port] clients pull from: the signature's docker-reference is `<registryHost>/<image>/<schematic>` */
  registryHost: string;
  buildTimeoutMs: number;
  logger: Logger;
  /** Called with the object key of an installer tarball found stored (its last access, for the storage budget). */
  onAssetAccess?: (objectKey: string) => void;
}

export const INSTALLER_ARCHES = ['amd64', 'arm64'] as const;

export const installerRepo = (ref: Pick<InstallerRef, 'image' | 'schematicId'>) => `${ref.image}/${ref.schematicId}`;
export const installerJobId = (ref: InstallerRef) => `installer-${ref.image}-${ref.schematicId}-${ref.version}`;

/**
 * The installer tarball profiles (amd64, arm64) an installer image is made of: the same profiles (hence asset keys)
 * as downloads of `installer-<arch>.tar` from /image. Fails with the anchor's 4xx for what the request and schematic
 * decide (secure boot, version gates, unknown extensions or overlay, version not available).
 */
export async function installerProfiles(ref: InstallerRef, schematicYaml: string, catalog: CatalogView): Promise<AssetProfile[]> {
  const version = parseRequestVersion(ref.version);
  if (!version) throw new FactoryError(400, `invalid version ${JSON.stringify(ref.version)}: expected a semantic version such as v1.11.0`);
  const schematic = parseSchematic(schematicYaml);
  return Promise.all(
    INSTALLER_ARCHES.map((arch) => {
      const request = { kind: 'installer' as const, platform: ref.platform, arch, secureboot: ref.secureboot, outFormat: 'raw' as const };
      return enhanceProfile({ schematicId: ref.schematicId, version: ref.version, ...request, path: formatAssetPath(request) }, version, schematic, schematicYaml, catalog);
    }),
  );
}

export class Installers {
  private publicKey?: Promise<KeyObject>;

  constructor(private readonly o: InstallerOptions) {}

  /** The signing service's cosign public key (asked once; a failed ask is retried next time). */
  private key(): Promise<KeyObject> {
    if (!this.publicKey) {
      this.publicKey = this.o.jobs.call('signing.publicKey', { key: 'cosign' }).then(({ pem }) => createPublicKey(pem));
      this.publicKey.catch(() => (this.publicKey = undefined));
    }
    return this.publicKey;
  }

  /**
   * The published tag when it exists and its cosign signature verifies with the current key; null otherwise (a
   * rotated key makes old tags rebuild and re-sign, as in the anchor).
   */
  async published(ref: InstallerRef): Promise<Descriptor | null> {
    const repo = installerRepo(ref);
    const tagged = await this.o.oci.getTag(repo, ref.version);
    if (!tagged) return null;
    if (await this.signatureValid(repo, tagged.digest)) return tagged;
    this.o.logger.warn({ repo, tag: ref.version, digest: tagged.digest }, 'installer signature does not verify: rebuilding');
    return null;
  }

  async signatureValid(repo: string, digest: string): Promise<boolean> {
    const sig = await this.o.oci.resolveManifest(repo, cosignSignatureTag(digest));
    if (!sig) return false;
    let layers: Array<{ digest?: string; annotations?: Record<string, string> }>;
    try {
      layers = (JSON.parse(sig.bytes.toString('utf8')) as { layers?: typeof layers }).layers ?? [];
    } catch {
      return false;
    }
    const key = await this.key();
    for (const layer of layers) {
      const signature = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
      if (!signature || !layer.digest) continue;
      const blob = await this.o.oci.getBlob(layer.digest);
      if (!blob) continue;
      const payload = await readAll(blob.body, 64 * 1024);
      let claimed: unknown;
      try {
        claimed = (JSON.parse(payload.toString('utf8')) as { critical?: { image?: { 'docker-manifest-digest'?: unknown } } }).critical?.image?.['docker-manifest-digest'];
      } catch {
        continue;
      }
      if (claimed === digest && verify('sha256', payload, key, Buffer.from(signature, 'base64'))) return true;
    }
    return false;
  }

  /**
   * The `registry.installer` job: find or build, sign and tag `<image>/<schematic>:<version>`. Its builds get the
   * job's own priority (the pulling client's fair share; 1 when none was given — a build without a priority would
   * run before every prioritized one).
   */
  async publish(ref: InstallerRef, priority = 1): Promise<OciDescriptor> {
    const existing = await this.published(ref);
    if (existing) return existing;
    const repo = installerRepo(ref);
    const { yaml } = await this.o.jobs.call('schematic.get', { id: ref.schematicId });
    const started = Date.now();
    const profiles = await installerProfiles(ref, yaml, this.o.catalog);
    // Both architectures build concurrently on however many workers there are.
    const records = await Promise.all(
      profiles.map(async (profile) => {
        const { record } = await ensureAsset(this.o.jobs, this.o.objects, profile, { timeoutMs: this.o.buildTimeoutMs, onHit: this.o.onAssetAccess, beforeBuild: async () => ({ priority }) });
        if (!record.image) throw new Error(`installer asset ${profile.path} has no image manifest (built by an older worker?)`);
        return { arch: profile.arch, image: record.image };
      }),
    );
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: records.map(({ arch, image }) => ({ mediaType: image.mediaType, digest: image.digest, size: image.size, platform: { architecture: arch, os: 'linux' } })),
      }),
    );
    const descriptor = await this.o.oci.putManifest(index, MediaTypes.ociIndex);
    // The signing service derives the payload itself from what it finds in the store.
    const signed = await this.o.jobs.call('signing.installer', { repository: repo, digest: descriptor.digest });
    const payload = Buffer.from(signed.payloadBase64, 'base64');
    if (!payload.equals(simpleSigningPayload(`${this.o.registryHost}/${repo}`, descriptor.digest))) {
      throw new Error(`the signing service signed a different payload for ${repo}@${descriptor.digest} (is FACTORY_EXTERNAL_URL the same for both?)`);
    }
    await this.o.oci.putCosignSignature(repo, descriptor.digest, payload, signed.signatureBase64, new Date());
    // Read after write: the tag goes up only when the stored signature verifies.
    if (!(await this.signatureValid(repo, descriptor.digest))) throw new Error(`signature of ${repo}@${descriptor.digest} does not verify after storing it`);
    await this.o.oci.setTag(repo, ref.version, descriptor);
    this.o.logger.info({ repo, tag: ref.version, digest: descriptor.digest, ms: Date.now() - started }, 'installer published');
    return { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  }
}

/**
 * Asks for the installer through the queue (one build cluster-wide), tolerating a job removed right after it
 * finished. `priority` (the pulling client's fair share) is the job's, and its builds'.
 */
export async function requestInstaller(
  jobs: { call(name: 'registry.installer', payload: InstallerRef, opts: { jobId: string; timeoutMs: number; removeWhenDone: boolean; priority?: number }): Promise<OciDescriptor> },
  installers: Installers,
  ref: InstallerRef,
  timeoutMs: number,
  priority?: number,
): Promise<Descriptor> {
  try {
    return await jobs.call('registry.installer', ref, { jobId: installerJobId(ref), timeoutMs, removeWhenDone: true, ...(priority ? { priority } : {}) });
  } catch (err) {
    if (err instanceof JobVanishedError) {
      const published = await installers.published(ref);
      if (published) return published;
    }
    throw err;
  }
}

async function readAll(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
    n += b.length;
    if (n > max) throw new FactoryError(502, 'signature payload is too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
