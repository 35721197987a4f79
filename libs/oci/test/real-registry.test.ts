/**
 * Integration-style tests against a real Debian docker-registry (distribution 2.8) on a loopback port,
 * plus skopeo reading (and copying) what this client pushed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import {
  COSIGN_SIGNATURE_ANNOTATION, CosignError, MediaTypes, OciError, RegistryClient, cosignSignatureTag, pushCosignSignature,
  readImageFiles, sha256Digest, simpleSigningPayload, verifyCosignSignature,
} from '../src';
import { startRegistry } from '../../../test/support/procs';
import { makeTar } from './tarball';

const run = promisify(execFile);
const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;

jest.setTimeout(60_000);

let registry: { host: string; stop(): Promise<void> };
let client: RegistryClient;
const repo = 'siderolabs/imager';

/** Pushed fixtures */
const fx: { amd64: { digest: string; raw: Buffer }; arm64: { digest: string; raw: Buffer }; index: { digest: string; raw: Buffer } } = {} as any;

async function pushJson(r: string, ref: string, mediaType: string, obj: unknown): Promise<{ digest: string; raw: Buffer }> {
  const raw = Buffer.from(JSON.stringify(obj));
  const digest = await client.pushManifest(r, ref, mediaType, raw);
  return { digest, raw };
}

beforeAll(async () => {
  registry = await startRegistry();
  client = new RegistryClient({ registry: registry.host, insecure: true, retryDelayMs: 20 });

  // amd64: OCI manifest, two gzip layers, the second one whites out a file and a directory of the first
  const l1 = gzipSync(await makeTar([
    { name: 'usr/install/amd64/vmlinuz', data: 'kernel-amd64' },
    { name: 'usr/install/amd64/initramfs.xz', data: 'initramfs-amd64' },
    { name: 'usr/install/arm64/vmlinuz', data: 'kernel-arm64' },
    { name: 'usr/install/amd64/dtb/a.dtb', data: 'dtb' },
    { name: 'usr/bin/installer', data: 'bin' },
  ]));
  const l2 = gzipSync(await makeTar([
    { name: 'usr/install/arm64/.wh.vmlinuz' },
    { name: 'usr/install/amd64/.wh.dtb' },
    { name: 'usr/install/amd64/systemd-boot.efi', data: 'sd-boot' },
  ]));
  const cfgAmd = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['VERSION=v1.7.0'] },
    rootfs: { type: 'layers', diff_ids: [] } }));
  fx.amd64 = await pushJson(repo, 'v1.7.0-amd64', MediaTypes.ociManifest, {
    schemaVersion: 2, mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: await client.pushBlob(repo, cfgAmd), size: cfgAmd.length },
    layers: [
      { mediaType: MediaTypes.ociLayerGzip, digest: await client.pushBlob(repo, l1), size: l1.length },
      { mediaType: MediaTypes.ociLayerGzip, digest: await client.pushBlob(repo, l2), size: l2.length },
    ],
  });

  // arm64: Docker schema2 manifest
  const l3 = gzipSync(await makeTar([{ name: 'usr/install/arm64/vmlinuz', data: 'kernel-arm64-only' }]));
  const cfgArm = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } }));
  fx.arm64 = await pushJson(repo, 'v1.7.0-arm64', MediaTypes.dockerManifest, {
    schemaVersion: 2, mediaType: MediaTypes.dockerManifest,
    config: { mediaType: MediaTypes.dockerConfig, digest: await client.pushBlob(repo, cfgArm), size: cfgArm.length },
    layers: [{ mediaType: MediaTypes.dockerLayerGzip, digest: await client.pushBlob(repo, l3), size: l3.length }],
  });

  // index: pushed by digest first, then tagged
  const index = {
    schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [
      { mediaType: MediaTypes.ociManifest, digest: fx.amd64.digest, size: fx.amd64.raw.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaTypes.dockerManifest, digest: fx.arm64.digest, size: fx.arm64.raw.length, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  };
  const raw = Buffer.from(JSON.stringify(index));
  const d = sha256Digest(raw);
  expect(await client.pushManifest(repo, d, MediaTypes.ociIndex, raw)).toBe(d);
  fx.index = await pushJson(repo, 'v1.7.0', MediaTypes.ociIndex, index);
  expect(fx.index.digest).toBe(d);
});

afterAll(async () => { await registry?.stop(); });

test('ping', async () => {
  await client.ping();
});

