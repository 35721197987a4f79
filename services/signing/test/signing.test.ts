import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Registry } from '@factory/telemetry';
import { encodeSignatureFile, signatureMatches, statementBytes, validatorOf } from '@factory/asset';
import { MediaTypes, simpleSigningPayload } from '@factory/oci';
import { createLocalStore, LocalObjectStore } from '@factory/storage';
import { registerSigningMetrics, signingHandlers } from '../src/handlers';
import { LoadedKey, loadOrCreateEcKey } from '../src/keys';

const mode = (p: string) => statSync(p).mode & 0o777;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'signing-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('loadOrCreateEcKey', () => {
  test('generates a P-256 key into a new directory (0700) as a 0600 PKCS#8 file, then loads the same key', () => {
    const file = path.join(dir, 'data', 'keys', 'cosign.key');
    const first = loadOrCreateEcKey(file, true);
    expect(first.generated).toBe(true);
    expect(first.file).toBe(file);
    expect(mode(path.dirname(file))).toBe(0o700);
    expect(mode(file)).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(first.privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(first.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);

    const again = loadOrCreateEcKey(file, true);
    expect(again.generated).toBe(false);
    expect(again.publicPem).toBe(first.publicPem);
  });

  test('tightens an existing, looser key directory to 0700 when it generates', () => {
    const keyDir = path.join(dir, 'keys');
    mkdirSync(keyDir, { mode: 0o755 });
    chmodSync(keyDir, 0o755);
    loadOrCreateEcKey(path.join(keyDir, 'cosign.key'), true);
    expect(mode(keyDir)).toBe(0o700);
  });

  test('a configured key that is missing is an error, and nothing is generated', () => {
    const file = path.join(dir, 'missing.key');
    expect(() => loadOrCreateEcKey(file, false)).toThrow(`signing key ${file} does not exist`);
    expect(() => statSync(file)).toThrow();
  });

  test('loads an existing P-256 key in PKCS#8 or SEC1 PEM', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const expectedPublic = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const type of ['pkcs8', 'sec1'] as const) {
      const file = path.join(dir, `${type}.key`);
      writeFileSync(file, privateKey.export({ type, format: 'pem' }), { mode: 0o600 });
      const loaded = loadOrCreateEcKey(file, false);
      expect(loaded.generated).toBe(false);
      expect(loaded.publicPem).toBe(expectedPublic);
    }
  });

  test('refuses keys that are not ECDSA P-256', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    for (const [name, key] of [['p384', p384], ['rsa', rsa]] as const) {
      const file = path.join(dir, `${name}.key`);
      writeFileSync(file, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      expect(() => loadOrCreateEcKey(file, true)).toThrow(`signing key ${file} must be an ECDSA P-256 key`);
    }
  });
});

