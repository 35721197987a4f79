/** A small hand-made installer-like image in an OciContentStore, and an express app serving it. */
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import express from 'express';
import { createObjectStore } from '@factory/storage';
import type { ObjectStore } from '@factory/storage';
import { MediaTypes, sha256Digest, signPayload, simpleSigningPayload } from '@factory/oci';
import type { Descriptor } from '@factory/oci';
import {
  OciContentStore, RegistryError, RegistryRouterDeps, createRegistryRouter, invalidImageMessage, manifestUnknown,
} from '../src';
import { tarOf } from '../../../test/support/oci-fixtures';

export const ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';
export const TAG = 'v1.2.3';

export interface TestImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  layer: Buffer;
  layerDigest: string;
  signature: Descriptor;
  publicKey: KeyObject;
}

/** Docker schema2 image (config + one gzip layer) tagged `installer/<ID>:v1.2.3`, signed with a fresh P-256 key. */
export async function pushTestImage(store: OciContentStore, registryHost = 'factory.test'): Promise<TestImage> {
  const rawLayer = tarOf({ 'usr/bin/installer': '#!/bin/sh\necho installer\n', 'usr/install/amd64/vmlinuz': Buffer.alloc(4096, 1) });
  const layer = gzipSync(rawLayer);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: ['/usr/bin/installer'] },
    rootfs: { type: 'layers', diff_ids: [sha256Digest(rawLayer)] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'test' }],
    created: '2024-01-01T00:00:00Z',
  }));
  await store.putBlob(sha256Digest(config), config, config.length);
  await store.putBlob(sha256Digest(layer), layer, layer.length);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifest,
    config: { mediaType: MediaTypes.dockerConfig, size: config.length, digest: sha256Digest(config) },
    layers: [{ mediaType: MediaTypes.dockerLayerGzip, size: layer.length, digest: sha256Digest(layer) }],
  }));
  const desc = await store.putManifest(manifest, MediaTypes.dockerManifest);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const repo = `installer/${ID}`;
  const payload = simpleSigningPayload(`${registryHost}/${repo}`, desc.digest);
  const signature = await store.putCosignSignature(repo, desc.digest, payload, signPayload(privateKey, payload), '2024-01-01T00:00:00Z');
  await store.setTag(repo, TAG, desc); // last
  return {
    manifest, manifestDigest: desc.digest, config, layer, layerDigest: sha256Digest(layer), signature, publicKey,
  };
}

export interface TestServer {
  url: string;
  host: string;
  store: OciContentStore;
  objects: ObjectStore;
  calls: { resolve: string[]; check: string[] };
  errors: unknown[];
  close(): Promise<void>;
}

/** Deps that behave like the gateway will: one known schematic, installer names only, `latest` → v1.2.3, no builds. */
export function testDeps(store: OciContentStore, calls: TestServer['calls']): Pick<RegistryRouterDeps, 'resolveManifest' | 'checkRepository'> {
  const check = (r: { schematicId: string; image: string; platform: string | null }) => {
    if (r.schematicId !== ID) throw new RegistryError(404, `schematic ID ${JSON.stringify(r.schematicId)} not found`);
    if (r.platform === null) throw new RegistryError(400, invalidImageMessage(r.image));
  };
  return {
    async resolveManifest(r) {
      calls.resolve.push(`${r.method} ${r.image}/${r.schematicId}:${r.reference}`);
      check(r);
      if (r.reference === 'v0.0.0-boom') throw new Error('secret internal detail');
      const ref = r.reference === 'latest' ? TAG : r.reference;
      const desc = await store.getTag(`${r.image}/${r.schematicId}`, ref);
      if (!desc) throw manifestUnknown();
      return desc;
    },
    async checkRepository(r) {
      calls.check.push(`${r.method} ${r.image}/${r.schematicId}`);
      check(r);
    },
  };
}

export async function startTestServer(
  opts: { objects?: (dir: string) => ObjectStore; extra?: Partial<RegistryRouterDeps> } = {},
): Promise<TestServer & { image: TestImage }> {
  const dir = mkdtempSync(join(tmpdir(), 'registry-http-'));
  const objects = opts.objects ? opts.objects(dir) : createObjectStore({ kind: 'local', dir });
  const store = new OciContentStore(objects);
  const calls = { resolve: [] as string[], check: [] as string[] };
  const errors: unknown[] = [];
  const app = express();
  app.use('/v2', createRegistryRouter({ store, ...testDeps(store, calls), onError: (e) => errors.push(e), ...opts.extra }));
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('404 page not found\n');
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  const image = await pushTestImage(store, host);
  return {
    url: `http://${host}`, host, store, objects, calls, errors, image,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
