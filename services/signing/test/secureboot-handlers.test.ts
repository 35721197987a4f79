/**
 * Secure Boot handlers of the signing service (secureboot-handlers.ts) with generated test keys: the worker-side
 * signPeFile with `signing.authenticode` as its signer gives an sd-boot that sbverify and osslsigncode accept; bad
 * digests and bad key material are refused; the enrollment files equal efitools' for the same keys and timestamp.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { certificateNotBefore, MICROSOFT_OWNER_GUID, readWellKnownManifest, signatureOwnerGuid, signPeFile, WELL_KNOWN_CERTIFICATES_DIR } from '@factory/authenticode';
import { isFactoryError } from '@factory/errors';
import { enrollmentFiles, secureBootHandlers, signAuthenticode } from '../src/secureboot-handlers';
import { authVariableData, opensslSubject, sigListToCerts } from '../../../test/support/efi-sig-list';
import { makeTestKeyPair, TestKeyPair } from '../../../test/support/secureboot-keys';
import { testIf } from '../../../test/support/skip';

const SD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const OPENSSL = have('openssl');
const PE_TOOLS = OPENSSL && have('sbverify') && have('osslsigncode') && fs.existsSync(SD_BOOT);
const EFITOOLS = OPENSSL && have('cert-to-efi-sig-list') && have('sign-efi-sig-list') && have('sig-list-to-certs');
const opensslIt = testIf(OPENSSL, 'needs openssl (scripts/setup.sh)');
const peIt = testIf(PE_TOOLS, 'needs sbsigntool, osslsigncode and systemd-boot-efi (scripts/setup.sh)');
const efitoolsIt = testIf(EFITOOLS, 'needs efitools (scripts/setup.sh)');

let tmp: string;
const pairs: Record<string, TestKeyPair> = {};

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'secureboot-handlers-test-'));
  if (!OPENSSL) return;
  for (const name of ['signing', 'other', 'pk', 'kek']) pairs[name] = makeTestKeyPair(tmp, name, { pkcs1: true });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};

describe('signing.authenticode', () => {
  peIt('signPeFile with the handler as signer: sbverify and osslsigncode accept the signed sd-boot, another certificate fails', async () => {
    const signed: string[] = [];
    const handlers = secureBootHandlers({ signing: pairs.signing }, { signed: (key) => signed.push(key) });
    const out = path.join(tmp, 'sd-boot.signed.efi');
    await signPeFile(SD_BOOT, out, async (sha256) => {
      const { signedDataBase64 } = await handlers['signing.authenticode']({ sha256: sha256.toString('hex') });
      return Buffer.from(signedDataBase64, 'base64');
    });
    expect(signed).toEqual(['secureboot']);
    const sb = run('sbverify', ['--cert', pairs.signing.certPath, out]);
    expect(sb.out).toContain('Signature verification OK');
    expect(sb.status).toBe(0);
    const oss = run('osslsigncode', ['verify', '-CAfile', pairs.signing.certPath, '-in', out]);
    expect(oss.out).toMatch(/^Succeeded$/m);
    expect(oss.status).toBe(0);
    const wrong = run('sbverify', ['--cert', pairs.other.certPath, out]);
    expect(wrong.out).toContain('Signature verification failed');
    expect(wrong.status).not.toBe(0);
  });

  opensslIt('the same digest gives the same SignedData (deterministic)', async () => {
    const sha256 = 'ab'.repeat(32);
    const a = await signAuthenticode(pairs.signing, { sha256 });
    const b = await signAuthenticode(pairs.signing, { sha256 });
    expect(a.signedDataBase64).toBe(b.signedDataBase64);
    // the digest is inside, as the DigestInfo of the SpcIndirectDataContent
    expect(Buffer.from(a.signedDataBase64, 'base64').includes(Buffer.from(sha256, 'hex'))).toBe(true);
  });

  opensslIt('anything but a 64-hex-digit SHA-256 is a 400, never signed', async () => {
    for (const sha256 of ['', 'ab'.repeat(31), 'AB'.repeat(32), `${'ab'.repeat(32)}00`, 42 as unknown as string]) {
      const err = await signAuthenticode(pairs.signing, { sha256 }).catch((e: unknown) => e);
      expect(isFactoryError(err)).toBe(true);
      expect((err as { status: number }).status).toBe(400);
    }
  });

  opensslIt('key material is checked when the handlers are made: RSA only, certificate of that key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => secureBootHandlers({ signing: { keyPem: ec, certPem: pairs.signing.certPem } })).toThrow(/must be RSA/);
    expect(() => secureBootHandlers({ signing: { keyPem: pairs.signing.keyPem, certPem: pairs.other.certPem } })).toThrow(/does not belong/);
    expect(() => secureBootHandlers({ signing: pairs.signing, kek: { keyPem: pairs.kek.keyPem, certPem: pairs.pk.certPem } })).toThrow(/KEK certificate does not belong/);
    expect(() => secureBootHandlers({ signing: { keyPem: pairs.signing.keyPem, certPem: '' } })).toThrow(/no PEM CERTIFICATE/);
  });
});

describe('signing.secureBootEnrollment', () => {
  /**
   * sign-efi-sig-list's output for one variable: one ESL per certificate (PEM files; `cert` with `owner`, then the
   * `more` ones), concatenated, signed by `by` at `timestamp`
   */
  function efitoolsAuth(name: string, cert: TestKeyPair, by: TestKeyPair, owner: string, timestamp: Date, more: Array<{ certPath: string; owner: string }> = []): Buffer {
    const esl = path.join(tmp, `${name}.esl`);
    const auth = path.join(tmp, `${name}.auth`);
    const lists = [{ certPath: cert.certPath, owner }, ...more].map((entry, i) => {
      const one = path.join(tmp, `${name}-${i}.esl`);
      execFileSync('cert-to-efi-sig-list', ['-g', entry.owner, entry.certPath, one], { stdio: 'ignore' });
      return fs.readFileSync(one);
    });
    fs.writeFileSync(esl, Buffer.concat(lists));
    const t = timestamp.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
    execFileSync('sign-efi-sig-list', ['-t', t, '-k', by.keyPath, '-c', by.certPath, name, esl, auth], { stdio: 'ignore', env: { ...process.env, TZ: 'UTC' } });
    return fs.readFileSync(auth);
  }

  efitoolsIt('one key (the anchor default): PK, KEK and db enroll the signing certificate, signed by it, as efitools makes them', async () => {
    const files = await secureBootHandlers({ signing: pairs.signing })['signing.secureBootEnrollment']({});
    const owner = signatureOwnerGuid(pairs.signing.certPem);
    const timestamp = certificateNotBefore(pairs.signing.certPem);
    for (const name of ['PK', 'KEK', 'db'] as const) {
      expect(Buffer.from(files[name], 'base64').equals(efitoolsAuth(name, pairs.signing, pairs.signing, owner, timestamp))).toBe(true);
    }
    expect(await enrollmentFiles({ signing: pairs.signing })).toEqual(files);
  });

  efitoolsIt('separate PK and KEK: PK self-signed, KEK signed by PK, db (the signing certificate) signed by KEK', async () => {
    const timestamp = new Date('2026-05-06T07:08:09Z');
    const files = await enrollmentFiles({ signing: pairs.signing, pk: pairs.pk, kek: pairs.kek }, { timestamp });
    const owner = signatureOwnerGuid(pairs.signing.certPem);
    expect(Buffer.from(files.PK, 'base64').equals(efitoolsAuth('PK', pairs.pk, pairs.pk, owner, timestamp))).toBe(true);
    expect(Buffer.from(files.KEK, 'base64').equals(efitoolsAuth('KEK', pairs.kek, pairs.pk, owner, timestamp))).toBe(true);
    expect(Buffer.from(files.db, 'base64').equals(efitoolsAuth('db', pairs.signing, pairs.kek, owner, timestamp))).toBe(true);
  });
  /** talos-formats §7.5, in enrolment order after our own certificate */
  const WELL_KNOWN = {
    KEK: ['Microsoft Corporation KEK CA 2011', 'Microsoft Corporation KEK 2K CA 2023'],
    db: ['Microsoft Corporation UEFI CA 2011', 'Microsoft Option ROM UEFI CA 2023', 'Microsoft UEFI CA 2023'],
  };

  efitoolsIt('includeWellKnownCertificates: KEK and db list ours, then the well-known certificates in order with the Microsoft owner GUID; PK unchanged', async () => {
    const handlers = secureBootHandlers({ signing: pairs.signing });
    const plain = await handlers['signing.secureBootEnrollment']({});
    const files = await handlers['signing.secureBootEnrollment']({ includeWellKnownCertificates: true });
    expect(files.PK).toBe(plain.PK);
    const owner = signatureOwnerGuid(pairs.signing.certPem);
    const ownSubject = opensslSubject(execFileSync('openssl', ['x509', '-in', pairs.signing.certPath, '-outform', 'der']));
    for (const name of ['KEK', 'db'] as const) {
      const listed = sigListToCerts(authVariableData(Buffer.from(files[name], 'base64')), tmp, `listed-${name}`);
      expect(listed.map((c) => c.owner)).toEqual([owner, ...WELL_KNOWN[name].map(() => MICROSOFT_OWNER_GUID)]);
      expect(listed[0].subject).toBe(ownSubject);
      expect(listed.slice(1).map((c) => c.subject.replace(/^.*CN = /, ''))).toEqual(WELL_KNOWN[name]);
      // and PK's list is still our certificate alone
      expect(sigListToCerts(authVariableData(Buffer.from(files.PK, 'base64')), tmp, `listed-PK-${name}`).map((c) => c.owner)).toEqual([owner]);
    }
  });

  efitoolsIt('includeWellKnownCertificates: KEK.auth and db.auth equal sign-efi-sig-list over the same lists', async () => {
    const files = await enrollmentFiles({ signing: pairs.signing }, { includeWellKnownCertificates: true });
    const owner = signatureOwnerGuid(pairs.signing.certPem);
    const timestamp = certificateNotBefore(pairs.signing.certPem);
    const manifest = readWellKnownManifest();
    for (const name of ['KEK', 'db'] as const) {
      const more = manifest.certificates
        .filter((c) => c.variable === name)
        .map((c) => {
          const certPath = path.join(tmp, `${c.file}.pem`);
          execFileSync('openssl', ['x509', '-inform', 'der', '-in', path.join(WELL_KNOWN_CERTIFICATES_DIR, c.file), '-out', certPath]);
          return { certPath, owner: MICROSOFT_OWNER_GUID };
        });
      expect(more).toHaveLength(WELL_KNOWN[name].length);
      expect(Buffer.from(files[name], 'base64').equals(efitoolsAuth(name, pairs.signing, pairs.signing, owner, timestamp, more))).toBe(true);
    }
  });

  efitoolsIt('without includeWellKnownCertificates (absent or false) the files are the ones without the well-known certificates', async () => {
    const handlers = secureBootHandlers({ signing: pairs.signing });
    const absent = await handlers['signing.secureBootEnrollment']({});
    expect(await handlers['signing.secureBootEnrollment']({ includeWellKnownCertificates: false })).toEqual(absent);
    expect(await enrollmentFiles({ signing: pairs.signing })).toEqual(absent);
    const owner = signatureOwnerGuid(pairs.signing.certPem);
    const timestamp = certificateNotBefore(pairs.signing.certPem);
    expect(Buffer.from(absent.KEK, 'base64').equals(efitoolsAuth('KEK', pairs.signing, pairs.signing, owner, timestamp))).toBe(true);
    expect(Buffer.from(absent.db, 'base64').equals(efitoolsAuth('db', pairs.signing, pairs.signing, owner, timestamp))).toBe(true);
  });

  opensslIt('each variant is built once per handler map; a non-boolean includeWellKnownCertificates is a 400', async () => {
    const handlers = secureBootHandlers({ signing: pairs.signing });
    const enroll = handlers['signing.secureBootEnrollment'];
    const first = await enroll({ includeWellKnownCertificates: true });
    expect(await enroll({ includeWellKnownCertificates: true })).toBe(first);
    expect(await enroll({})).toBe(await enroll({ includeWellKnownCertificates: false }));
    expect(await enroll({})).not.toEqual(first);
    for (const bad of ['true', 1, {}]) {
      const err = await enroll({ includeWellKnownCertificates: bad as unknown as boolean }).catch((e: unknown) => e);
      expect(isFactoryError(err)).toBe(true);
      expect((err as { status: number }).status).toBe(400);
    }
  });
});
