/**
 * Throwaway Secure Boot test keys: an RSA 2048 key with a self-signed certificate, made with the openssl CLI (as
 * test-environment §3 does), as PEM text and as files for the cross-checking tools (sbsign, sbverify, efitools).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestKeyPair {
  keyPem: string;
  certPem: string;
  keyPath: string;
  certPath: string;
}

/** `<dir>/<name>.key` (PKCS#1 `RSA PRIVATE KEY` when `pkcs1`, as the anchor's file provider, else PKCS#8) and `<name>.crt`. */
export function makeTestKeyPair(dir: string, name: string, opts: { subject?: string; pkcs1?: boolean } = {}): TestKeyPair {
  const keyPath = path.join(dir, `${name}.key`);
  const certPath = path.join(dir, `${name}.crt`);
  execFileSync('openssl', ['genrsa', ...(opts.pkcs1 ? ['-traditional'] : []), '-out', keyPath, '2048'], { stdio: 'ignore' });
  const subject = opts.subject ?? `/CN=Factory test ${name}/`;
  execFileSync('openssl', ['req', '-new', '-x509', '-key', keyPath, '-sha256', '-days', '3650', '-subj', subject, '-out', certPath], { stdio: 'ignore' });
  return { keyPem: fs.readFileSync(keyPath, 'utf8'), certPem: fs.readFileSync(certPath, 'utf8'), keyPath, certPath };
}
