/**
 * cosign "simple signing" for the demo releases.
 *
 * ECDSA P-256 / SHA-256 with deterministic nonces (RFC 6979), so the same key and payload always give the same
 * signature bytes and therefore the same `.sig` manifest digests. Node's crypto only does randomised ECDSA, so the
 * signing arithmetic is done here with BigInt; every signature is checked with node's crypto.verify before use.
 */
import { createHmac, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, verify, KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const A = P - 3n;
const GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n;
const GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n;

type Jac = [bigint, bigint, bigint]; // Jacobian X, Y, Z; Z = 0 is infinity

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function powmod(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

function inv(a: bigint, m: bigint): bigint {
  return powmod(a, m - 2n, m); // m is prime
}

function jDouble([x, y, z]: Jac): Jac {
  if (z === 0n || y === 0n) return [0n, 1n, 0n];
  const yy = (y * y) % P;
  const s = (4n * x * yy) % P;
  const zz = (z * z) % P;
  const m = mod(3n * x * x + A * zz * zz, P);
  const x3 = mod(m * m - 2n * s, P);
  const y3 = mod(m * (s - x3) - 8n * yy * yy, P);
  const z3 = (2n * y * z) % P;
  return [x3, y3, z3];
}

function jAdd(p: Jac, q: Jac): Jac {
  if (p[2] === 0n) return q;
  if (q[2] === 0n) return p;
  const z1z1 = (p[2] * p[2]) % P;
  const z2z2 = (q[2] * q[2]) % P;
  const u1 = (p[0] * z2z2) % P;
  const u2 = (q[0] * z1z1) % P;
  const s1 = (p[1] * q[2] * z2z2) % P;
  const s2 = (q[1] * p[2] * z1z1) % P;
  if (u1 === u2) return s1 === s2 ? jDouble(p) : [0n, 1n, 0n];
  const h = mod(u2 - u1, P);
  const r = mod(s2 - s1, P);
  const hh = (h * h) % P;
  const hhh = (h * hh) % P;
  const v = (u1 * hh) % P;
  const x3 = mod(r * r - hhh - 2n * v, P);
  const y3 = mod(r * (v - x3) - s1 * hhh, P);
  const z3 = (p[2] * q[2] * h) % P;
  return [x3, y3, z3];
}

function scalarMultG(k: bigint): { x: bigint; y: bigint } {
  let r: Jac = [0n, 1n, 0n];
  const g: Jac = [GX, GY, 1n];
  for (let i = 255; i >= 0; i--) {
    r = jDouble(r);
    if ((k >> BigInt(i)) & 1n) r = jAdd(r, g);
  }
  const zi = inv(r[2], P);
  const zi2 = (zi * zi) % P;
  return { x: (r[0] * zi2) % P, y: (r[1] * zi2 * zi) % P };
}

function toBytes32(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(64, '0'), 'hex');
}

function fromBytes(b: Buffer): bigint {
  return b.length ? BigInt('0x' + b.toString('hex')) : 0n;
}

function derInt(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let b = Buffer.from(hex, 'hex');
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return Buffer.concat([Buffer.from([0x02, b.length]), b]);
}

/** Deterministic ECDSA P-256 signature (RFC 6979, SHA-256) as raw r, s. */
export function signP256Deterministic(privateScalar: bigint, message: Buffer): { r: bigint; s: bigint } {
  const h1 = createHash('sha256').update(message).digest();
  const e = fromBytes(h1);
  const x = toBytes32(privateScalar);
  const h1o = toBytes32(mod(e, N));
  const hmac = (key: Buffer, ...parts: Buffer[]) => createHmac('sha256', key).update(Buffer.concat(parts)).digest();
  let v: Buffer = Buffer.alloc(32, 1);
  let k: Buffer = Buffer.alloc(32, 0);
  k = hmac(k, v, Buffer.from([0]), x, h1o);
  v = hmac(k, v);
  k = hmac(k, v, Buffer.from([1]), x, h1o);
  v = hmac(k, v);
  for (;;) {
    v = hmac(k, v);
    const kk = fromBytes(v);
    if (kk >= 1n && kk < N) {
      const r = mod(scalarMultG(kk).x, N);
      if (r !== 0n) {
        const s = mod(inv(kk, N) * (e + r * privateScalar), N);
        if (s !== 0n) return { r, s };
      }
    }
    k = hmac(k, v, Buffer.from([0]));
    v = hmac(k, v);
  }
}

export function derSignature(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInt(r), derInt(s)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PEM of the public key (SPKI, "PUBLIC KEY"). */
  publicPem: string;
  /** Private scalar d. */
  d: bigint;
}

export function loadSigningKey(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) throw new Error('cosign key must be an EC P-256 private key');
  const d = fromBytes(Buffer.from(jwk.d, 'base64url'));
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, d, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

/**
 * Load `<dir>/cosign.key` or generate a fresh P-256 key there (PEM "EC PRIVATE KEY", mode 0600) plus `cosign.pub`.
 */
export function ensureSigningKey(dir: string): SigningKey {
  const keyFile = path.join(dir, 'cosign.key');
  const pubFile = path.join(dir, 'cosign.pub');
  if (!fs.existsSync(keyFile)) {
    fs.mkdirSync(dir, { recursive: true });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    fs.writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'sec1' }), { mode: 0o600 });
  }
  fs.chmodSync(keyFile, 0o600);
  const key = loadSigningKey(fs.readFileSync(keyFile, 'utf8'));
  if (!fs.existsSync(pubFile) || fs.readFileSync(pubFile, 'utf8') !== key.publicPem) fs.writeFileSync(pubFile, key.publicPem);
  return key;
}

/** The simple-signing payload, byte-exact as cosign produces it (compact JSON, Go struct order). */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(
    `{"critical":{"identity":{"docker-reference":${JSON.stringify(dockerReference)}},"image":{"docker-manifest-digest":${JSON.stringify(manifestDigest)}},"type":"cosign container image signature"},"optional":null}`,
  );
}

/** Sign a payload: base64 of the DER ECDSA signature; verified with node's crypto before returning. */
export function signPayload(key: SigningKey, payload: Buffer): string {
  const { r, s } = signP256Deterministic(key.d, payload);
  const der = derSignature(r, s);
  if (!verify('sha256', payload, key.publicKey, der)) throw new Error('internal error: ECDSA signature does not verify');
  return der.toString('base64');
}

/** Verify a cosign simple-signing signature (used by tests and the self-check). */
export function verifyPayload(publicPem: string, payload: Buffer, signatureB64: string): boolean {
  return verify('sha256', payload, createPublicKey(publicPem), Buffer.from(signatureB64, 'base64'));
}

/** Tag under which cosign stores the signature of `digest` in the same repository. */
export function signatureTag(digest: string): string {
  return digest.replace(':', '-') + '.sig';
}
