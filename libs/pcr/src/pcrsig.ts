/**
 * The `.pcrpkey` and `.pcrsig` sections of a signed UKI (talos-formats §6.3), byte for byte what
 * `systemd-measure sign` and Talos write: per bank, the PolicyPCR digest of PCR 11's value after the signed boot phase,
 * RSA PKCS#1 v1.5-signed with the bank's hash. The private key stays with the caller's `sign` callback (the signing
 * service); everything else is computed here.
 */
import { createHash, createPublicKey, KeyObject, verify } from 'node:crypto';
import { BootPhase, PCR_BANKS, PcrBank, pcr11Values, SectionDigest, SIGNED_PHASE, UKI_PCR } from './measure';
import { policyPcrDigest } from './policy';

/** One signed policy: the JSON object systemd reads (`pcrs`, `pkfp`, `pol`, `sig`, in that order). */
export interface PcrSignatureEntry {
  pcrs: number[];
  /** hex SHA-256 of the public key's PKCS#1 RSAPublicKey DER */
  pkfp: string;
  /** hex PolicyPCR digest */
  pol: string;
  /** base64 RSA PKCS#1 v1.5 signature over the policy digest, hashed with the bank's algorithm */
  sig: string;
}

export type PcrSignatureDocument = Partial<Record<PcrBank, PcrSignatureEntry[]>>;

/**
 * Signs one policy digest: RSA PKCS#1 v1.5 with the bank's hash over `policyDigest` (Node: `crypto.sign(bank,
 * policyDigest, rsaKey)`). Asynchronous because the key lives in another process.
 */
export type PcrPolicySigner = (policyDigest: Buffer, bank: PcrBank) => Promise<Buffer>;

export interface PcrPolicy {
  bank: PcrBank;
  phase: BootPhase;
  phasePath: string;
  /** PCR 11 after that phase */
  pcr: Buffer;
  /** the PolicyPCR digest that is signed */
  policy: Buffer;
}

/** The PCR 11 policy of every bank and boot phase (the ones `phases` names; by default the one Talos signs). */
export function pcrPolicies(sections: SectionDigest[], phases: readonly BootPhase[] = [SIGNED_PHASE]): PcrPolicy[] {
  const values = pcr11Values(sections);
  const out: PcrPolicy[] = [];
  for (const bank of PCR_BANKS) {
    for (const v of values[bank]) {
      if (phases.includes(v.phase)) out.push({ bank, phase: v.phase, phasePath: v.phasePath, pcr: v.pcr, policy: policyPcrDigest(bank, v.pcr) });
    }
  }
  return out;
}

function publicKeyOf(key: KeyObject | string | Buffer): KeyObject {
  const k = key instanceof KeyObject ? key : createPublicKey(key);
  const pub = k.type === 'private' ? createPublicKey(k) : k;
  if (pub.asymmetricKeyType !== 'rsa') throw new Error(`the PCR signing key must be an RSA key, not ${pub.asymmetricKeyType}`);
  return pub;
}

/** The `.pcrpkey` section: the PCR public key as a PEM `PUBLIC KEY` block (PKIX), from a private or public key. */
export function pcrPublicKeyPem(key: KeyObject | string | Buffer): string {
  return publicKeyOf(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** `pkfp`: hex SHA-256 of the RSA public key's PKCS#1 DER (what OpenSSL's i2d_PublicKey gives systemd). */
export function pcrPublicKeyFingerprint(key: KeyObject | string | Buffer): string {
  return createHash('sha256').update(publicKeyOf(key).export({ type: 'pkcs1', format: 'der' })).digest('hex');
}

/**
 * The `.pcrsig` document for the measured sections of one profile: one entry per bank for each phase in `phases`
 * (Talos: the value after `enter-machined` only). Every signature is checked against the public key before it is
 * returned, so a signer holding another key is caught here rather than at boot.
 */
export async function signPcrPolicy(
  sections: SectionDigest[],
  publicKey: KeyObject | string | Buffer,
  sign: PcrPolicySigner,
  phases: readonly BootPhase[] = [SIGNED_PHASE],
): Promise<PcrSignatureDocument> {
  const pub = publicKeyOf(publicKey);
  const pkfp = pcrPublicKeyFingerprint(pub);
  const doc: PcrSignatureDocument = {};
  for (const p of pcrPolicies(sections, phases)) {
    const sig = await sign(p.policy, p.bank);
    if (!verify(p.bank, p.policy, pub, sig)) throw new Error(`the ${p.bank} PCR policy signature does not verify with the PCR public key (fingerprint ${pkfp})`);
    (doc[p.bank] ??= []).push({ pcrs: [UKI_PCR], pkfp, pol: p.policy.toString('hex'), sig: sig.toString('base64') });
  }
  return doc;
}

/** The `.pcrsig` section's bytes: compact JSON, banks in SHA-256/384/512 order, keys in systemd's order. */
export function pcrSignatureJson(doc: PcrSignatureDocument): string {
  const ordered: Record<string, PcrSignatureEntry[]> = {};
  for (const bank of PCR_BANKS) {
    const entries = doc[bank];
    if (entries) ordered[bank] = entries.map((e) => ({ pcrs: [...e.pcrs], pkfp: e.pkfp, pol: e.pol, sig: e.sig }));
  }
  return JSON.stringify(ordered);
}

/** Checks every entry of a `.pcrsig` document against a PCR public key (e.g. a `.pcrpkey`). */
export function verifyPcrSignatureDocument(doc: PcrSignatureDocument, publicKey: KeyObject | string | Buffer): boolean {
  const pub = publicKeyOf(publicKey);
  const pkfp = pcrPublicKeyFingerprint(pub);
  return PCR_BANKS.every((bank) =>
    (doc[bank] ?? []).every((e) => e.pkfp === pkfp && verify(bank, Buffer.from(e.pol, 'hex'), pub, Buffer.from(e.sig, 'base64'))),
  );
}
