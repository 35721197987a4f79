/**
 * Secure Boot job handlers of the signing service: Authenticode signatures for PE images whose digest the
 * build-worker computed, and the PK/KEK/db enrollment files. Pure functions of the key material they are given (the
 * service loads the keys; see keys.ts); not wired to the queue here.
 *
 * The service never signs caller bytes: for `signing.authenticode` it builds the SpcIndirectDataContent around the
 * 32-byte image digest and signs those attributes; the enrollment files are built entirely here.
 */
import { createPrivateKey, KeyObject, sign as rsaSign, X509Certificate } from 'node:crypto';
import {
  authenticodeSignedData,
  certificateNotBefore,
  certificatesFromPem,
  enrollmentAuthFiles,
  EnrollmentKeyRole,
  signatureOwnerGuid,
  wellKnownSignatureEntries,
} from '@factory/authenticode';
import { badRequest } from '@factory/errors';
import type { PayloadOf, ResultOf } from '@factory/queue';
import type { SecureBootKeys } from './secureboot-keys';

/** An RSA private key (PEM, PKCS#1 as the anchor's file provider, or PKCS#8) and its certificate (PEM; chain may follow). */
export interface SecureBootKeyPair {
  keyPem: string;
  certPem: string;
}

/**
 * The key material these handlers use (the service's loaded keys fit): `signing` signs sd-boot and UKIs and is the
 * certificate enrolled in db; PK and KEK are the signing key too unless configured (as the anchor makes them:
 * talos-formats §7.5).
 */
export type AuthenticodeKeys = Pick<SecureBootKeys, 'signing' | 'pk' | 'kek'>;

export interface SecureBootMetrics {
  signed(key: string): void;
}

interface LoadedRole {
  privateKey: KeyObject;
  certificates: Buffer[];
  certPem: string;
}

/** Parse and check a key pair: an RSA key, and the first certificate is that key's. Thrown errors are configuration errors. */
function loadRole(what: string, pair: SecureBootKeyPair): LoadedRole {
  const privateKey = createPrivateKey(pair.keyPem);
  if (privateKey.asymmetricKeyType !== 'rsa') throw new Error(`Secure Boot ${what} key must be RSA (got ${privateKey.asymmetricKeyType})`);
  const certificates = certificatesFromPem(pair.certPem);
  if (certificates.length === 0) throw new Error(`Secure Boot ${what} certificate: no PEM CERTIFICATE`);
  if (!new X509Certificate(certificates[0]).checkPrivateKey(privateKey)) {
    throw new Error(`Secure Boot ${what} certificate does not belong to its private key`);
  }
  return { privateKey, certificates, certPem: pair.certPem };
}

function signer(role: LoadedRole): EnrollmentKeyRole {
  // RSA PKCS#1 v1.5 over SHA-256 (node's default padding for RSA keys): deterministic
  return { certificates: role.certificates, sign: async (tbs) => rsaSign('sha256', tbs, role.privateKey) };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** `signing.authenticode`: SignedData (ContentInfo DER, base64) for an image digest. */
export async function signAuthenticode(keys: SecureBootKeyPair, { sha256 }: PayloadOf<'signing.authenticode'>): Promise<ResultOf<'signing.authenticode'>> {
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) throw badRequest(`refusing to sign: ${JSON.stringify(sha256)} is not a lowercase hex SHA-256 digest`);
  const role = signer(loadRole('signing', keys));
  const der = await authenticodeSignedData({ sha256: Buffer.from(sha256, 'hex'), certificates: role.certificates, sign: role.sign });
  return { signedDataBase64: der.toString('base64') };
}

export interface EnrollmentOptions {
  /** time of the authenticated writes; default the signing certificate's notBefore (reproducible, and later for a rotated key) */
  timestamp?: Date;
  /** append the well-known Microsoft certificates (libs/authenticode/data/well-known) to KEK and db; PK never */
  includeWellKnownCertificates?: boolean;
}

/**
 * `signing.secureBootEnrollment`: PK.auth (self-signed by PK), KEK.auth (signed by PK) and db.auth (signed by KEK)
 * enrolling PK, KEK and the signing certificate, owner GUID derived from the signing certificate PEM (§7.5), and with
 * `includeWellKnownCertificates` the well-known certificates after our own in KEK and db. The lists carry DER
 * certificates (not the PEM bytes the anchor passes through, which OVMF refuses: §7.5).
 */
export async function enrollmentFiles(keys: AuthenticodeKeys, opts: EnrollmentOptions = {}): Promise<ResultOf<'signing.secureBootEnrollment'>> {
  const signing = loadRole('signing', keys.signing);
  const pk = keys.pk ? loadRole('PK', keys.pk) : signing;
  const kek = keys.kek ? loadRole('KEK', keys.kek) : signing;
  const wellKnown = opts.includeWellKnownCertificates ? wellKnownSignatureEntries() : undefined;
  const files = await enrollmentAuthFiles({
    pk: signer(pk),
    kek: signer(kek),
    db: signer(signing),
    owner: signatureOwnerGuid(keys.signing.certPem),
    timestamp: opts.timestamp ?? certificateNotBefore(signing.certificates[0]),
    extraKek: wellKnown?.KEK,
    extraDb: wellKnown?.db,
  });
  return { PK: files.PK.toString('base64'), KEK: files.KEK.toString('base64'), db: files.db.toString('base64') };
}

type SecureBootJob = 'signing.authenticode' | 'signing.secureBootEnrollment';
export type SecureBootHandlers = { [K in SecureBootJob]: (payload: PayloadOf<K>) => Promise<ResultOf<K>> };

/**
 * The handlers, to be merged into the signing service's handler map. The key material is checked here, once, so a
 * misconfigured key fails the service at start rather than a build.
 */
export function secureBootHandlers(keys: AuthenticodeKeys | undefined, metrics?: SecureBootMetrics): SecureBootHandlers {
  if (!keys) {
    const disabled = async (): Promise<never> => {
      throw badRequest('secure boot is disabled');
    };
    return { 'signing.authenticode': disabled, 'signing.secureBootEnrollment': disabled };
  }
  loadRole('signing', keys.signing);
  if (keys.pk) loadRole('PK', keys.pk);
  if (keys.kek) loadRole('KEK', keys.kek);
  // The files depend only on the keys (fixed for this handler map) and the variant: each is built once, on first ask.
  // A failed build is not kept, so the next ask tries again.
  const enrollment = new Map<boolean, Promise<ResultOf<'signing.secureBootEnrollment'>>>();
  return {
    'signing.authenticode': async (payload) => {
      const result = await signAuthenticode(keys.signing, payload);
      metrics?.signed('secureboot');
      return result;
    },
    'signing.secureBootEnrollment': async (payload) => {
      const includeWellKnownCertificates = payload?.includeWellKnownCertificates ?? false;
      if (typeof includeWellKnownCertificates !== 'boolean') {
        throw badRequest(`includeWellKnownCertificates must be a boolean, not ${JSON.stringify(includeWellKnownCertificates)}`);
      }
      let files = enrollment.get(includeWellKnownCertificates);
      if (!files) {
        files = enrollmentFiles(keys, { includeWellKnownCertificates });
        enrollment.set(includeWellKnownCertificates, files);
        files.catch(() => enrollment.delete(includeWellKnownCertificates));
      }
      return files;
    },
  };
}
