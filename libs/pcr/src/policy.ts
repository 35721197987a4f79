/**
 * The TPM2 policy a `.pcrsig` signs: the digest a PolicyPCR assertion leaves in a policy session, as
 * `systemd-measure sign` computes it (always a SHA-256 session, whatever the PCR bank).
 */
import { createHash } from 'node:crypto';
import { PcrBank, UKI_PCR } from './measure';

/** TPM_CC_PolicyPCR (TPM 2.0 Part 2, 6.5.2). */
const TPM_CC_POLICY_PCR = 0x0000017f;
/** TPM_ALG_ID of each bank (TPM 2.0 Part 2, 6.3). */
const TPM_ALG: Record<PcrBank, number> = { sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };
/** PCR_SELECT_MIN: a selection bitmap of 3 bytes covers PCRs 0-23. */
const PCR_SELECT_BYTES = 3;

/** A marshalled TPML_PCR_SELECTION naming one PCR of one bank. */
export function pcrSelection(bank: PcrBank, pcr: number = UKI_PCR): Buffer {
  const out = Buffer.alloc(4 + 2 + 1 + PCR_SELECT_BYTES);
  out.writeUInt32BE(1, 0); // count
  out.writeUInt16BE(TPM_ALG[bank], 4); // hash
  out.writeUInt8(PCR_SELECT_BYTES, 6); // sizeofSelect
  out[7 + (pcr >> 3)] |= 1 << (pcr & 7);
  return out;
}

/**
 * policyDigest' = SHA-256(policyDigest || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || pcrDigest), from an all-zero
 * policy, with pcrDigest = SHA-256 of the selected PCR value (the session's hash over the concatenated PCR values).
 */
export function policyPcrDigest(bank: PcrBank, pcrValue: Buffer, pcr: number = UKI_PCR): Buffer {
  const cc = Buffer.alloc(4);
  cc.writeUInt32BE(TPM_CC_POLICY_PCR, 0);
  const pcrDigest = createHash('sha256').update(pcrValue).digest();
  return createHash('sha256').update(Buffer.alloc(32)).update(cc).update(pcrSelection(bank, pcr)).update(pcrDigest).digest();
}
