/**
 * The well-known certificates of includeWellKnownCertificates (libs/authenticode/data/well-known) and the EDK2
 * variable-store reader they were extracted with: the manifest lists talos-formats §7.5's certificates in its order,
 * each committed DER has the recorded SHA-256 and subject, altered or missing files are refused, and the 2011
 * certificates are byte for byte those enrolled in the OVMF variable store Debian installs on this machine.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  EFI_AUTHENTICATED_VARIABLE_GUID,
  EFI_GLOBAL_VARIABLE_GUID,
  EFI_IMAGE_SECURITY_DATABASE_GUID,
  efiGuid,
  MICROSOFT_OWNER_GUID,
  parseX509SignatureLists,
  readVariableStore,
  readWellKnownManifest,
  storedVariable,
  WELL_KNOWN_CERTIFICATES_DIR,
  wellKnownSignatureEntries,
} from '@factory/authenticode';
import { opensslSubject } from '../../../test/support/efi-sig-list';
import { testIf } from '../../../test/support/skip';

const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const opensslIt = testIf(have('openssl'), 'needs openssl');
const DEBIAN_MS_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
const ovmfIt = testIf(fs.existsSync(DEBIAN_MS_VARS), `needs Debian's ovmf (${DEBIAN_MS_VARS})`);

/** talos-formats §7.5, in enrolment order */
const EXPECTED = {
  KEK: ['Microsoft Corporation KEK CA 2011', 'Microsoft Corporation KEK 2K CA 2023'],
  db: ['Microsoft Corporation UEFI CA 2011', 'Microsoft Option ROM UEFI CA 2023', 'Microsoft UEFI CA 2023'],
};

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'well-known-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('well-known certificates', () => {
  const manifest = readWellKnownManifest();

  test('the manifest lists the §7.5 certificates, KEK then db, in order', () => {
    const names = (variable: 'KEK' | 'db') => manifest.certificates.filter((c) => c.variable === variable).map((c) => c.commonName);
    expect(names('KEK')).toEqual(EXPECTED.KEK);
    expect(names('db')).toEqual(EXPECTED.db);
    expect(manifest.certificates).toHaveLength(5);
  });

  opensslIt('each committed DER has the recorded SHA-256 and subject, and the subject CN is the listed one', () => {
    for (const c of manifest.certificates) {
      const der = fs.readFileSync(path.join(WELL_KNOWN_CERTIFICATES_DIR, c.file));
      expect(createHash('sha256').update(der).digest('hex')).toBe(c.sha256);
      const subject = opensslSubject(der);
      expect(subject).toBe(c.subject);
      expect(subject.endsWith(`CN = ${c.commonName}`)).toBe(true);
    }
  });

  test('wellKnownSignatureEntries: the DERs in manifest order, owned by the Microsoft GUID', () => {
    const entries = wellKnownSignatureEntries();
    for (const variable of ['KEK', 'db'] as const) {
      const files = manifest.certificates.filter((c) => c.variable === variable).map((c) => c.file);
      expect(entries[variable].map((e) => e.owner)).toEqual(files.map(() => MICROSOFT_OWNER_GUID));
      expect(entries[variable].map((e) => e.certificate)).toEqual(files.map((f) => fs.readFileSync(path.join(WELL_KNOWN_CERTIFICATES_DIR, f))));
    }
  });

  test('an altered or missing file is an error, not a shorter list', () => {
    const copy = path.join(tmp, 'altered');
    fs.cpSync(WELL_KNOWN_CERTIFICATES_DIR, copy, { recursive: true });
    const victim = path.join(copy, manifest.certificates[3].file);
    const der = fs.readFileSync(victim);
    der[der.length - 1] ^= 1;
    fs.writeFileSync(victim, der);
    expect(() => wellKnownSignatureEntries(copy)).toThrow(/SHA-256/);
    fs.rmSync(victim);
    expect(() => wellKnownSignatureEntries(copy)).toThrow(/ENOENT/);
  });

  ovmfIt("the 2011 certificates are those enrolled in Debian's OVMF_VARS_4M.ms.fd, with the same owner", () => {
    const store = readVariableStore(fs.readFileSync(DEBIAN_MS_VARS));
    const enrolled = {
      KEK: parseX509SignatureLists(storedVariable(store, 'KEK', EFI_GLOBAL_VARIABLE_GUID)!),
      db: parseX509SignatureLists(storedVariable(store, 'db', EFI_IMAGE_SECURITY_DATABASE_GUID)!),
    };
    const of2011 = manifest.certificates.filter((c) => c.commonName.endsWith('2011'));
    expect(of2011.map((c) => c.commonName)).toEqual([EXPECTED.KEK[0], EXPECTED.db[0]]);
    for (const c of of2011) {
      const der = fs.readFileSync(path.join(WELL_KNOWN_CERTIFICATES_DIR, c.file));
      const match = enrolled[c.variable].filter((e) => Buffer.isBuffer(e.certificate) && e.certificate.equals(der));
      expect(match.map((e) => e.owner)).toEqual([MICROSOFT_OWNER_GUID]);
    }
  });
});

