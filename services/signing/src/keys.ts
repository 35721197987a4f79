/**
 * Key material is read only here. A key comes from a configured file (production) or is generated once into the
 * signing service's own key directory (embedded default), which is created mode 0700 with files mode 0600.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface LoadedKey {
  privateKey: KeyObject;
  publicPem: string;
  file: string;
  generated: boolean;
}

/** Loads an ECDSA P-256 private key (PEM, PKCS#8 or SEC1), or generates and saves one when missing and allowed. */
export function loadOrCreateEcKey(file: string, allowGenerate: boolean): LoadedKey {
  let generated = false;
  if (!existsSync(file)) {
    if (!allowGenerate) throw new Error(`signing key ${file} does not exist`);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    chmodSync(path.dirname(file), 0o700);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    renameSync(tmp, file);
    generated = true;
  }
  const privateKey = createPrivateKey(readFileSync(file));
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`signing key ${file} must be an ECDSA P-256 key`);
  }
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicPem, file, generated };
}

/** ECDSA P-256 over SHA-256, DER-encoded, as cosign produces and verifies. */
export function signEcdsa(key: KeyObject, data: Buffer): Buffer {
  return sign('sha256', data, key);
}
