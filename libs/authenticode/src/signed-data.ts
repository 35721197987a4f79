/**
 * PKCS#7 SignedData (RFC 2315) for the two uses Secure Boot has: Authenticode signatures of PE images (content =
 * SpcIndirectDataContent, signed attributes) and the detached signatures of authenticated UEFI variable writes
 * (content type data, no attributes, as efitools' sign-efi-sig-list makes them). node-forge's pkcs7 module cannot
 * carry SpcIndirectDataContent, so the structure is built here with its ASN.1 encoder. The private key never comes
 * here: a `SignTbs` callback returns the RSA PKCS#1 v1.5 SHA-256 signature of the bytes it is given.
 */
import { createHash } from 'node:crypto';
import {
  Asn1,
  bitString,
  derContents,
  explicit,
  implicitConstructed,
  implicitPrimitive,
  nullValue,
  octets,
  oid,
  parseCertificate,
  seq,
  setOf,
  smallInt,
  toDer,
  utcTime,
} from './der';

/** RSA PKCS#1 v1.5 signature with SHA-256 over `tbs` (the callback hashes). */
export type SignTbs = (tbs: Buffer) => Promise<Buffer>;

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  smimeCapabilities: '1.2.840.113549.1.9.15',
  spcIndirectData: '1.3.6.1.4.1.311.2.1.4',
  spcPeImageData: '1.3.6.1.4.1.311.2.1.15',
  spcSpOpusInfo: '1.3.6.1.4.1.311.2.1.12',
} as const;

function sha256AlgorithmIdentifier(): Asn1 {
  return seq(oid(OID.sha256), nullValue());
}

function attribute(type: string, value: Asn1): Asn1 {
  return seq(oid(type), setOf(value));
}

/** The S/MIME capabilities list OpenSSL's PKCS7_sign adds by default (so that sbsign's output can be reproduced). */
function opensslSmimeCapabilities(): Asn1 {
  const cap = (o: string, keyBits?: number) => (keyBits === undefined ? seq(oid(o)) : seq(oid(o), smallInt(keyBits)));
  const rc2 = '1.2.840.113549.3.2';
  return seq(
    cap('2.16.840.1.101.3.4.1.42'), // aes-256-cbc
    cap('2.16.840.1.101.3.4.1.22'), // aes-192-cbc
    cap('2.16.840.1.101.3.4.1.2'), // aes-128-cbc
    cap('1.2.840.113549.3.7'), // des-ede3-cbc
    cap(rc2, 128),
    cap(rc2, 64),
    cap('1.3.14.3.2.7'), // des-cbc
    cap(rc2, 40),
  );
}

interface SignedDataParts {
  /** eContentType */
  contentType: string;
  /** eContent (omitted = detached) */
  content?: Asn1;
  /** signer certificate first, then the rest of the chain */
  certificates: Array<Buffer | string>;
  /** authenticated attributes; when absent the signature covers `detachedData` directly */
  signedAttributes?: Asn1[];
  /** what the signature covers when there are no signed attributes */
  detachedData?: Buffer;
  sign: SignTbs;
}

/** SignedData (version 1, one SHA-256/RSA signer identified by issuer and serial number). */
async function signedData(parts: SignedDataParts): Promise<Asn1> {
  if (parts.certificates.length === 0) throw new Error('SignedData: the signer certificate is required');
  const certs = parts.certificates.map((c) => parseCertificate(c));
  const signer = certs[0];
  let tbs: Buffer;
  let authenticatedAttributes: Asn1 | undefined;
  if (parts.signedAttributes) {
    const attrs = setOf(...parts.signedAttributes);
    // the signature covers the attributes' DER as a SET; in SignerInfo they appear as [0] IMPLICIT
    tbs = toDer(attrs);
    authenticatedAttributes = implicitConstructed(0, attrs.value as Asn1[]);
  } else {
    if (!parts.detachedData) throw new Error('SignedData: nothing to sign');
    tbs = parts.detachedData;
  }
  const signature = await parts.sign(tbs);
  const signerInfoFields: Asn1[] = [
    smallInt(1),
    seq(signer.issuer, signer.serialNumber),
    sha256AlgorithmIdentifier(),
  ];
  if (authenticatedAttributes) signerInfoFields.push(authenticatedAttributes);
  signerInfoFields.push(seq(oid(OID.rsaEncryption), nullValue()), octets(signature));
  const contentInfo = parts.content ? seq(oid(parts.contentType), explicit(0, parts.content)) : seq(oid(parts.contentType));
  return seq(
    smallInt(1),
    setOf(sha256AlgorithmIdentifier()),
    contentInfo,
    // [0] IMPLICIT certificates, kept in the order given (signer first), as OpenSSL writes them
    implicitConstructed(0, certs.map((c) => c.node)),
    setOf(seq(...signerInfoFields)),
  );
}

