/**
 * UEFI Secure Boot enrollment data (UEFI spec 2.10 §8.2.2, §32.4): EFI_SIGNATURE_LISTs of X.509 certificates and
 * EFI_VARIABLE_AUTHENTICATION_2 `.auth` files (time-based authenticated writes of PK, KEK and db), laid out byte for
 * byte as efitools' cert-to-efi-sig-list / sign-efi-sig-list write them; systemd-boot enrolls these from
 * loader/keys/auto. The signature comes from a SignTbs callback: the private keys stay in the signing service.
 */
import { createHash } from 'node:crypto';
import forge from 'node-forge';
import { certificateDer } from './der';
import { detachedVariableSignedData, SignTbs } from './signed-data';

/** GUID text (8-4-4-4-12) to its EFI_GUID bytes: the first three fields little-endian, the last eight as written. */
export function efiGuid(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GUID: ${text}`);
  const be = Buffer.from(hex, 'hex');
  const out = Buffer.from(be);
  out.writeUInt32LE(be.readUInt32BE(0), 0);
  out.writeUInt16LE(be.readUInt16BE(4), 4);
  out.writeUInt16LE(be.readUInt16BE(6), 6);
  return out;
}

export const EFI_CERT_X509_GUID = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
export const EFI_CERT_TYPE_PKCS7_GUID = '4aafd29d-68df-49ee-8aa9-347d375665a7';
export const EFI_GLOBAL_VARIABLE_GUID = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFI_IMAGE_SECURITY_DATABASE_GUID = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
/** owner GUID of the well-known Microsoft certificates (talos-formats §7.5) */
export const MICROSOFT_OWNER_GUID = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

export const EFI_VARIABLE_NON_VOLATILE = 0x01;
export const EFI_VARIABLE_BOOTSERVICE_ACCESS = 0x02;
export const EFI_VARIABLE_RUNTIME_ACCESS = 0x04;
export const EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS = 0x20;
/** the attributes of PK, KEK and db */
export const SECURE_BOOT_VARIABLE_ATTRIBUTES =
  EFI_VARIABLE_NON_VOLATILE |
  EFI_VARIABLE_BOOTSERVICE_ACCESS |
  EFI_VARIABLE_RUNTIME_ACCESS |
  EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
export const WIN_CERT_TYPE_EFI_GUID = 0x0ef1;

export type SecureBootVariable = 'PK' | 'KEK' | 'db';

const VENDOR_GUID: Record<SecureBootVariable, string> = {
  PK: EFI_GLOBAL_VARIABLE_GUID,
  KEK: EFI_GLOBAL_VARIABLE_GUID,
  db: EFI_IMAGE_SECURITY_DATABASE_GUID,
};

/**
 * Signature owner GUID derived from the signing certificate's PEM text (talos-formats §7.5): a name-based UUID over
 * the X.500 namespace with SHA-256, first 16 bytes, version nibble 4, RFC 4122 variant.
 */
export function signatureOwnerGuid(certPem: string): string {
  const x500Namespace = Buffer.from('6ba7b8149dad11d180b400c04fd430c8', 'hex');
  const b = createHash('sha256').update(x500Namespace).update(certPem).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface SignatureEntry {
  /** DER X.509 certificate (PEM text is converted to DER: firmware wants DER, see talos-formats §7.5) */
  certificate: Buffer | string;
  owner: string;
}

/**
 * EFI_SIGNATURE_LIST set of type EFI_CERT_X509_GUID: entries of equal size share one list (EFI_SIGNATURE_LIST has one
 * SignatureSize), lists in order of their first entry.
 */
export function x509SignatureLists(entries: SignatureEntry[]): Buffer {
  const groups = new Map<number, Buffer[]>();
  for (const e of entries) {
    const der = certificateDer(e.certificate);
    const data = Buffer.concat([efiGuid(e.owner), der]);
    const list = groups.get(data.length) ?? [];
    list.push(data);
    groups.set(data.length, list);
  }
  const lists: Buffer[] = [];
  for (const [signatureSize, datas] of groups) {
    const header = Buffer.alloc(28);
    efiGuid(EFI_CERT_X509_GUID).copy(header, 0);
    header.writeUInt32LE(28 + signatureSize * datas.length, 16); // SignatureListSize
    header.writeUInt32LE(0, 20); // SignatureHeaderSize
    header.writeUInt32LE(signatureSize, 24);
    lists.push(header, ...datas);
  }
  return Buffer.concat(lists);
}

/** DER certificates of an EFI_SIGNATURE_LIST set of X.509 lists, with their owners (for tests and inspection). */
export function parseX509SignatureLists(esl: Buffer): SignatureEntry[] {
  const out: SignatureEntry[] = [];
  const x509 = efiGuid(EFI_CERT_X509_GUID);
  for (let off = 0; off < esl.length; ) {
    if (off + 28 > esl.length) throw new Error('EFI_SIGNATURE_LIST: truncated header');
    const listSize = esl.readUInt32LE(off + 16);
    const headerSize = esl.readUInt32LE(off + 20);
    const sigSize = esl.readUInt32LE(off + 24);
    if (listSize < 28 || off + listSize > esl.length || sigSize < 16) throw new Error('EFI_SIGNATURE_LIST: bad sizes');
    if (!esl.subarray(off, off + 16).equals(x509)) throw new Error('EFI_SIGNATURE_LIST: not EFI_CERT_X509_GUID');
    for (let p = off + 28 + headerSize; p + sigSize <= off + listSize; p += sigSize) {
      out.push({ owner: guidText(esl.subarray(p, p + 16)), certificate: Buffer.from(esl.subarray(p + 16, p + sigSize)) });
    }
    off += listSize;
  }
  return out;
}

export function guidText(bytes: Buffer): string {
  const be = Buffer.from(bytes);
  be.writeUInt32BE(bytes.readUInt32LE(0), 0);
  be.writeUInt16BE(bytes.readUInt16LE(4), 4);
  be.writeUInt16BE(bytes.readUInt16LE(6), 6);
  const h = be.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** EFI_TIME of a UTC instant to whole seconds (Pad1, Nanosecond, TimeZone, Daylight, Pad2 zero, as efitools). */
export function efiTime(date: Date): Buffer {
  const t = Buffer.alloc(16);
  t.writeUInt16LE(date.getUTCFullYear(), 0);
  t[2] = date.getUTCMonth() + 1;
  t[3] = date.getUTCDate();
  t[4] = date.getUTCHours();
  t[5] = date.getUTCMinutes();
  t[6] = date.getUTCSeconds();
  return t;
}

/** What the signature of a time-based authenticated write covers. */
export function authenticatedVariablePayload(name: SecureBootVariable, timestamp: Date, data: Buffer): Buffer {
  const attrs = Buffer.alloc(4);
  attrs.writeUInt32LE(SECURE_BOOT_VARIABLE_ATTRIBUTES, 0);
  return Buffer.concat([Buffer.from(name, 'utf16le'), efiGuid(VENDOR_GUID[name]), attrs, efiTime(timestamp), data]);
}

export interface VariableSigner {
  /** signer certificate first (PEM or DER) */
  certificates: Array<Buffer | string>;
  sign: SignTbs;
}

/** EFI_VARIABLE_AUTHENTICATION_2 followed by the variable data: the `.auth` file for `name`. */
export async function authenticatedVariable(name: SecureBootVariable, data: Buffer, timestamp: Date, signer: VariableSigner): Promise<Buffer> {
  const signedData = await detachedVariableSignedData(authenticatedVariablePayload(name, timestamp, data), signer.certificates, signer.sign);
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(24 + signedData.length, 0); // dwLength: WIN_CERTIFICATE_UEFI_GUID with CertData
  hdr.writeUInt16LE(0x0200, 4);
  hdr.writeUInt16LE(WIN_CERT_TYPE_EFI_GUID, 6);
  efiGuid(EFI_CERT_TYPE_PKCS7_GUID).copy(hdr, 8);
  return Buffer.concat([efiTime(timestamp), hdr, signedData, data]);
}

export interface EnrollmentKeyRole extends VariableSigner {
  /** the certificate enrolled in this role's variable (defaults to the signer certificate) */
  certificate?: Buffer | string;
}

export interface EnrollmentOptions {
  pk: EnrollmentKeyRole;
  kek: EnrollmentKeyRole;
  db: EnrollmentKeyRole;
  /** owner GUID of our certificates */
  owner: string;
  /** time of the authenticated writes; fixed so the files are reproducible */
  timestamp: Date;
  /** further certificates (e.g. the well-known Microsoft ones) appended to KEK and db; PK is never extended */
  extraKek?: SignatureEntry[];
  extraDb?: SignatureEntry[];
}

export interface EnrollmentFiles {
  PK: Buffer;
  KEK: Buffer;
  db: Buffer;
}

/** PK.auth (self-signed by PK), KEK.auth (signed by PK), db.auth (signed by KEK), as loader/keys/auto expects. */
export async function enrollmentAuthFiles(opts: EnrollmentOptions): Promise<EnrollmentFiles> {
  const own = (role: EnrollmentKeyRole): SignatureEntry => ({ certificate: role.certificate ?? role.certificates[0], owner: opts.owner });
  const pkList = x509SignatureLists([own(opts.pk)]);
  const kekList = x509SignatureLists([own(opts.kek), ...(opts.extraKek ?? [])]);
  const dbList = x509SignatureLists([own(opts.db), ...(opts.extraDb ?? [])]);
  return {
    PK: await authenticatedVariable('PK', pkList, opts.timestamp, opts.pk),
    KEK: await authenticatedVariable('KEK', kekList, opts.timestamp, opts.pk),
    db: await authenticatedVariable('db', dbList, opts.timestamp, opts.kek),
  };
}

/** notBefore of a certificate: a reproducible enrollment timestamp that moves forward when keys are rotated. */
export function certificateNotBefore(cert: Buffer | string): Date {
  const der = certificateDer(cert);
  return forge.pki.certificateFromAsn1(forge.asn1.fromDer(der.toString('binary'))).validity.notBefore;
}