describe('signing handlers', () => {
  const HOST = 'factory.example:8080';
  const REPO = `installer/${'e'.repeat(64)}`;
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const child = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}');
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha(child), size: child.length }] }));
  const lonelyIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ digest: `sha256:${'0'.repeat(64)}` }] }));
  const stored = new Map<string, { mediaType: string; bytes: Buffer }>([
    [sha(index), { mediaType: MediaTypes.ociIndex, bytes: index }],
    [sha(child), { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', bytes: child }],
    [sha(lonelyIndex), { mediaType: MediaTypes.ociIndex, bytes: lonelyIndex }],
  ]);
  let cosign: LoadedKey;
  let registry: Registry;
  let handlers: ReturnType<typeof signingHandlers>;
  let objects: LocalObjectStore;
  beforeEach(() => {
    cosign = loadOrCreateEcKey(path.join(dir, 'keys', 'cosign.key'), true);
    registry = new Registry();
    objects = createLocalStore(path.join(dir, 'objects')) as LocalObjectStore;
    handlers = signingHandlers({ cosign, metrics: registerSigningMetrics(registry), content: { getManifest: async (d) => stored.get(d) ?? null }, objects, registryHost: HOST });
  });

  test('signing.publicKey answers with the cosign public key PEM', async () => {
    expect(await handlers['signing.publicKey']({ key: 'cosign' })).toEqual({ pem: cosign.publicPem });
    await expect(handlers['signing.publicKey']({ key: 'other' as 'cosign' })).rejects.toMatchObject({ name: 'FactoryError', status: 400, message: 'unknown key "other"' });
  });

  test('signing.installer derives the simple-signing payload itself and signs it (DER ECDSA/SHA-256)', async () => {
    const { payloadBase64, signatureBase64 } = await handlers['signing.installer']({ repository: REPO, digest: sha(index) });
    const payload = Buffer.from(payloadBase64, 'base64');
    expect(payload.equals(simpleSigningPayload(`${HOST}/${REPO}`, sha(index)))).toBe(true);
    const signature = Buffer.from(signatureBase64, 'base64');
    expect(signature[0]).toBe(0x30); // DER SEQUENCE, as cosign expects
    expect(verify('sha256', payload, createPublicKey(cosign.publicPem), signature)).toBe(true);
    expect(await registry.metrics()).toMatch(/^factory_signatures_total\{key="cosign"\} 1$/m);
  });

  test('it signs nothing it cannot check: foreign repositories, unknown or incomplete content, non-index manifests', async () => {
    const refusals: Array<[Parameters<(typeof handlers)['signing.installer']>[0], number, string]> = [
      [{ repository: 'library/ubuntu', digest: sha(index) }, 400, 'is not an installer repository of this factory'],
      [{ repository: `${REPO}/../x`, digest: sha(index) }, 400, 'is not an installer repository of this factory'],
      [{ repository: REPO, digest: 'sha256:abc' }, 400, 'is not a sha256 digest'],
      [{ repository: REPO, digest: `sha256:${'1'.repeat(64)}` }, 404, "it is not a manifest in the factory's store"],
      [{ repository: REPO, digest: sha(child) }, 404, 'not an installer index'],
      [{ repository: REPO, digest: sha(lonelyIndex) }, 404, "is not in the factory's store"],
    ];
    for (const [payload, status, text] of refusals) {
      await expect(handlers['signing.installer'](payload)).rejects.toMatchObject({ name: 'FactoryError', status, message: expect.stringContaining(text) });
    }
    expect(await registry.metrics()).not.toMatch(/^factory_signatures_total\{/m);
  });

  describe('signing.asset: it checks the stored asset against the claimed digests itself and signs only what matches', () => {
    const KEY = `assets/${'a'.repeat(64)}`;
    const bytes = Buffer.from('an ISO, say');
    const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');
    const record = { key: KEY, size: bytes.length, sha256: hex('sha256', bytes), sha512: hex('sha512', bytes), contentType: 'application/octet-stream' };
    /** What the build-worker claims about bytes it stored under `key`. */
    const claimsFor = (key: string, b: Buffer) => ({ key, size: b.length, sha256: hex('sha256', b), sha512: hex('sha512', b), md5: hex('md5', b) });

    test('a matching asset: the statement {key, size, sha256, sha512} signed, verifiable with the public key only', async () => {
      await objects.put(KEY, bytes);
      const { statement, signatureBase64 } = await handlers['signing.asset'](claimsFor(KEY, bytes));
      // `stored`: the stored version whose bytes were checked
      expect(statement).toEqual({ key: KEY, size: record.size, sha256: record.sha256, sha512: record.sha512, stored: validatorOf((await objects.head(KEY))!) });
      const publicKey = createPublicKey(cosign.publicPem);
      expect(verify('sha256', statementBytes(statement), publicKey, Buffer.from(signatureBase64, 'base64'))).toBe(true);
      expect(signatureMatches(record, encodeSignatureFile(statement, signatureBase64), publicKey)).toBe(true);
      expect(signatureMatches({ ...record, sha512: 'f'.repeat(128) }, encodeSignatureFile(statement, signatureBase64), publicKey)).toBe(false);
      expect(await registry.metrics()).toMatch(/^factory_signatures_total\{key="cosign"\} 1$/m);
    });

    test("this version's claims name no SHA-512: the statement {key, size, sha256, stored} (v3) is signed, and checked without one", async () => {
      await objects.put(KEY, bytes);
      const { sha512: _sha512, ...claims } = claimsFor(KEY, bytes);
      const { statement, signatureBase64 } = await handlers['signing.asset'](claims);
      expect(statement).toEqual({ key: KEY, size: record.size, sha256: record.sha256, stored: validatorOf((await objects.head(KEY))!) });
      expect(statementBytes(statement).toString()).toContain('"type":"talos-image-factory/asset-digest/v3"');
      const publicKey = createPublicKey(cosign.publicPem);
      const { sha512: _recorded, ...current } = record;
      expect(signatureMatches(current, encodeSignatureFile(statement, signatureBase64), publicKey)).toBe(true);
      // a record that names a SHA-512 is not what a v3 signature vouches for
      expect(signatureMatches(record, encodeSignatureFile(statement, signatureBase64), publicKey)).toBe(false);
      // and other bytes are still refused on the SHA-256 alone
      await expect(handlers['signing.asset']({ ...claims, sha256: hex('sha256', Buffer.from('an ISO, sax')) })).rejects.toMatchObject({ status: 409 });
    });

    test('an object stored by an earlier version ({key} alone): the digests recorded in its metadata are checked and signed', async () => {
      await objects.put(KEY, bytes, { metadata: { sha512: record.sha512 } });
      const { statement } = await handlers['signing.asset']({ key: KEY });
      expect(statement).toMatchObject({ key: KEY, size: record.size, sha256: record.sha256, sha512: record.sha512 });
    });

    test('refused: other keys, missing objects, malformed claims, claims the stored bytes do not match', async () => {
      const at = (c: string) => `assets/${c.repeat(64)}`;
      await objects.put(at('b'), bytes); // {key} alone: no recorded digests
      await objects.put(at('c'), Buffer.from('other bytes')); // the claims describe other bytes
      await objects.put(at('d'), bytes);
      const file = objects.pathFor(at('d'));
      const flipped = readFileSync(file);
      flipped[0] ^= 0xff; // in place, after it was stored
      writeFileSync(file, flipped);
      await objects.put(at('f'), bytes);
      await objects.put(at('9'), bytes, { metadata: { sha512: hex('sha512', Buffer.from('forged')) } }); // earlier version, forged sha512
      const refusals: Array<[Record<string, unknown>, number, string]> = [
        [{ key: 'schematics/x' }, 400, 'is not an asset of this factory'],
        [{ key: `${KEY}.sig` }, 400, 'is not an asset of this factory'],
        [claimsFor(at('e'), bytes), 404, "it is not an object in the factory's store"],
        [{ key: at('b') }, 409, 'no digests were claimed and it carries no recorded digests'],
        [{ ...claimsFor(at('f'), bytes), size: -1 }, 400, 'the claimed size is not a byte count'],
        [{ ...claimsFor(at('f'), bytes), sha256: 'x' }, 400, 'the claimed sha256'],
        [{ ...claimsFor(at('f'), bytes), sha512: 'X'.repeat(128) }, 400, 'the claimed sha512'],
        [{ ...claimsFor(at('f'), bytes), md5: 'A'.repeat(32) }, 400, 'the claimed md5'],
        [claimsFor(at('c'), Buffer.from('other bytez')), 409, 'do not match the claimed digests'],
        [claimsFor(at('c'), Buffer.from('longer than what is stored')), 409, 'it holds 11 bytes, not the 26 claimed'],
        [claimsFor(at('d'), bytes), 409, 'do not match the claimed digests'],
        [{ ...claimsFor(at('f'), bytes), sha512: hex('sha512', Buffer.from('forged')) }, 409, 'do not match the claimed digests'],
        [{ key: at('9') }, 409, 'do not match the recorded digests'],
      ];
      for (const [payload, status, text] of refusals) {
        await expect(handlers['signing.asset'](payload as { key: string })).rejects.toMatchObject({ name: 'FactoryError', status, message: expect.stringContaining(text) });
      }
      expect(await registry.metrics()).not.toMatch(/^factory_signatures_total\{/m);
    });

    describe('a store that vouches for the stored bytes (S3: its own digest of them) is not read', () => {
      const md5 = hex('md5', bytes);
      const lastModified = new Date('2026-01-02T03:04:05Z');
      /** An S3-like store answering HEAD with the given server digests (no digests in metadata); counts downloads. */
      const s3Like = (serverDigests: { sha256?: string; md5?: string }, body: Buffer = bytes) => {
        const info = { size: body.length, metadata: {}, etag: serverDigests.md5 ?? 'etag', lastModified, serverDigests };
        const store = { reads: 0, head: async () => info, get: async () => (store.reads++, { info, body: Readable.from([body]) }) };
        return store;
      };
      const handlersOver = (objects: ReturnType<typeof s3Like>) =>
        signingHandlers({ cosign, metrics: registerSigningMetrics(new Registry()), content: { getManifest: async () => null }, objects, registryHost: HOST });

      test("the server's MD5 ETag equal to the claimed MD5, or its full-object SHA-256 to the claimed one: signed without a download", async () => {
        for (const vouching of [{ md5 }, { sha256: record.sha256 }]) {
          const store = s3Like(vouching);
          const { statement } = await handlersOver(store)['signing.asset'](claimsFor(KEY, bytes));
          expect(statement).toEqual({ key: KEY, size: record.size, sha256: record.sha256, sha512: record.sha512, stored: validatorOf(await store.head()) });
          expect(store.reads).toBe(0);
        }
      });

      test('server digests that differ from the claims: the bytes are read, and refused when they do not match', async () => {
        const other = Buffer.from('an ISO, sax'); // same length: only the bytes differ
        const store = s3Like({ md5: hex('md5', other), sha256: hex('sha256', other) }, other);
        await expect(handlersOver(store)['signing.asset'](claimsFor(KEY, bytes))).rejects.toMatchObject({ status: 409, message: expect.stringContaining('do not match the claimed digests') });
        expect(store.reads).toBe(1);
        // claims without an MD5 are never vouched for by an ETag: read
        const noMd5 = s3Like({ md5 });
        const { md5: _md5, ...withoutMd5 } = claimsFor(KEY, bytes);
        await handlersOver(noMd5)['signing.asset'](withoutMd5);
        expect(noMd5.reads).toBe(1);
        const honest = s3Like({ md5: 'f'.repeat(32) }); // e.g. an SSE-KMS ETag: no MD5
        await handlersOver(honest)['signing.asset'](claimsFor(KEY, bytes));
        expect(honest.reads).toBe(1);
      });

      test('a size other than the claimed one is refused before anything is compared or read', async () => {
        const store = s3Like({ md5 });
        await expect(handlersOver(store)['signing.asset']({ ...claimsFor(KEY, bytes), size: bytes.length + 1 })).rejects.toMatchObject({ status: 409, message: expect.stringContaining('not the') });
        expect(store.reads).toBe(0);
      });
    });
  });
});
