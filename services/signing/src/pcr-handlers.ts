/**
 * The Secure Boot jobs this service answers from the keys `secureboot-keys.ts` loads: the public material, and PCR
 * policy signatures. A PCR policy is signed only for sections the stub really measures, over values recomputed here,
 * and only when the UKI carries this factory's own PCR public key: a `.pcrsig` never names a key its UKI does not hold.
 */
import { createPrivateKey, KeyObject, sign } from 'node:crypto';
import { badRequest } from '@factory/errors';
import { digestSection, measurementOrder, pcrSignatureJson, PCR_BANKS, SectionDigest, signPcrPolicy } from '@factory/pcr';
import type { PayloadOf, ResultOf } from '@factory/queue';
import type { SigningMetrics } from './handlers';
import type { SecureBootKeys } from './secureboot-keys';

type SecureBootKeyJob = 'signing.secureBootPublic' | 'signing.pcrPolicy';
export type SecureBootKeyHandlers = { [K in SecureBootKeyJob]: (payload: PayloadOf<K>) => Promise<ResultOf<K>> };

export interface SecureBootKeyHandlerDeps {
  /** the loaded Secure Boot keys; undefined when Secure Boot is off */
  keys: SecureBootKeys | undefined;
  metrics: SigningMetrics;
}

export function secureBootKeyHandlers({ keys, metrics }: SecureBootKeyHandlerDeps): SecureBootKeyHandlers {
  let pcrKey: KeyObject | undefined;
  let ownPcrPublicKey: Promise<SectionDigest> | undefined;
  return {
    'signing.secureBootPublic': async () =>
      keys
        ? {
            enabled: true,
            signingCertPem: keys.signing.certPem,
            pcrPublicKeyPem: keys.pcr.publicPem,
            ...(keys.pk ? { pkCertPem: keys.pk.certPem } : {}),
            ...(keys.kek ? { kekCertPem: keys.kek.certPem } : {}),
          }
        : { enabled: false },
    'signing.pcrPolicy': async ({ sections }) => {
      if (!keys) throw badRequest('secure boot is disabled');
      const refuse = (why: string) => badRequest(`refusing to sign the PCR policy: ${why}`);
      if (!Array.isArray(sections)) throw refuse('no section digests were sent');
      let measured: SectionDigest[];
      try {
        measured = measurementOrder(sections);
      } catch (err) {
        throw refuse((err as Error).message);
      }
      if (!measured.some((s) => s.name === '.linux')) throw refuse('it has no .linux section');
      const pcrpkey = measured.find((s) => s.name === '.pcrpkey');
      ownPcrPublicKey ??= digestSection({ name: '.pcrpkey', content: keys.pcr.publicPem });
      const own = await ownPcrPublicKey;
      if (!pcrpkey || PCR_BANKS.some((bank) => pcrpkey.digests[bank] !== own.digests[bank])) throw refuse("its .pcrpkey section is not this factory's PCR public key");
      pcrKey ??= createPrivateKey(keys.pcr.keyPem);
      const key = pcrKey;
      const doc = await signPcrPolicy(measured, keys.pcr.publicPem, async (policy, bank) => sign(bank, policy, key));
      metrics.signed('pcr');
      return { pcrsig: pcrSignatureJson(doc) };
    },
  };
}