export interface AuthenticodeSignOptions {
  /** SHA-256 Authenticode image digest (see authenticodeDigest) */
  sha256: Buffer;
  certificates: Array<Buffer | string>;
  sign: SignTbs;
  /** add an (empty) SpcSpOpusInfo attribute, as signtool does */
  opusInfo?: boolean;
  /**
   * Add the attributes OpenSSL's PKCS7_sign adds (signingTime, S/MIME capabilities), as sbsign's output carries
   * them. Only for golden comparisons with sbsign: the default signature has no time in it, so signing is
   * deterministic.
   */
  opensslAttributes?: { signingTime: Date };
}

/**
 * SpcIndirectDataContent for a PE image: SpcPeImageData with no flags and the "<<<Obsolete>>>" file link (what
 * signtool, sbsign and osslsigncode write), and the image digest as a DigestInfo.
 */
export function spcIndirectDataContent(sha256: Buffer): Asn1 {
  if (sha256.length !== 32) throw new Error(`Authenticode: SHA-256 digest must be 32 bytes, got ${sha256.length}`);
  const obsolete = Buffer.from('<<<Obsolete>>>', 'utf16le').swap16(); // BMPString is big-endian UTF-16
  const spcPeImageData = seq(
    bitString(Buffer.from([0])), // SpcPeImageFlags: empty
    explicit(0, explicit(2, implicitPrimitive(0, obsolete))), // file: SpcLink.file [2] -> SpcString.unicode [0]
  );
  return seq(seq(oid(OID.spcPeImageData), spcPeImageData), seq(sha256AlgorithmIdentifier(), octets(sha256)));
}

/** Authenticode signature of a PE image: ContentInfo(SignedData) DER, what goes into a WIN_CERTIFICATE. */
export async function authenticodeSignedData(opts: AuthenticodeSignOptions): Promise<Buffer> {
  const content = spcIndirectDataContent(opts.sha256);
  // Authenticode quirk: messageDigest covers the content's value without its SEQUENCE tag and length
  const messageDigest = createHash('sha256').update(derContents(toDer(content))).digest();
  const attrs: Asn1[] = [attribute(OID.contentType, oid(OID.spcIndirectData)), attribute(OID.messageDigest, octets(messageDigest))];
  if (opts.opusInfo) attrs.push(attribute(OID.spcSpOpusInfo, seq()));
  if (opts.opensslAttributes) {
    attrs.push(attribute(OID.signingTime, utcTime(opts.opensslAttributes.signingTime)));
    attrs.push(attribute(OID.smimeCapabilities, opensslSmimeCapabilities()));
  }
  const sd = await signedData({
    contentType: OID.spcIndirectData,
    content,
    certificates: opts.certificates,
    signedAttributes: attrs,
    sign: opts.sign,
  });
  return toDer(seq(oid(OID.signedData), explicit(0, sd)));
}

/**
 * Detached SignedData over `data` without attributes, bare (not wrapped in a ContentInfo): the CertData of a
 * WIN_CERTIFICATE_UEFI_GUID in EFI_VARIABLE_AUTHENTICATION_2, byte for byte as sign-efi-sig-list writes it.
 */
export async function detachedVariableSignedData(data: Buffer, certificates: Array<Buffer | string>, sign: SignTbs): Promise<Buffer> {
  return toDer(await signedData({ contentType: OID.data, certificates, detachedData: data, sign }));
}
