/**
 * Small layer over node-forge's ASN.1 encoder: Buffers in and out (forge works on binary strings), DER SET OF
 * ordering (forge writes SET members in the order given), and certificates embedded byte for byte.
 */
import forge from 'node-forge';

export type Asn1 = forge.asn1.Asn1;

const { asn1 } = forge;
const T = asn1.Type;
const C = asn1.Class;

export function toDer(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

/** Parse DER without interpreting BIT STRING contents, so that re-encoding reproduces the input exactly. */
export function fromDer(der: Buffer): Asn1 {
  // forge accepts an options object here; its type declarations only know the older boolean `strict`
  const options = { strict: true, parseAllBytes: true, decodeBitStrings: false } as unknown as boolean;
  return asn1.fromDer(forge.util.createBuffer(der.toString('binary')), options);
}

export function oid(dotted: string): Asn1 {
  return asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(dotted).getBytes());
}

export function seq(...items: Asn1[]): Asn1 {
  return asn1.create(C.UNIVERSAL, T.SEQUENCE, true, items);
}

/** SET OF in DER order: members sorted by their encodings (X.690 11.6). */
export function setOf(...items: Asn1[]): Asn1 {
  const sorted = items.map((node) => ({ node, der: toDer(node) })).sort((a, b) => Buffer.compare(a.der, b.der));
  return asn1.create(C.UNIVERSAL, T.SET, true, sorted.map((s) => s.node));
}

export function nullValue(): Asn1 {
  return asn1.create(C.UNIVERSAL, T.NULL, false, '');
}

export function octets(bytes: Buffer): Asn1 {
  return asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, bytes.toString('binary'));
}

/** A small non-negative INTEGER (versions, RC2 key sizes), minimally encoded. */
export function smallInt(n: number): Asn1 {
  return asn1.create(C.UNIVERSAL, T.INTEGER, false, asn1.integerToDer(n).getBytes());
}

export function utcTime(date: Date): Asn1 {
  return asn1.create(C.UNIVERSAL, T.UTCTIME, false, asn1.dateToUtcTime(date));
}

/** [n] EXPLICIT (constructed context tag around one value) */
export function explicit(tag: number, inner: Asn1): Asn1 {
  return asn1.create(C.CONTEXT_SPECIFIC, tag, true, [inner]);
}

/** [n] IMPLICIT over a constructed SET/SEQUENCE OF: the members under a context tag. */
export function implicitConstructed(tag: number, members: Asn1[]): Asn1 {
  return asn1.create(C.CONTEXT_SPECIFIC, tag, true, members);
}

/** [n] IMPLICIT primitive with raw contents. */
export function implicitPrimitive(tag: number, contents: Buffer): Asn1 {
  return asn1.create(C.CONTEXT_SPECIFIC, tag, false, contents.toString('binary'));
}

export function bitString(contentsWithUnusedBitsByte: Buffer): Asn1 {
  return asn1.create(C.UNIVERSAL, T.BITSTRING, false, contentsWithUnusedBitsByte.toString('binary'));
}

/** Contents octets of a DER TLV (the value without tag and length): what Authenticode's messageDigest covers. */
export function derContents(der: Buffer): Buffer {
  let lengthOffset = 1;
  if ((der[0] & 0x1f) === 0x1f) throw new Error('DER: multi-byte tags are not used here');
  const first = der[lengthOffset];
  if (first < 0x80) return der.subarray(2, 2 + first);
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[lengthOffset + 1 + i];
  const start = lengthOffset + 1 + n;
  return der.subarray(start, start + len);
}

/** An X.509 certificate parsed just enough to name its signer: issuer Name and serialNumber, as encoded in it. */
export interface ParsedCertificate {
  der: Buffer;
  node: Asn1;
  issuer: Asn1;
  serialNumber: Asn1;
}

export function certificateDer(cert: Buffer | string): Buffer {
  if (Buffer.isBuffer(cert)) return cert;
  const msg = forge.pem.decode(cert).find((m) => m.type === 'CERTIFICATE');
  if (!msg) throw new Error('certificate: no PEM CERTIFICATE block');
  return Buffer.from(msg.body, 'binary');
}

/** Every CERTIFICATE block of a PEM bundle, in order. */
export function certificatesFromPem(pem: string): Buffer[] {
  if (!pem.includes('-----BEGIN ')) return []; // forge throws on text without any PEM block
  return forge.pem
    .decode(pem)
    .filter((m) => m.type === 'CERTIFICATE')
    .map((m) => Buffer.from(m.body, 'binary'));
}

export function parseCertificate(cert: Buffer | string): ParsedCertificate {
  const der = certificateDer(cert);
  const node = fromDer(der);
  if (!toDer(node).equals(der)) throw new Error('certificate: not DER (re-encoding differs)');
  const tbs = (node.value as Asn1[])[0];
  const fields = tbs.value as Asn1[];
  // tbsCertificate starts with an optional [0] EXPLICIT version
  const hasVersion = fields[0].tagClass === C.CONTEXT_SPECIFIC && fields[0].type === 0;
  const at = hasVersion ? 1 : 0;
  return { der, node, serialNumber: fields[at], issuer: fields[at + 2] };
}
