/**
 * Secure Boot enrollment files (libs/authenticode efi-vars) against efitools: our EFI_SIGNATURE_LISTs equal
 * cert-to-efi-sig-list's, our PK/KEK/db `.auth` files equal sign-efi-sig-list's byte for byte for the same
 * timestamp (PK self-signed, KEK by PK, db by KEK), and sig-list-to-certs reads our lists back.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { sign as rsaSign } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  authenticatedVariablePayload,
  certificateDer,
  certificateNotBefore,
  efiGuid,
  enrollmentAuthFiles,
  guidText,
  parseX509SignatureLists,
  signatureOwnerGuid,
  x509SignatureLists,
} from '@factory/authenticode';
import { makeTestKeyPair, TestKeyPair } from '../../../test/support/secureboot-keys';
import { testIf } from '../../../test/support/skip';

const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const EFITOOLS = ['cert-to-efi-sig-list', 'sign-efi-sig-list', 'sig-list-to-certs', 'openssl'].every(have);
const efitoolsIt = testIf(EFITOOLS, 'needs efitools and openssl (scripts/setup.sh)');
const OWNER = '3c4b2a10-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const TIMESTAMP = new Date('2026-03-04T05:06:07Z');
const TIMESTAMP_ARG = '2026-03-04 05:06:07';

let tmp: string;
const keys: Record<string, TestKeyPair> = {};

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'efi-vars-test-'));
  if (!have('openssl')) return;
  for (const name of ['PK', 'KEK', 'db']) keys[name] = makeTestKeyPair(tmp, name);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const role = (k: TestKeyPair) => ({ certificates: [k.certPem], sign: async (tbs: Buffer) => rsaSign('sha256', tbs, k.keyPem) });

describe('GUIDs and EFI_SIGNATURE_LIST', () => {
  test('EFI_GUID byte order: first three fields little-endian', () => {
    const g = efiGuid('a5c059a1-94e4-4aa7-87b5-ab155c2bf072');
    expect(g.toString('hex')).toBe('a159c0a5e494a74a87b5ab155c2bf072');
    expect(guidText(g)).toBe('a5c059a1-94e4-4aa7-87b5-ab155c2bf072');
    expect(() => efiGuid('not-a-guid')).toThrow(/not a GUID/);
  });

  test('signature owner GUID from the certificate PEM is a stable version-4-tagged RFC 4122 UUID', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const g = signatureOwnerGuid(pem);
    expect(g).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(signatureOwnerGuid(pem)).toBe(g);
    expect(signatureOwnerGuid(`${pem}\n`)).not.toBe(g);
  });

  efitoolsIt('equal-size entries share one list, others get their own; parse round-trips', () => {
    const esl = x509SignatureLists([
      { certificate: keys.db.certPem, owner: OWNER },
      { certificate: keys.KEK.certPem, owner: OWNER },
      { certificate: keys.db.certPem, owner: '77fa9abd-0359-4d32-bd60-28f4e78f784b' },
    ]);
    const entries = parseX509SignatureLists(esl);
    expect(entries.map((e) => e.owner)).toEqual(
      certificateDer(keys.db.certPem).length === certificateDer(keys.KEK.certPem).length
        ? [OWNER, OWNER, '77fa9abd-0359-4d32-bd60-28f4e78f784b']
        : [OWNER, '77fa9abd-0359-4d32-bd60-28f4e78f784b', OWNER],
    );
    const dbCount = entries.filter((e) => (e.certificate as Buffer).equals(certificateDer(keys.db.certPem))).length;
    expect(dbCount).toBe(2);
    // the db certificate twice: one list holding both (SignatureListSize = 28 + 2 * SignatureSize)
    const firstSize = esl.readUInt32LE(24);
    expect(esl.readUInt32LE(16)).toBe(28 + firstSize * (certificateDer(keys.db.certPem).length === certificateDer(keys.KEK.certPem).length ? 3 : 2));
  });

  efitoolsIt('a one-certificate list equals cert-to-efi-sig-list, and sig-list-to-certs reads ours back', () => {
    for (const name of ['PK', 'KEK', 'db']) {
      const theirs = path.join(tmp, `${name}.efitools.esl`);
      execFileSync('cert-to-efi-sig-list', ['-g', OWNER, keys[name].certPath, theirs], { stdio: 'ignore' });
      const ours = x509SignatureLists([{ certificate: keys[name].certPem, owner: OWNER }]);
      expect(ours.equals(fs.readFileSync(theirs))).toBe(true);
      const oursPath = path.join(tmp, `${name}.ours.esl`);
      fs.writeFileSync(oursPath, ours);
      const out = execFileSync('sig-list-to-certs', [oursPath, path.join(tmp, `${name}.back`)], { encoding: 'utf8' });
      expect(out).toContain('X509 Header sls=');
      expect(fs.readFileSync(path.join(tmp, `${name}.back-0.der`)).equals(certificateDer(keys[name].certPem))).toBe(true);
    }
  });
});

describe('EFI_VARIABLE_AUTHENTICATION_2 .auth files', () => {
  efitoolsIt('PK (self-signed), KEK (by PK) and db (by KEK) are byte-identical to sign-efi-sig-list -t', async () => {
    const ours = await enrollmentAuthFiles({ pk: role(keys.PK), kek: role(keys.KEK), db: role(keys.db), owner: OWNER, timestamp: TIMESTAMP });
    const signedBy: Record<string, string> = { PK: 'PK', KEK: 'PK', db: 'KEK' };
    for (const name of ['PK', 'KEK', 'db'] as const) {
      const esl = path.join(tmp, `${name}.efitools.esl`);
      execFileSync('cert-to-efi-sig-list', ['-g', OWNER, keys[name].certPath, esl], { stdio: 'ignore' });
      const theirs = path.join(tmp, `${name}.efitools.auth`);
      const signer = keys[signedBy[name]];
      const r = spawnSync('sign-efi-sig-list', ['-t', TIMESTAMP_ARG, '-k', signer.keyPath, '-c', signer.certPath, name, esl, theirs], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('Timestamp is 2026-3-4 05:06:07');
      expect(ours[name].length).toBe(fs.statSync(theirs).size);
      expect(ours[name].equals(fs.readFileSync(theirs))).toBe(true);
    }
  });

  efitoolsIt('the signed payload is what sign-efi-sig-list -o exports for external signing', () => {
    const eslPath = path.join(tmp, 'db.bundle.esl');
    execFileSync('cert-to-efi-sig-list', ['-g', OWNER, keys.db.certPath, eslPath], { stdio: 'ignore' });
    const esl = fs.readFileSync(eslPath);
    const bundle = path.join(tmp, 'db.bundle');
    execFileSync('sign-efi-sig-list', ['-t', TIMESTAMP_ARG, '-o', 'db', eslPath, bundle], { stdio: 'ignore', env: { ...process.env, TZ: 'UTC' } });
    expect(authenticatedVariablePayload('db', TIMESTAMP, esl).equals(fs.readFileSync(bundle))).toBe(true);
  });

  efitoolsIt('the enrollment timestamp default (certificate notBefore) is whole seconds of the certificate', () => {
    const t = certificateNotBefore(keys.db.certPem);
    const text = execFileSync('openssl', ['x509', '-noout', '-startdate', '-in', keys.db.certPath], { encoding: 'utf8' });
    expect(new Date(text.trim().replace('notBefore=', '')).getTime()).toBe(t.getTime());
  });
});
