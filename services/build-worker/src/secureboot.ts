/**
 * The build-worker's side of Secure Boot signing: an adapter over the signing service's queue jobs. Recipes get the
 * public material and ask for signatures over digests they computed; no private key ever reaches this process.
 */
import type { AuthenticodeSigner } from '@factory/authenticode';
import { FactoryError } from '@factory/errors';
import type { SectionDigest } from '@factory/pcr';
import type { JobClient } from '@factory/queue';

export interface SecureBootMaterial {
  /** the UKI signing certificate (PEM): signs sd-boot and UKIs, enrolled in db */
  signingCertPem: string;
  /** the PCR public key (PEM `PUBLIC KEY`): the `.pcrpkey` section */
  pcrPublicKeyPem: string;
  /** own PK and KEK certificates, when configured (enrolled by ISOs and disk images; part of the signer's name) */
  pkCertPem?: string;
  kekCertPem?: string;
}

export interface SecureBootEnrollment {
  PK: Buffer;
  KEK: Buffer;
  db: Buffer;
}

/** What a recipe may ask of the signing service for a Secure Boot asset. */
export interface SecureBootSigner {
  /** the public material; a 400 "secure boot is disabled" when the signing service has no Secure Boot keys */
  material(): Promise<SecureBootMaterial>;
  /** the `.pcrsig` JSON for the sections the stub measures when booting one profile */
  signPcrPolicy(measured: SectionDigest[]): Promise<string>;
  /** Authenticode SignedData (DER) for a PE image's SHA-256 Authenticode digest */
  authenticode: AuthenticodeSigner;
  /** PK/KEK/db `.auth` files enrolling the signing certificate (KEK and db also the well-known UEFI CAs when asked) */
  enrollment(opts: { includeWellKnownCertificates: boolean }): Promise<SecureBootEnrollment>;
}

/** The signer over the signing service's jobs (`signing.secureBootPublic`, `signing.pcrPolicy`, `signing.authenticode`, `signing.secureBootEnrollment`). */
export function queueSecureBootSigner(jobs: Pick<JobClient, 'call'>, timeoutMs: number): SecureBootSigner {
  const opts = { timeoutMs };
  return {
    async material() {
      const pub = await jobs.call('signing.secureBootPublic', {}, opts);
      if (!pub.enabled) throw new FactoryError(400, 'error enhancing profile from schematic: secure boot is disabled');
      return {
        signingCertPem: pub.signingCertPem,
        pcrPublicKeyPem: pub.pcrPublicKeyPem,
        ...(pub.pkCertPem ? { pkCertPem: pub.pkCertPem } : {}),
        ...(pub.kekCertPem ? { kekCertPem: pub.kekCertPem } : {}),
      };
    },
    async signPcrPolicy(measured) {
      return (await jobs.call('signing.pcrPolicy', { sections: measured }, opts)).pcrsig;
    },
    async authenticode(sha256) {
      return Buffer.from((await jobs.call('signing.authenticode', { sha256: sha256.toString('hex') }, opts)).signedDataBase64, 'base64');
    },
    async enrollment({ includeWellKnownCertificates }) {
      const files = await jobs.call('signing.secureBootEnrollment', includeWellKnownCertificates ? { includeWellKnownCertificates } : {}, opts);
      return { PK: Buffer.from(files.PK, 'base64'), KEK: Buffer.from(files.KEK, 'base64'), db: Buffer.from(files.db, 'base64') };
    },
  };
}
