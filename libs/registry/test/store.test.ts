import { generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createObjectStore, isStorageError } from '@factory/storage';
import type { ObjectStore } from '@factory/storage';
import { COSIGN_SIGNATURE_ANNOTATION, MediaTypes, sha256Digest, signPayload, simpleSigningPayload } from '@factory/oci';
import { OciContentStore } from '../src';

const ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';
const REPO = `installer/${ID}`;

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

let dir: string;
let objects: ObjectStore;
let store: OciContentStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'registry-store-'));
  objects = createObjectStore({ kind: 'local', dir });
  store = new OciContentStore(objects);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function imageManifest(config: Buffer, layer: Buffer, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, size: config.length, digest: sha256Digest(config) },
    layers: [{ mediaType: MediaTypes.ociLayerGzip, size: layer.length, digest: sha256Digest(layer) }],
    ...extra,
  }));
}

describe('blobs', () => {
  test('put / has / stat / get / range, content-addressed key', async () => {
    const data = Buffer.from('hello registry');
    const digest = sha256Digest(data);
    expect(await store.hasBlob(digest)).toBe(false);
    expect(await store.putBlob(digest, data)).toEqual({ digest, size: data.length, existed: false });
    expect(await store.hasBlob(digest)).toBe(true);
    expect(await store.statBlob(digest)).toEqual({ digest, size: data.length, contentType: 'application/octet-stream' });
    expect(await objects.head(`oci/blobs/sha256/${digest.slice(7)}`)).toMatchObject({ size: data.length, sha256: digest.slice(7) });
    const got = await store.getBlob(digest);
    expect(await readAll(got!.body)).toEqual(data);
    const part = await store.getBlob(digest, { start: 6, end: 100 });
    expect(part!.range).toEqual({ start: 6, end: data.length - 1 });
    expect((await readAll(part!.body)).toString()).toBe('registry');
    expect(await store.presignBlob(digest, 60)).toBeNull(); // local backend
    expect(await store.putBlob(digest, data)).toMatchObject({ existed: true });
  });

  test('streams with size; a stream for an existing blob is not re-read', async () => {
    const data = Buffer.alloc(300_000, 7);
    const digest = sha256Digest(data);
    expect(await store.putBlob(digest, Readable.from([data.subarray(0, 1000), data.subarray(1000)]), data.length)).toMatchObject({ size: data.length, existed: false });
    const again = Readable.from([data]);
    expect(await store.putBlob(digest, again, data.length)).toMatchObject({ existed: true });
    expect(again.destroyed).toBe(true);
  });

  test('a wrong digest is never published', async () => {
    const data = Buffer.from('abc');
    const wrong = sha256Digest(Buffer.from('abd'));
    const err = await store.putBlob(wrong, data).catch((e: unknown) => e);
    expect(isStorageError(err, 'DIGEST_MISMATCH')).toBe(true);
    await expect(store.putBlob(wrong, Readable.from([data]))).rejects.toThrow();
    expect(await store.hasBlob(wrong)).toBe(false);
    expect(await store.hasBlob(sha256Digest(data))).toBe(false);
  });

  test('size mismatch and bad digests', async () => {
    const data = Buffer.from('abc');
    await expect(store.putBlob(sha256Digest(data), data, 4)).rejects.toThrow(/size/);
    await expect(store.putBlob('sha256:xyz', data)).rejects.toThrow(/invalid digest/);
    await expect(store.putBlob('sha512:' + 'a'.repeat(128), data)).rejects.toThrow(/invalid digest/);
    expect(await store.statBlob('sha256:nothex')).toBeNull();
    expect(await store.getBlob('../../etc/passwd')).toBeNull();
    expect(await store.hasBlob('sha512:' + 'a'.repeat(128))).toBe(false);
  });
});

