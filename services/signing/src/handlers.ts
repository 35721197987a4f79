/**
 * The `signing.*` job handlers: public material and signatures for the keys this process holds. `main.ts` loads the
 * keys and wires these to the queue.
 */
import type { KeyObject } from 'node:crypto';
import { badRequest } from '@factory/errors';
import type { PayloadOf, ResultOf } from '@factory/queue';
import { Counter, Registry } from '@factory/telemetry';
import { signEcdsa } from './keys';

/** Largest payload the service signs (cosign signs small JSON payloads, never artifacts). */
export const MAX_SIGN_BYTES = 1024 * 1024;

export interface SigningMetrics {
  signed(key: string): void;
}

export interface SigningHandlerDeps {
  /** The cosign key pair (see `loadOrCreateEcKey`). */
  cosign: { privateKey: KeyObject; publicPem: string };
  metrics: SigningMetrics;
}

type SigningJob = 'signing.publicKey' | 'signing.sign';
/** Assignable to the queue's `Handlers`; the handlers do not use the BullMQ job, so tests call them with a payload only. */
export type SigningHandlers = { [K in SigningJob]: (payload: PayloadOf<K>) => Promise<ResultOf<K>> };

export function signingHandlers({ cosign, metrics }: SigningHandlerDeps): SigningHandlers {
  return {
    'signing.publicKey': async ({ key }) => {
      if (key !== 'cosign') throw badRequest(`unknown key ${JSON.stringify(key)}`);
      return { pem: cosign.publicPem };
    },
    'signing.sign': async ({ key, dataBase64 }) => {
      if (key !== 'cosign') throw badRequest(`unknown key ${JSON.stringify(key)}`);
      const data = Buffer.from(dataBase64, 'base64');
      if (data.length > MAX_SIGN_BYTES) throw badRequest('payload to sign is too large');
      metrics.signed(key);
      return { signatureBase64: signEcdsa(cosign.privateKey, data).toString('base64') };
    },
  };
}

/** The signing service's own metrics, registered on `registry`. */
export function registerSigningMetrics(registry: Registry): SigningMetrics {
  const signatures = new Counter({ name: 'factory_signatures_total', help: 'Signatures made', labelNames: ['key'], registers: [registry] });
  return { signed: (key) => signatures.inc({ key }) };
}
