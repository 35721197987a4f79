/**
 * Reading Secure Boot enrollment data back with the reference tools, for tests: the EFI_SIGNATURE_LIST data of a
 * `.auth` file, and each X.509 entry of a list as efitools' `sig-list-to-certs` writes it out, with its owner GUID
 * (as sig-list-to-certs prints it) and subject (as `openssl x509 -inform der -noout -subject` prints it).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The variable data after a `.auth` file's EFI_VARIABLE_AUTHENTICATION_2 (EFI_TIME, then a WIN_CERTIFICATE of dwLength). */
export function authVariableData(auth: Buffer): Buffer {
  return auth.subarray(16 + auth.readUInt32LE(16));
}

export interface ListedCertificate {
  owner: string;
  /** openssl's one-line subject, without `subject=` */
  subject: string;
  der: Buffer;
}

export function opensslSubject(der: Buffer): string {
  return execFileSync('openssl', ['x509', '-inform', 'der', '-noout', '-subject'], { input: der, encoding: 'utf8' }).trim().replace(/^subject=/, '');
}

/** The certificates of an EFI_SIGNATURE_LIST set, in order, through `sig-list-to-certs` (files under `dir/name-*`). */
export function sigListToCerts(esl: Buffer, dir: string, name: string): ListedCertificate[] {
  const eslPath = path.join(dir, `${name}.esl`);
  fs.writeFileSync(eslPath, esl);
  const prefix = path.join(dir, name);
  const out = execFileSync('sig-list-to-certs', [eslPath, prefix], { encoding: 'utf8' });
  const owners = [...out.matchAll(/^file \S+-(\d+)\.der: Guid ([0-9a-f-]{36})$/gm)].map((m) => ({ index: Number(m[1]), owner: m[2] }));
  return owners.map(({ index, owner }) => {
    const der = fs.readFileSync(`${prefix}-${index}.der`);
    return { owner, subject: opensslSubject(der), der };
  });
}