describe('manifests and tags', () => {
  test('putManifest stores with the media type; tags point at descriptors', async () => {
    const config = Buffer.from('{}');
    const layer = Buffer.from('layer');
    await store.putBlob(sha256Digest(config), config);
    await store.putBlob(sha256Digest(layer), layer);
    const bytes = imageManifest(config, layer);
    const desc = await store.putManifest(bytes, MediaTypes.ociManifest);
    expect(desc).toEqual({ mediaType: MediaTypes.ociManifest, digest: sha256Digest(bytes), size: bytes.length });
    expect((await objects.head(`oci/blobs/sha256/${desc.digest.slice(7)}`))?.contentType).toBe(MediaTypes.ociManifest);
    expect(await store.getManifest(desc.digest)).toEqual({ ...desc, bytes });
    // a layer is not a manifest
    expect(await store.getManifest(sha256Digest(layer))).toBeNull();

    expect(await store.getTag(REPO, 'v1.2.3')).toBeNull();
    await store.setTag(REPO, 'v1.2.3', desc);
    expect(await store.getTag(REPO, 'v1.2.3')).toEqual(desc);
    expect(JSON.parse((await objects.getBuffer(`oci/tags/${REPO}/v1.2.3`, 1024))!.toString())).toEqual(desc);
    expect(await store.resolveManifest(REPO, 'v1.2.3')).toMatchObject({ digest: desc.digest });
    expect(await store.resolveManifest(REPO, desc.digest)).toMatchObject({ digest: desc.digest });
    expect(await store.resolveManifest('other/repo', 'v1.2.3')).toBeNull();
    await store.setTag(REPO, 'v1.2.4', desc);
    await store.setTag(`${REPO}/nested`, 'x', desc);
    expect(await store.listTags(REPO)).toEqual(['v1.2.3', 'v1.2.4']);
    await store.deleteTag(REPO, 'v1.2.4');
    expect(await store.listTags(REPO)).toEqual(['v1.2.3']);
  });

  test('a blob put later under the same digest keeps the manifest media type', async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }));
    const desc = await store.putManifest(bytes, MediaTypes.ociIndex);
    await store.putBlob(desc.digest, bytes);
    expect((await store.getManifest(desc.digest))?.mediaType).toBe(MediaTypes.ociIndex);
  });

  test('rejects bad manifests and bad tags', async () => {
    await expect(store.putManifest(Buffer.from('not json'), MediaTypes.ociManifest)).rejects.toThrow(/JSON/);
    await expect(store.putManifest(Buffer.from('{"mediaType":"x"}'), MediaTypes.ociManifest)).rejects.toThrow(/mediaType/);
    await expect(store.putManifest(Buffer.from('{}'), 'application/json')).rejects.toThrow(/media type/);
    const desc = { mediaType: MediaTypes.ociManifest, digest: sha256Digest(Buffer.from('missing')), size: 7 };
    await expect(store.setTag(REPO, 'v1', desc)).rejects.toThrow(/not stored/);
    await expect(store.setTag('Bad/Repo', 'v1', desc)).rejects.toThrow(/repository/);
    await expect(store.setTag(REPO, '../x', desc)).rejects.toThrow(/tag/);
    expect(await store.getTag('Bad/Repo', 'v1')).toBeNull();
    expect(await store.getTag(REPO, '..')).toBeNull();
    expect(await store.getTag(REPO, 'a'.repeat(200))).toBeNull();
  });
});

describe('referrers', () => {
  test('manifests with a subject are listed; artifactType filter', async () => {
    const subjectBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }));
    const subject = await store.putManifest(subjectBytes, MediaTypes.ociIndex);
    const empty = await store.referrersIndex(subject.digest);
    expect(JSON.parse(empty.bytes.toString())).toEqual({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] });
    expect(empty.digest).toBe(sha256Digest(empty.bytes));

    const cfg = Buffer.from('{}');
    await store.putBlob(sha256Digest(cfg), cfg);
    const a = await store.putManifest(imageManifest(cfg, Buffer.from('spdx'), {
      artifactType: 'application/spdx+json', subject, annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    }), MediaTypes.ociManifest);
    const b = await store.putManifest(imageManifest(cfg, Buffer.from('prov'), {
      artifactType: 'application/vnd.in-toto+json', subject,
    }), MediaTypes.ociManifest);
    const all = await store.listReferrers(subject.digest);
    expect(all.map((d) => d.digest).sort()).toEqual([a.digest, b.digest].sort());
    expect(all.find((d) => d.digest === a.digest)).toEqual({
      ...a, artifactType: 'application/spdx+json', annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    expect((await store.listReferrers(subject.digest, 'application/spdx+json')).map((d) => d.digest)).toEqual([a.digest]);
    expect(await store.listReferrers('sha256:bad')).toEqual([]);

    // explicit addReferrer
    const other = sha256Digest(Buffer.from('other subject'));
    await store.addReferrer(other, { mediaType: MediaTypes.ociManifest, digest: b.digest, size: b.size, artifactType: 'x/y' });
    expect(await store.listReferrers(other)).toEqual([{ mediaType: MediaTypes.ociManifest, digest: b.digest, size: b.size, artifactType: 'x/y' }]);
  });
});