test('manifests read back byte-exact, by tag and by digest; HEAD descriptors', async () => {
  for (const [tag, m, mt] of [
    ['v1.7.0-amd64', fx.amd64, MediaTypes.ociManifest], ['v1.7.0-arm64', fx.arm64, MediaTypes.dockerManifest], ['v1.7.0', fx.index, MediaTypes.ociIndex],
  ] as const) {
    const byTag = await client.getManifest(repo, tag);
    expect(byTag.raw.equals(m.raw)).toBe(true);
    expect(byTag.digest).toBe(m.digest);
    expect(byTag.mediaType).toBe(mt);
    const byDigest = await client.getManifest(repo, m.digest);
    expect(byDigest.raw.equals(m.raw)).toBe(true);
    expect(await client.headManifest(repo, tag)).toEqual({ mediaType: mt, digest: m.digest, size: m.raw.length });
  }
  expect(await client.headManifest(repo, 'v0.0.0')).toBeNull();
  await expect(client.getManifest(repo, 'v0.0.0')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  await expect(client.getManifest('no/such-repo', 'v1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
});

test('resolveImage by platform', async () => {
  const amd = await client.resolveImage(repo, 'v1.7.0', { os: 'linux', architecture: 'amd64' });
  expect(amd.digest).toBe(fx.amd64.digest);
  expect(amd.mediaType).toBe(MediaTypes.ociManifest);
  const arm = await client.resolveImage(repo, fx.index.digest, { os: 'linux', architecture: 'arm64' });
  expect(arm.digest).toBe(fx.arm64.digest);
  expect(arm.mediaType).toBe(MediaTypes.dockerManifest);
  await expect(client.resolveImage(repo, 'v1.7.0', { os: 'linux', architecture: 'riscv64' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  expect((await client.resolveImage(repo, 'v1.7.0-arm64', { os: 'linux', architecture: 'amd64' })).digest).toBe(fx.arm64.digest);
});

test('Docker manifest list works too', async () => {
  const list = await pushJson(repo, 'list', MediaTypes.dockerManifestList, {
    schemaVersion: 2, mediaType: MediaTypes.dockerManifestList, manifests: [
      { mediaType: MediaTypes.dockerManifest, digest: fx.arm64.digest, size: fx.arm64.raw.length, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  });
  expect((await client.getManifest(repo, 'list')).mediaType).toBe(MediaTypes.dockerManifestList);
  expect((await client.resolveImage(repo, list.digest, { os: 'linux', architecture: 'arm64' })).digest).toBe(fx.arm64.digest);
});

test('listTags (with and without n)', async () => {
  const all = await client.listTags(repo);
  expect(all).toEqual(expect.arrayContaining(['v1.7.0', 'v1.7.0-amd64', 'v1.7.0-arm64']));
  // distribution 2.8 ignores n for tag lists (no Link header); Link pagination is covered by the mock-registry tests
  const paged = await client.listTags(repo, { pageSize: 2 });
  expect(paged.sort()).toEqual([...all].sort());
  await expect(client.listTags('no/such-repo')).rejects.toMatchObject({ code: 'NOT_FOUND' });
});

test('readImageFiles flattens layers with whiteouts', async () => {
  const m = await client.resolveImage(repo, 'v1.7.0', { os: 'linux', architecture: 'amd64' });
  const files = await readImageFiles(client, repo, m, (p) => p.startsWith('usr/install/'));
  expect(Object.fromEntries([...files].map(([k, v]) => [k, v.toString()]))).toEqual({
    'usr/install/amd64/vmlinuz': 'kernel-amd64',
    'usr/install/amd64/initramfs.xz': 'initramfs-amd64',
    'usr/install/amd64/systemd-boot.efi': 'sd-boot',
  });
  const arm = await readImageFiles(client, repo, await client.resolveImage(repo, 'v1.7.0', { os: 'linux', architecture: 'arm64' }), () => true);
  expect(arm.get('usr/install/arm64/vmlinuz')?.toString()).toBe('kernel-arm64-only');
});

test('blobs: stream, buffer, HEAD, existing blobs are not uploaded again, unknown digest', async () => {
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 9);
  const d = await client.pushBlob('factory/cache', data);
  expect(d).toBe(sha256Digest(data));
  expect(await client.pushBlob('factory/cache', data)).toBe(d);
  expect(await client.headBlob('factory/cache', d)).toEqual({ size: data.length });
  expect((await client.getBlob('factory/cache', d, data.length)).equals(data)).toBe(true);
  await expect(client.getBlob('factory/cache', d, data.length - 1)).rejects.toMatchObject({ code: 'TOO_LARGE' });
  const chunks: Buffer[] = [];
  for await (const c of await client.getBlobStream('factory/cache', d)) chunks.push(c as Buffer);
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
  await expect(client.getBlob('factory/cache', sha256Digest('nope'), 10)).rejects.toMatchObject({ code: 'NOT_FOUND' });
});

describe('cosign', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = key.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;

  /** Pushes a hand-made signature manifest (one simple-signing layer per payload) at the `.sig` tag of `digest`. */
  async function pushSignature(digest: string, layers: { payload: Buffer; signature: string }[]): Promise<void> {
    const descs = [];
    for (const l of layers) {
      descs.push({ mediaType: MediaTypes.cosignSimpleSigning, digest: await client.pushBlob(repo, l.payload), size: l.payload.length,
        annotations: { [COSIGN_SIGNATURE_ANNOTATION]: l.signature } });
    }
    const config = Buffer.from(JSON.stringify({ architecture: '', created: '2024-01-01T00:00:00Z', os: '',
      rootfs: { type: 'layers', diff_ids: descs.map((x) => x.digest) }, config: {} }));
    await pushJson(repo, cosignSignatureTag(digest), MediaTypes.ociManifest, {
      schemaVersion: 2, mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: await client.pushBlob(repo, config), size: config.length },
      layers: descs,
    });
  }
  const signed = (payload: Buffer) => ({ payload, signature: sign('sha256', payload, key.privateKey).toString('base64') });

  test('valid signature verifies; another key, a tampered payload and another digest are rejected', async () => {
    const ref = `${registry.host}/${repo}`;
    const subject = fx.index.digest;
    await expect(verifyCosignSignature(client, repo, subject, pub)).rejects.toMatchObject({ reason: 'NO_SIGNATURE' });

    const good = signed(simpleSigningPayload(ref, subject));
    await pushSignature(subject, [good]);
    const sig = await client.getManifest(repo, `sha256-${subject.slice(7)}.sig`);
    expect(sig.json.layers[0].mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    await verifyCosignSignature(client, repo, subject, pub);

    const wrongKey = await verifyCosignSignature(client, repo, subject, other).catch((e) => e);
    expect(wrongKey).toBeInstanceOf(CosignError);
    expect(wrongKey.reason).toBe('INVALID_SIGNATURE');
    expect(wrongKey.message).toMatch(/invalid signature/);

    // payload modified after signing (signature of the original kept)
    const tampered = Buffer.from(good.payload.toString().replace('"optional":null', '"optional":{"evil":"1"}'));
    await pushSignature(subject, [{ payload: tampered, signature: good.signature }]);
    const t = await verifyCosignSignature(client, repo, subject, pub).catch((e) => e);
    expect(t).toBeInstanceOf(CosignError);
    expect(t.message).toMatch(/invalid signature/);

    // correctly signed payload, but it names another digest
    await pushSignature(subject, [signed(simpleSigningPayload(ref, fx.amd64.digest))]);
    const w = await verifyCosignSignature(client, repo, subject, pub).catch((e) => e);
    expect(w).toBeInstanceOf(CosignError);
    expect(w.message).toContain(`names digest "${fx.amd64.digest}"`);

    // any valid layer is enough
    await pushSignature(subject, [{ payload: tampered, signature: good.signature }, signed(simpleSigningPayload(ref, fx.amd64.digest)), good]);
    expect((await verifyCosignSignature(client, repo, subject, pub)).layer).toBe(2);
  });

  test('pushCosignSignature round trip', async () => {
    const subject = fx.arm64.digest;
    await pushCosignSignature(client, repo, subject, key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, `${registry.host}/${repo}`);
    await verifyCosignSignature(client, repo, subject, pub);
    await expect(verifyCosignSignature(client, repo, subject, other)).rejects.toBeInstanceOf(CosignError);
  });

  test('unreachable registry is an OciError, not a CosignError', async () => {
    const dead = new RegistryClient({ registry: '127.0.0.1:1', insecure: true, retries: 0 });
    const e = await verifyCosignSignature(dead, repo, fx.index.digest, pub).catch((x) => x);
    expect(e).toBeInstanceOf(OciError);
    expect(e).not.toBeInstanceOf(CosignError);
    expect(e.code).toBe('UNAVAILABLE');
  });
});

(hasSkopeo ? describe : describe.skip)(hasSkopeo ? 'skopeo interoperability' : 'skopeo interoperability (skipped: skopeo is not installed)', () => {
  test('skopeo inspect sees what the client pushed', async () => {
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/${repo}:v1.7.0-arm64`]);
    const info = JSON.parse(stdout);
    expect(info.Digest).toBe(fx.arm64.digest);
    expect(info.Architecture).toBe('arm64');
    expect(info.Layers).toHaveLength(1);
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/${repo}:v1.7.0`]);
    expect(Buffer.from(raw.stdout).equals(fx.index.raw)).toBe(true);
    const amd = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', '--override-os', 'linux', '--override-arch', 'amd64',
      `docker://${registry.host}/${repo}:v1.7.0`])).stdout);
    expect(amd.Digest).toBe(fx.index.digest);
    expect(amd.Architecture).toBe('amd64');
    expect(amd.Env).toEqual(['VERSION=v1.7.0']);
  });

  test('skopeo copy of our image can be read back by the client', async () => {
    await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--all', '--preserve-digests',
      `docker://${registry.host}/${repo}:v1.7.0`, `docker://${registry.host}/mirror/imager:v1.7.0`]);
    const m = await client.getManifest('mirror/imager', 'v1.7.0');
    expect(m.digest).toBe(fx.index.digest);
    const files = await readImageFiles(client, 'mirror/imager', await client.resolveImage('mirror/imager', 'v1.7.0',
      { os: 'linux', architecture: 'amd64' }), (p) => p.endsWith('vmlinuz'));
    expect(files.get('usr/install/amd64/vmlinuz')?.toString()).toBe('kernel-amd64');
  });
});
