/**
 * Tiny hand-made images for tests that need specific upstream content (catalogs with chosen entries, unsigned or
 * wrongly signed images), pushed with the factory's own OCI client to a real registry.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tarBuffer } from '@factory/archive';
import { MediaTypes, RegistryClient } from '@factory/oci';

/** A plain ustar archive of regular files (sorted, mode 0644, mtime 0, device fields NUL). */
export function tarOf(files: Record<string, string | Buffer>): Buffer {
  return tarBuffer(
    Object.keys(files)
      .sort()
      .map((name) => {
        const data = Buffer.isBuffer(files[name]) ? (files[name] as Buffer) : Buffer.from(files[name] as string);
        return { type: 'file' as const, name, mode: 0o644, size: data.length, data };
      }),
    { deviceNumbers: false },
  );
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes a single-layer linux/amd64 OCI image (inside an index) and returns the index digest. */
export async function pushFilesImage(client: RegistryClient, repo: string, tag: string, files: Record<string, string | Buffer>): Promise<string> {
  const tar = tarOf(files);
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(tar)] }, config: {} }));
  await client.pushBlob(repo, layer);
  await client.pushBlob(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: digestOf(layer), size: layer.length }],
    }),
  );
  const mDigest = await client.pushManifest(repo, digestOf(manifest), MediaTypes.ociManifest, manifest);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [{ mediaType: MediaTypes.ociManifest, digest: mDigest, size: manifest.length, platform: { architecture: 'amd64', os: 'linux' } }],
    }),
  );
  return client.pushManifest(repo, tag, MediaTypes.ociIndex, index);
}