describe('readVariableStore', () => {
  /** AUTHENTICATED_VARIABLE_HEADER record (60-byte header, UTF-16 name with NUL, data), padded to 4 bytes */
  function record(name: string, vendor: string, data: Buffer, state: number): Buffer {
    const nameBytes = Buffer.from(`${name}\0`, 'utf16le');
    const h = Buffer.alloc(60);
    h.writeUInt16LE(0x55aa, 0);
    h[2] = state;
    h.writeUInt32LE(0x27, 4);
    h.writeUInt32LE(nameBytes.length, 36);
    h.writeUInt32LE(data.length, 40);
    efiGuid(vendor).copy(h, 44);
    const body = Buffer.concat([h, nameBytes, data]);
    return Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4, 0xff)]);
  }

  function volume(records: Buffer[]): Buffer {
    const fvLength = 4096;
    const fv = Buffer.alloc(fvLength, 0xff);
    fv.fill(0, 0, 72);
    fv.writeBigUInt64LE(BigInt(fvLength), 32);
    fv.write('_FVH', 40, 'latin1');
    fv.writeUInt16LE(72, 48); // HeaderLength: 56 + a two-entry block map
    efiGuid(EFI_AUTHENTICATED_VARIABLE_GUID).copy(fv, 72);
    fv.writeUInt32LE(fvLength - 72, 88);
    fv[92] = 0x5a; // formatted
    fv[93] = 0xfe; // healthy
    fv.fill(0, 94, 100);
    Buffer.concat(records).copy(fv, 100);
    return fv;
  }

  test('live records with their names, GUIDs and data; deleted ones marked; stops at erased space', () => {
    const fv = volume([
      record('KEK', EFI_GLOBAL_VARIABLE_GUID, Buffer.from('old'), 0x3c), // VAR_ADDED & VAR_DELETED
      record('KEK', EFI_GLOBAL_VARIABLE_GUID, Buffer.from('new!'), 0x3f),
      record('db', EFI_IMAGE_SECURITY_DATABASE_GUID, Buffer.from('d'), 0x3e), // in deleted transition: still current
    ]);
    const store = readVariableStore(fv);
    expect(store.map((v) => [v.name, v.live, v.data.toString()])).toEqual([
      ['KEK', false, 'old'],
      ['KEK', true, 'new!'],
      ['db', true, 'd'],
    ]);
    expect(storedVariable(store, 'KEK', EFI_GLOBAL_VARIABLE_GUID)?.toString()).toBe('new!');
    expect(storedVariable(store, 'KEK', EFI_IMAGE_SECURITY_DATABASE_GUID)).toBeUndefined();
    expect(store[2].vendorGuid).toBe(EFI_IMAGE_SECURITY_DATABASE_GUID);
  });

  test('refuses what is not a variable-store firmware volume', () => {
    expect(() => readVariableStore(Buffer.alloc(4096))).toThrow(/_FVH/);
    const fv = volume([]);
    fv.fill(0, 72, 88);
    expect(() => readVariableStore(fv)).toThrow(/no variable store/);
  });
});
