/**
 * Secure Boot key material: generated once (0700 directory, 0600 PKCS#1 files, self-signed certificates OpenSSL
 * accepts) and reused on the next start; configured files used as they are; a bad configured file refused with one
 * readable error naming the variable and the file. And the two jobs served from these keys.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, verify, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, EnvReader, readSecureBoot, SecureBootSettings } from '@factory/config';
import { digestSections, PcrSignatureDocument, pcrPolicies, profileSections, verifyPcrSignatureDocument } from '@factory/pcr';
import { secureBootKeyHandlers } from '../src/pcr-handlers';
import { GENERATED_KEY_BITS, loadSecureBootKeys } from '../src/secureboot-keys';
import { selfSignedCertificate } from '../src/x509';

const mode = (p: string) => statSync(p).mode & 0o777;
const SMALL = { signing: 2048, pcr: 2048 };
const settings = (s: Partial<SecureBootSettings>): SecureBootSettings => ({ enabled: true, generateKeys: false, ...s });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'secureboot-keys-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A PKCS#1 key + self-signed certificate pair written as an operator would provide them. */
function writePair(name: string, bits = 2048): { key: string; cert: string; keyObject: KeyObject } {
  const keyObject = generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
  const key = path.join(dir, `${name}-key.pem`);
  const cert = path.join(dir, `${name}-cert.pem`);
  writeFileSync(key, keyObject.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  writeFileSync(cert, selfSignedCertificate(keyObject, { commonName: `operator ${name}`, validDays: 30 }));
  return { key, cert, keyObject };
}

describe('generated keys (embedded default)', () => {
  test('generated on first start: 0700 directory, 0600 PKCS#1 files, self-signed certificates; reused on the next start', async () => {
    const keyDir = path.join(dir, 'keys');
    const first = (await loadSecureBootKeys(settings({ generateKeys: true }), keyDir))!;
    const sbDir = path.join(keyDir, 'secureboot');
    expect(mode(keyDir)).toBe(0o700);
    expect(mode(sbDir)).toBe(0o700);
    // PK and KEK are not generated: the signing certificate plays both roles, as in the anchor (talos-formats §7.5)
    expect(readdirSync(sbDir).sort()).toEqual(['pcr-signing-key.pem', 'uki-signing-cert.pem', 'uki-signing-key.pem']);
    expect(first.keys.pk).toBeUndefined();
    expect(first.keys.kek).toBeUndefined();
    for (const f of readdirSync(sbDir)) expect([f, mode(path.join(sbDir, f))]).toEqual([f, 0o600]);
    expect(Object.values(first.files).every((f) => f!.generated)).toBe(true);

    // Sizes: the signing key as talosctl generates it; the PCR key one a TPM loads.
    for (const role of ['signing', 'pcr'] as const) {
      const key = first.keys[role].keyPem;
      expect(key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
      expect(createPrivateKey(key).asymmetricKeyDetails?.modulusLength).toBe(GENERATED_KEY_BITS[role]);
    }
    expect(readFileSync(path.join(sbDir, 'uki-signing-cert.pem'), 'utf8')).toBe(first.keys.signing.certPem);
    expect(first.keys.pcr.publicPem).toBe(createPublicKey(first.keys.pcr.keyPem).export({ type: 'spki', format: 'pem' }));

    for (const role of ['signing'] as const) {
      const cert = new X509Certificate(first.keys[role].certPem);
      expect(cert.verify(cert.publicKey)).toBe(true);
      expect(cert.ca).toBe(true);
      expect(cert.checkPrivateKey(createPrivateKey(first.keys[role].keyPem))).toBe(true);
      const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / (365 * 86_400_000);
      expect(years).toBeGreaterThan(9.9);
      expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(Date.now());
      // OpenSSL parses and verifies it too (a self-signed CA certificate).
      const file = path.join(dir, `${role}.pem`);
      writeFileSync(file, first.keys[role].certPem);
      expect(execFileSync('openssl', ['verify', '-CAfile', file, '-purpose', 'any', file], { encoding: 'utf8' })).toBe(`${file}: OK\n`);
      const text = execFileSync('openssl', ['x509', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
      expect(text).toContain('CA:TRUE');
      expect(text).toContain('Signature Algorithm: sha256WithRSAEncryption');
      expect(text.includes('Code Signing')).toBe(role === 'signing');
    }
    expect(new X509Certificate(first.keys.signing.certPem).subject).toBe('O=Talos Image Factory\nCN=Talos Image Factory Secure Boot Signing');

    const again = (await loadSecureBootKeys(settings({ generateKeys: true }), keyDir))!;
    expect(again.keys).toEqual(first.keys);
    expect(Object.values(again.files).some((f) => f!.generated)).toBe(false);
  }, 60_000);

  test('a generated key whose certificate is missing (a start stopped in between) gets a certificate for the same key', async () => {
    const keyDir = path.join(dir, 'keys');
    const first = (await loadSecureBootKeys(settings({ generateKeys: true }), keyDir, { bits: SMALL }))!;
    rmSync(path.join(keyDir, 'secureboot', 'uki-signing-cert.pem'));
    const again = (await loadSecureBootKeys(settings({ generateKeys: true }), keyDir, { bits: SMALL }))!;
    expect(again.keys.signing.keyPem).toBe(first.keys.signing.keyPem);
    expect(new X509Certificate(again.keys.signing.certPem).checkPrivateKey(createPrivateKey(first.keys.signing.keyPem))).toBe(true);
    expect(again.files.signing!.generated).toBe(true);
    expect(again.files.pcr!.generated).toBe(false);
  }, 60_000);

  test('Secure Boot off: nothing is loaded or generated', async () => {
    expect(await loadSecureBootKeys(settings({ enabled: false, generateKeys: true }), path.join(dir, 'keys'))).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('configured files', () => {
  test('are used as they are (the certificate byte for byte); nothing is generated beside them', async () => {
    const signing = writePair('signing');
    const pcr = writePair('pcr');
    const certText = readFileSync(signing.cert, 'utf8');
    const loaded = (await loadSecureBootKeys(settings({ signingKeyFile: signing.key, signingCertFile: signing.cert, pcrKeyFile: pcr.key }), path.join(dir, 'keys'), { bits: SMALL }))!;
    expect(loaded.keys.signing).toEqual({ keyPem: readFileSync(signing.key, 'utf8'), certPem: certText });
    expect(loaded.keys.pcr.keyPem).toBe(readFileSync(pcr.key, 'utf8'));
    expect(loaded.files.signing).toEqual({ key: signing.key, cert: signing.cert, generated: false });
    expect(loaded.files.pk).toBeUndefined();
    expect(loaded.keys.pk).toBeUndefined();
    expect(existsSync(path.join(dir, 'keys', 'secureboot'))).toBe(false);
  }, 60_000);

  test('bad files are refused with one readable error naming each variable and file, and no key material', async () => {
    const signing = writePair('signing');
    const other = writePair('other');
    const pkcs8 = path.join(dir, 'pcr-pkcs8.pem');
    const keyPkcs8 = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeFileSync(pkcs8, keyPkcs8);
    const missing = path.join(dir, 'missing.pem');
    let error: unknown;
    try {
      await loadSecureBootKeys(settings({ signingKeyFile: signing.key, signingCertFile: other.cert, pcrKeyFile: pkcs8, pkKeyFile: missing, pkCertFile: other.cert }), path.join(dir, 'keys'), { bits: SMALL });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      `FACTORY_SECUREBOOT_SIGNING_CERT_FILE ${other.cert}: is not the certificate of FACTORY_SECUREBOOT_SIGNING_KEY_FILE ${signing.key} (its public key is another one)`,
      `FACTORY_SECUREBOOT_PCR_KEY_FILE ${pkcs8}: is a PKCS#8 key; the Secure Boot keys must be unencrypted PKCS#1 PEM ("RSA PRIVATE KEY"): convert it with \`openssl rsa -traditional -in <file>\``,
      `FACTORY_SECUREBOOT_PK_KEY_FILE ${missing}: cannot be read (ENOENT)`,
    ]);
    const message = (error as Error).message;
    expect(message.startsWith('invalid configuration:\n  - ')).toBe(true);
    expect(message).not.toContain('PRIVATE KEY-----');
    expect(message).not.toContain(keyPkcs8.split('\n')[1]);
  }, 60_000);

  test('refused too: an EC key, a short RSA key, an encrypted PKCS#1 key, a certificate that is not PEM', async () => {
    const write = (name: string, text: string | Buffer) => {
      const f = path.join(dir, name);
      writeFileSync(f, text);
      return f;
    };
    const ec = write('ec.pem', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }));
    const short = write('short.pem', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const encrypted = write('enc.pem', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }));
    const good = writePair('good');
    const der = write('cert.der', new X509Certificate(readFileSync(good.cert)).raw);
    const problems = await loadSecureBootKeys(settings({ signingKeyFile: good.key, signingCertFile: der, pcrKeyFile: ec, pkKeyFile: short, pkCertFile: good.cert, kekKeyFile: encrypted, kekCertFile: good.cert }), path.join(dir, 'k')).then(
      () => [],
      (err: ConfigError) => err.problems,
    );
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/^FACTORY_SECUREBOOT_SIGNING_CERT_FILE .*cert\.der: is not a PEM X\.509 certificate/);
    expect(problems[1]).toBe(`FACTORY_SECUREBOOT_PCR_KEY_FILE ${ec}: is not an unencrypted RSA private key in PKCS#1 PEM ("-----BEGIN RSA PRIVATE KEY-----")`);
    expect(problems[2]).toBe(`FACTORY_SECUREBOOT_PK_KEY_FILE ${short}: is a 1024-bit key; at least 2048 bits are needed`);
    expect(problems[3]).toBe(`FACTORY_SECUREBOOT_KEK_KEY_FILE ${encrypted}: is not an unencrypted RSA private key in PKCS#1 PEM ("-----BEGIN RSA PRIVATE KEY-----")`);
  }, 60_000);
});

describe('configuration', () => {
  const read = (env: Record<string, string>) => {
    const r = new EnvReader(env);
    const s = readSecureBoot(r);
    let problems: string[] = [];
    try {
      r.done();
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    return { s, problems };
  };

  test('off unless files are configured or generation is on; the anchor: all three files or none', () => {
    expect(read({}).s).toMatchObject({ enabled: false, generateKeys: false });
    expect(read({ FACTORY_SECUREBOOT_GENERATE_KEYS: 'true' }).s).toMatchObject({ enabled: true, generateKeys: true });
    const files = { FACTORY_SECUREBOOT_SIGNING_KEY_FILE: '/k/uki-signing-key.pem', FACTORY_SECUREBOOT_SIGNING_CERT_FILE: '/k/uki-signing-cert.pem', FACTORY_SECUREBOOT_PCR_KEY_FILE: '/k/pcr-signing-key.pem' };
    expect(read(files)).toEqual({ s: expect.objectContaining({ enabled: true, signingKeyFile: '/k/uki-signing-key.pem' }), problems: [] });
    expect(read({ ...files, FACTORY_SECUREBOOT_ENABLED: 'false' }).s.enabled).toBe(false);
    expect(read({ FACTORY_SECUREBOOT_SIGNING_KEY_FILE: '/k/a.pem', FACTORY_SECUREBOOT_PK_CERT_FILE: '/k/pk.pem' }).problems).toEqual([
      'Secure Boot signing is configured in part: set FACTORY_SECUREBOOT_SIGNING_CERT_FILE and FACTORY_SECUREBOOT_PCR_KEY_FILE too, or none of FACTORY_SECUREBOOT_SIGNING_KEY_FILE, FACTORY_SECUREBOOT_SIGNING_CERT_FILE, FACTORY_SECUREBOOT_PCR_KEY_FILE',
      'the Secure Boot platform key (PK) is configured in part: set FACTORY_SECUREBOOT_PK_KEY_FILE too, or none of FACTORY_SECUREBOOT_PK_KEY_FILE, FACTORY_SECUREBOOT_PK_CERT_FILE',
    ]);
    expect(read({ FACTORY_SECUREBOOT_ENABLED: 'true' }).problems).toEqual([
      'FACTORY_SECUREBOOT_ENABLED=true needs FACTORY_SECUREBOOT_SIGNING_KEY_FILE, FACTORY_SECUREBOOT_SIGNING_CERT_FILE and FACTORY_SECUREBOOT_PCR_KEY_FILE (or FACTORY_SECUREBOOT_GENERATE_KEYS=true to generate the keys into the signing key directory)',
    ]);
  });
});

describe('Secure Boot key jobs', () => {
  const signed: string[] = [];
  const metrics = { signed: (k: string) => void signed.push(k) };
  const sections = async (pcrpkey: string, extra: Array<{ name: string; content: string }> = []) =>
    digestSections([
      { name: '.linux', content: 'kernel' },
      { name: '.osrel', content: 'NAME="Talos"\n' },
      { name: '.cmdline', content: 'talos.platform=metal lockdown=confidentiality' },
      { name: '.initrd', content: 'initramfs' },
      { name: '.pcrpkey', content: pcrpkey },
      ...extra,
    ]);

  test('public material, or enabled: false when Secure Boot is off', async () => {
    const loaded = (await loadSecureBootKeys(settings({ generateKeys: true }), path.join(dir, 'keys'), { bits: SMALL }))!;
    expect(await secureBootKeyHandlers({ keys: loaded.keys, metrics })['signing.secureBootPublic']({})).toEqual({
      enabled: true,
      signingCertPem: loaded.keys.signing.certPem,
      pcrPublicKeyPem: loaded.keys.pcr.publicPem,
    });
    expect(await secureBootKeyHandlers({ keys: undefined, metrics })['signing.secureBootPublic']({})).toEqual({ enabled: false });
    // own PK and KEK: their certificates are public material too (asset identities name them)
    const pk = { keyPem: 'unused', certPem: '-----BEGIN CERTIFICATE-----\npk\n-----END CERTIFICATE-----\n' };
    const kek = { keyPem: 'unused', certPem: '-----BEGIN CERTIFICATE-----\nkek\n-----END CERTIFICATE-----\n' };
    expect(await secureBootKeyHandlers({ keys: { ...loaded.keys, pk, kek }, metrics })['signing.secureBootPublic']({})).toEqual({
      enabled: true,
      signingCertPem: loaded.keys.signing.certPem,
      pcrPublicKeyPem: loaded.keys.pcr.publicPem,
      pkCertPem: pk.certPem,
      kekCertPem: kek.certPem,
    });
  }, 60_000);

  test("signs the policy it recomputes for a UKI that carries its own .pcrpkey, and refuses what it cannot vouch for", async () => {
    const loaded = (await loadSecureBootKeys(settings({ generateKeys: true }), path.join(dir, 'keys'), { bits: SMALL }))!;
    const handle = secureBootKeyHandlers({ keys: loaded.keys, metrics })['signing.pcrPolicy'];
    const base = await sections(loaded.keys.pcr.publicPem);
    const reset = profileSections(base, await digestSections([{ name: '.profile', content: 'ID=reset' }, { name: '.cmdline', content: 'talos.experimental.wipe=system' }]));
    for (const measured of [base, reset]) {
      const { pcrsig } = await handle({ sections: [...measured].reverse() });
      const doc = JSON.parse(pcrsig) as PcrSignatureDocument;
      expect(Object.keys(doc)).toEqual(['sha256', 'sha384', 'sha512']);
      expect(verifyPcrSignatureDocument(doc, loaded.keys.pcr.publicPem)).toBe(true);
      expect(doc.sha256![0].pol).toBe(pcrPolicies(measured).find((p) => p.bank === 'sha256')!.policy.toString('hex'));
      expect(doc.sha384![0].pkfp).toBe(createHash('sha256').update(createPublicKey(loaded.keys.pcr.publicPem).export({ type: 'pkcs1', format: 'der' })).digest('hex'));
      expect(verify('sha512', Buffer.from(doc.sha512![0].pol, 'hex'), createPublicKey(loaded.keys.pcr.publicPem), Buffer.from(doc.sha512![0].sig, 'base64'))).toBe(true);
    }
    expect(signed).toEqual(['pcr', 'pcr']);

    const otherKey = createPublicKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey).export({ type: 'spki', format: 'pem' }).toString();
    await expect(handle({ sections: await sections(otherKey) })).rejects.toMatchObject({ status: 400, message: "refusing to sign the PCR policy: its .pcrpkey section is not this factory's PCR public key" });
    await expect(handle({ sections: base.filter((s) => s.name !== '.pcrpkey') })).rejects.toMatchObject({ status: 400, message: "refusing to sign the PCR policy: its .pcrpkey section is not this factory's PCR public key" });
    await expect(handle({ sections: base.filter((s) => s.name !== '.linux') })).rejects.toMatchObject({ status: 400, message: 'refusing to sign the PCR policy: it has no .linux section' });
    await expect(handle({ sections: [...base, { ...base[0], name: '.text' }] })).rejects.toMatchObject({ status: 400, message: 'refusing to sign the PCR policy: section ".text" is not one systemd-stub measures into PCR 11' });
    await expect(handle({ sections: 'x' as never })).rejects.toMatchObject({ status: 400, message: 'refusing to sign the PCR policy: no section digests were sent' });
    await expect(secureBootKeyHandlers({ keys: undefined, metrics })['signing.pcrPolicy']({ sections: base })).rejects.toMatchObject({ status: 400, message: 'secure boot is disabled' });
    expect(signed).toEqual(['pcr', 'pcr']);
  }, 60_000);
});

test('the key directory is not created when nothing is generated', async () => {
  const signing = writePair('s');
  const pcr = writePair('p');
  const pk = writePair('pk');
  const kek = writePair('kek');
  mkdirSync(path.join(dir, 'unused'));
  await loadSecureBootKeys(
    settings({ signingKeyFile: signing.key, signingCertFile: signing.cert, pcrKeyFile: pcr.key, pkKeyFile: pk.key, pkCertFile: pk.cert, kekKeyFile: kek.key, kekCertFile: kek.cert }),
    path.join(dir, 'unused', 'keys'),
  );
  expect(readdirSync(path.join(dir, 'unused'))).toEqual([]);
}, 60_000);
