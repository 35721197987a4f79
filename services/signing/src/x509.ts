/**
 * Self-signed X.509 v3 certificates for the keys the signing service generates (Secure Boot signing, PK, KEK): the
 * little DER this needs, written out here rather than pulling a crypto library into the one process that holds keys.
 * Node verifies and parses the result (X509Certificate); the tests also check it with `openssl x509`.
 */
import { createHash, createPublicKey, KeyObject, randomBytes, sign } from 'node:crypto';

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.of(n);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.of(tag), len, content]);
}

const seq = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Buffer) => der(0xa0 | n, inner);
const octets = (b: Buffer) => der(0x04, b);
const bits = (b: Buffer, unused = 0) => der(0x03, Buffer.concat([Buffer.of(unused), b]));
const bool = (v: boolean) => der(0x01, Buffer.of(v ? 0xff : 0));
const NULL = der(0x05, Buffer.alloc(0));

/** A non-negative INTEGER from big-endian bytes (minimal, with a leading zero when the top bit is set). */
function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return der(0x02, v[0] & 0x80 ? Buffer.concat([Buffer.of(0), v]) : v);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const groups: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      groups.unshift((v % 128) | (groups.length ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...groups);
  }
  return der(0x06, Buffer.from(out));
}

/** UTCTime until 2049, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDhhmmss
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(`${iso.slice(2)}Z`)) : der(0x18, Buffer.from(`${iso}Z`));
}

const OID = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  codeSigning: '1.3.6.1.5.5.7.3.3',
};

function name(subject: { commonName: string; organization?: string }): Buffer {
  const rdn = (type: string, value: string) => set(seq(oid(type), der(0x0c, Buffer.from(value, 'utf8'))));
  return seq(...(subject.organization ? [rdn(OID.organization, subject.organization)] : []), rdn(OID.commonName, subject.commonName));
}

const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

export interface SelfSignedOptions {
  commonName: string;
  organization?: string;
  /** validity, from now (back-dated by an hour for clocks a little behind) */
  validDays: number;
  /** adds the code-signing extended key usage (the UKI / sd-boot signing certificate) */
  codeSigning?: boolean;
  now?: Date;
}

/**
 * A self-signed CA certificate (PEM) for an RSA key: SHA-256 with RSA, random 128-bit serial, basicConstraints CA,
 * keyUsage digitalSignature + keyCertSign + cRLSign, subject and authority key identifiers.
 */
export function selfSignedCertificate(key: KeyObject, o: SelfSignedOptions): string {
  if (key.asymmetricKeyType !== 'rsa' || key.type !== 'private') throw new Error('a self-signed certificate needs an RSA private key');
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  // RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's value, here the PKCS#1 RSAPublicKey.
  const keyId = createHash('sha1').update(createPublicKey(key).export({ type: 'pkcs1', format: 'der' })).digest();
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x40;
  const now = o.now ?? new Date();
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3_600_000);
  const notAfter = new Date(notBefore.getTime() + o.validDays * 86_400_000);
  const sigAlg = seq(oid(OID.sha256WithRSA), NULL);
  const subject = name(o);
  // keyUsage bits: digitalSignature(0), keyCertSign(5), cRLSign(6) → 1000 0110, one unused trailing bit.
  const extensions = [
    extension(OID.basicConstraints, true, seq(bool(true))),
    extension(OID.keyUsage, true, bits(Buffer.of(0x86), 1)),
    ...(o.codeSigning ? [extension(OID.extKeyUsage, false, seq(oid(OID.codeSigning)))] : []),
    extension(OID.subjectKeyId, false, octets(keyId)),
    extension(OID.authorityKeyId, false, seq(der(0x80, keyId))),
  ];
  const tbs = seq(explicit(0, uint(Buffer.of(2))), uint(serial), sigAlg, subject, seq(time(notBefore), time(notAfter)), subject, spki, explicit(3, seq(...extensions)));
  const cert = seq(tbs, sigAlg, bits(sign('sha256', tbs, key)));
  const b64 = cert.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}
