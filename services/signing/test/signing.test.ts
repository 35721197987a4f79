import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from '@factory/telemetry';
import { MAX_SIGN_BYTES, registerSigningMetrics, signingHandlers } from '../src/handlers';
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
  let cosign: LoadedKey;
  let registry: Registry;
  let handlers: ReturnType<typeof signingHandlers>;
  beforeEach(() => {
    cosign = loadOrCreateEcKey(path.join(dir, 'keys', 'cosign.key'), true);
    registry = new Registry();
    handlers = signingHandlers({ cosign, metrics: registerSigningMetrics(registry) });
  });

  test('signing.publicKey answers with the cosign public key PEM', async () => {
    expect(await handlers['signing.publicKey']({ key: 'cosign' })).toEqual({ pem: cosign.publicPem });
  });

  test('signing.sign returns a DER ECDSA/SHA-256 signature that verifies against the public key', async () => {
    const data = Buffer.from('{"critical":{"identity":{"docker-reference":"factory.example/installer/abc"}}}');
    const { signatureBase64 } = await handlers['signing.sign']({ key: 'cosign', dataBase64: data.toString('base64') });
    const signature = Buffer.from(signatureBase64, 'base64');
    expect(signature[0]).toBe(0x30); // DER SEQUENCE, as cosign expects
    const publicKey = createPublicKey(cosign.publicPem);
    expect(verify('sha256', data, publicKey, signature)).toBe(true);
    expect(verify('sha256', Buffer.concat([data, Buffer.from(' ')]), publicKey, signature)).toBe(false);

    // Exactly the size limit is still signed; the counter counts signatures per key.
    const atLimit = Buffer.alloc(MAX_SIGN_BYTES, 7);
    const big = await handlers['signing.sign']({ key: 'cosign', dataBase64: atLimit.toString('base64') });
    expect(verify('sha256', atLimit, publicKey, Buffer.from(big.signatureBase64, 'base64'))).toBe(true);
    expect(await registry.metrics()).toMatch(/^factory_signatures_total\{key="cosign"\} 2$/m);
  });

  test('an unknown key is a 400 for both jobs', async () => {
    const unknown = 'other' as 'cosign';
    for (const p of [handlers['signing.publicKey']({ key: unknown }), handlers['signing.sign']({ key: unknown, dataBase64: 'AA==' })]) {
      await expect(p).rejects.toMatchObject({ name: 'FactoryError', status: 400, message: 'unknown key "other"' });
    }
  });

  test('a payload over the limit is a 400 and is not signed or counted', async () => {
    const tooLarge = Buffer.alloc(MAX_SIGN_BYTES + 1).toString('base64');
    await expect(handlers['signing.sign']({ key: 'cosign', dataBase64: tooLarge })).rejects.toMatchObject({
      name: 'FactoryError',
      status: 400,
      message: 'payload to sign is too large',
    });
    expect(await registry.metrics()).not.toMatch(/^factory_signatures_total\{/m);
  });
});
