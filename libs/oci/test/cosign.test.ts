import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import {
  COSIGN_SIGNATURE_ANNOTATION, CosignError, MediaTypes, OciError, RegistryClient, cosignSignatureTag, pushCosignSignature,
  sha256Digest, simpleSigningPayload, verifyCosignSignature,
} from '../src';
import { MockRegistry } from './mock-registry';

const D = 'sha256:' + 'ab'.repeat(32);

test('cosignSignatureTag', () => {
  expect(cosignSignatureTag(D)).toBe(`sha256-${'ab'.repeat(32)}.sig`);
  expect(() => cosignSignatureTag('sha256:xyz')).toThrow(OciError);
  expect(() => cosignSignatureTag('latest')).toThrow(OciError);
});

test('simpleSigningPayload is byte-exact', () => {
  expect(simpleSigningPayload('127.0.0.1:5050/probe/hello', D).toString()).toBe(
    '{"critical":{"identity":{"docker-reference":"127.0.0.1:5050/probe/hello"},"image":{"docker-manifest-digest":"' + D +
    '"},"type":"cosign container image signature"},"optional":null}');
  // Go's encoding/json escapes HTML characters
  expect(simpleSigningPayload('a<b>&c', D).toString()).toContain('"docker-reference":"a\\u003cb\\u003e\\u0026c"');
});

describe('against the mock registry', () => {
  let reg: MockRegistry;
  let client: RegistryClient;
  let subject: string;
  const repo = 'factory/cache';
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;

  beforeAll(async () => {
    reg = await new MockRegistry({ auth: 'bearer', user: { username: 'u', password: 'p' } }).start();
    client = new RegistryClient({ registry: reg.host, insecure: true, auth: { username: 'u', password: 'p' }, retryDelayMs: 5 });
    const cfg = await client.pushBlob(repo, Buffer.from('{}'));
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: cfg, size: 2 }, layers: [] }));
    subject = await client.pushManifest(repo, 'abc', MediaTypes.ociManifest, raw);
  });
  afterAll(() => reg.stop());

  test('unsigned → CosignError NO_SIGNATURE (code NOT_FOUND)', async () => {
    const err = await verifyCosignSignature(client, repo, subject, pem(ec.publicKey)).catch((e) => e);
    expect(err).toBeInstanceOf(CosignError);
    expect(err.reason).toBe('NO_SIGNATURE');
    expect(err.code).toBe('NOT_FOUND');
  });

  test('bad key → BAD_KEY', async () => {
    await expect(verifyCosignSignature(client, repo, subject, 'not a key')).rejects.toMatchObject({ reason: 'BAD_KEY' });
  });

  test('pushCosignSignature appends; EC, RSA and Ed25519 keys verify; identity option', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    const ref = `${reg.host}/${repo}`;
    await pushCosignSignature(client, repo, subject, ec.privateKey.export({ type: 'sec1', format: 'pem' }) as string, ref);
    await pushCosignSignature(client, repo, subject, rsa.privateKey, ref);
    await pushCosignSignature(client, repo, subject, ed.privateKey, ref);
    const sig = await client.getManifest(repo, cosignSignatureTag(subject));
    expect(sig.mediaType).toBe(MediaTypes.ociManifest);
    expect(sig.json.config.mediaType).toBe(MediaTypes.ociConfig);
    expect(sig.json.layers).toHaveLength(3);
    expect(sig.json.layers[0].mediaType).toBe(MediaTypes.cosignSimpleSigning);
    expect(typeof sig.json.layers[0].annotations[COSIGN_SIGNATURE_ANNOTATION]).toBe('string');
    expect((await verifyCosignSignature(client, repo, subject, pem(ec.publicKey))).layer).toBe(0);
    expect((await verifyCosignSignature(client, repo, subject, pem(rsa.publicKey))).layer).toBe(1);
    expect((await verifyCosignSignature(client, repo, subject, ed.publicKey)).layer).toBe(2);
    await verifyCosignSignature(client, repo, subject, pem(ec.publicKey), { dockerReference: ref });
    await expect(verifyCosignSignature(client, repo, subject, pem(ec.publicKey), { dockerReference: 'other/repo' }))
      .rejects.toMatchObject({ reason: 'INVALID_SIGNATURE' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const err = await verifyCosignSignature(client, repo, subject, pem(other.publicKey)).catch((e) => e);
    expect(err).toBeInstanceOf(CosignError);
    expect(err.message).toMatch(/layer 0: invalid signature; layer 1: invalid signature; layer 2: invalid signature/);
    // replace drops the earlier signatures
    await pushCosignSignature(client, repo, subject, other.privateKey, ref, { replace: true });
    expect((await client.getManifest(repo, cosignSignatureTag(subject))).json.layers).toHaveLength(1);
    await verifyCosignSignature(client, repo, subject, pem(other.publicKey));
    await expect(verifyCosignSignature(client, repo, subject, pem(ec.publicKey))).rejects.toMatchObject({ reason: 'INVALID_SIGNATURE' });
  });

  test('signature tag that is not a signature manifest → NO_SIGNATURE', async () => {
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }));
    const d = sha256Digest(Buffer.from('something else'));
    await client.pushManifest(repo, cosignSignatureTag(d), MediaTypes.ociIndex, raw);
    await expect(verifyCosignSignature(client, repo, d, pem(ec.publicKey))).rejects.toMatchObject({ reason: 'NO_SIGNATURE' });
  });

  test('transport errors are not disguised as signature failures', async () => {
    reg.hooks = [(req, res) => { if (req.url!.includes('.sig')) { res.writeHead(500); res.end(); return true; } return false; }];
    try {
      const c = new RegistryClient({ registry: reg.host, insecure: true, auth: { username: 'u', password: 'p' }, retries: 0 });
      const err = await verifyCosignSignature(c, repo, subject, pem(ec.publicKey)).catch((e) => e);
      expect(err).toBeInstanceOf(OciError);
      expect(err).not.toBeInstanceOf(CosignError);
      expect(err.code).toBe('UNAVAILABLE');
    } finally {
      reg.hooks = [];
    }
  });

  test('a raw DER signature made with node:crypto matches what cosign expects', async () => {
    const payload = simpleSigningPayload('x/y', subject);
    const sigB64 = sign('sha256', payload, ec.privateKey).toString('base64');
    const payloadDigest = await client.pushBlob(repo, payload);
    const cfg = await client.pushBlob(repo, Buffer.from('{}'));
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: cfg, size: 2 },
      layers: [{ mediaType: MediaTypes.cosignSimpleSigning, digest: payloadDigest, size: payload.length,
        annotations: { [COSIGN_SIGNATURE_ANNOTATION]: sigB64 } }] }));
    await client.pushManifest(repo, cosignSignatureTag(subject), MediaTypes.ociManifest, raw);
    const v = await verifyCosignSignature(client, repo, subject, pem(ec.publicKey));
    expect(v.payload.critical.identity['docker-reference']).toBe('x/y');
  });
});