describe('cosign signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  test('layout of §5.7; signatures are appended once', async () => {
    const subject = await store.putManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] })), MediaTypes.ociIndex);
    const payload = simpleSigningPayload(`factory.example/${REPO}`, subject.digest);
    const sig = signPayload(privateKey, payload);
    const created = '2025-01-02T03:04:05Z';
    const desc = await store.putCosignSignature(REPO, subject.digest, payload, sig, created);

    const tag = `sha256-${subject.digest.slice(7)}.sig`;
    expect(await store.getTag(REPO, tag)).toEqual(desc);
    const m = await store.getManifest(desc.digest);
    expect(m!.mediaType).toBe(MediaTypes.ociManifest);
    const json = JSON.parse(m!.bytes.toString());
    expect(json.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(json.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(json.layers).toEqual([{
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', size: payload.length, digest: sha256Digest(payload),
      annotations: { 'dev.cosignproject.cosign/signature': sig },
    }]);
    const config = JSON.parse((await readAll((await store.getBlob(json.config.digest))!.body)).toString());
    expect(config.created).toBe(created);
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: [sha256Digest(payload)] });
    const storedPayload = await readAll((await store.getBlob(sha256Digest(payload)))!.body);
    expect(storedPayload).toEqual(payload);
    expect(cryptoVerify('sha256', storedPayload, publicKey, Buffer.from(json.layers[0].annotations[COSIGN_SIGNATURE_ANNOTATION], 'base64'))).toBe(true);

    // same signature again: unchanged
    expect(await store.putCosignSignature(REPO, subject.digest, payload, sig, created)).toEqual(desc);
    // a second key appends
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sig2 = signPayload(other.privateKey, payload);
    const desc2 = await store.putCosignSignature(REPO, subject.digest, payload, sig2, new Date('2025-02-01T00:00:00Z'));
    const json2 = JSON.parse((await store.getManifest(desc2.digest))!.bytes.toString());
    expect(json2.layers.map((l: any) => l.annotations[COSIGN_SIGNATURE_ANNOTATION])).toEqual([sig, sig2]);
    // replace
    const desc3 = await store.putCosignSignature(REPO, subject.digest, payload, sig2, created, { replace: true });
    expect(JSON.parse((await store.getManifest(desc3.digest))!.bytes.toString()).layers).toHaveLength(1);
  });

  test('payload must name the subject', async () => {
    const d1 = sha256Digest(Buffer.from('one'));
    const d2 = sha256Digest(Buffer.from('two'));
    const payload = simpleSigningPayload('x/y', d1);
    await expect(store.putCosignSignature(REPO, d2, payload, signPayload(privateKey, payload), '2025-01-01T00:00:00Z')).rejects.toThrow(/names/);
    await expect(store.putCosignSignature(REPO, d1, payload, '', '2025-01-01T00:00:00Z')).rejects.toThrow(/base64/);
  });
});

describe('memory of content-addressed data', () => {
  test('blob sizes and manifest bytes are read from the object store once', async () => {
    const fresh = new OciContentStore(objects);
    const blob = Buffer.from('remember me');
    await fresh.putBlob(sha256Digest(blob), blob);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }));
    const { digest } = await fresh.putManifest(manifest, MediaTypes.ociIndex);
    const head = jest.spyOn(objects, 'head');
    const get = jest.spyOn(objects, 'get');
    try {
      for (let i = 0; i < 3; i++) {
        expect((await fresh.statBlob(sha256Digest(blob)))?.size).toBe(blob.length);
        expect((await fresh.getManifest(digest))?.bytes).toEqual(manifest);
      }
      expect(head).toHaveBeenCalledTimes(1);
      expect(get).toHaveBeenCalledTimes(1);
      // absent things are not remembered
      expect(await fresh.statBlob(sha256Digest(Buffer.from('later')))).toBeNull();
      await fresh.putBlob(sha256Digest(Buffer.from('later')), Buffer.from('later'));
      expect((await fresh.statBlob(sha256Digest(Buffer.from('later'))))?.size).toBe(5);
    } finally {
      head.mockRestore();
      get.mockRestore();
    }
  });
});
