/**
 * The well-known UEFI certificates `includeWellKnownCertificates` adds to KEK and db (talos-formats §7.5). They are
 * data, not code: DER files under libs/authenticode/data/well-known, listed in order by its manifest.json with their
 * SHA-256 (taken out of Debian's pre-enrolled OVMF variable stores by scripts/well-known-certs.sh; provenance in the
 * README there). A certificate is added by dropping its DER file next to the others and listing it in the manifest.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MICROSOFT_OWNER_GUID, SignatureEntry } from './efi-vars';

/** the data directory, from src/ (tests) and dist/ (services) alike */
export const WELL_KNOWN_CERTIFICATES_DIR = path.join(__dirname, '..', 'data', 'well-known');

export interface WellKnownCertificate {
  /** the variable it is appended to: PK is never extended */
  variable: 'KEK' | 'db';
  /** DER file name in the data directory */
  file: string;
  /** the subject's CN, what the extraction script looks for */
  commonName: string;
  /** `openssl x509 -noout -subject` of the file, without `subject=` */
  subject: string;
  /** lowercase hex SHA-256 of the DER file */
  sha256: string;
  /** where the extraction script takes it from: a Debian suite's package and the variable store file in it */
  source: { suite: string; package: string; version?: string; file: string };
}

export interface WellKnownManifest {
  certificates: WellKnownCertificate[];
}

export function readWellKnownManifest(dir = WELL_KNOWN_CERTIFICATES_DIR): WellKnownManifest {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as WellKnownManifest;
  for (const c of manifest.certificates) {
    if (c.variable !== 'KEK' && c.variable !== 'db') throw new Error(`well-known certificate ${c.file}: variable must be KEK or db, not ${String(c.variable)}`);
  }
  return manifest;
}

export interface WellKnownEntries {
  KEK: SignatureEntry[];
  db: SignatureEntry[];
}

/**
 * The KEK and db entries, in manifest order, owned by the Microsoft owner GUID. Each file is checked against its
 * recorded SHA-256: a missing or altered file is an error, never a silently shorter list.
 */
export function wellKnownSignatureEntries(dir = WELL_KNOWN_CERTIFICATES_DIR): WellKnownEntries {
  const out: WellKnownEntries = { KEK: [], db: [] };
  for (const c of readWellKnownManifest(dir).certificates) {
    const der = fs.readFileSync(path.join(dir, c.file));
    const sha256 = createHash('sha256').update(der).digest('hex');
    if (sha256 !== c.sha256) throw new Error(`well-known certificate ${c.file}: SHA-256 ${sha256}, the manifest says ${c.sha256}`);
    out[c.variable].push({ certificate: der, owner: MICROSOFT_OWNER_GUID });
  }
  return out;
}
