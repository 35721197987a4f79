/**
 * The webhook signature: `X-Factory-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, over the exact bytes sent.
 * A receiver recomputes it over the body it read (before parsing) and compares in constant time (verifyWebhookSignature
 * is that check, for receivers written in TypeScript and for the tests).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Factory-Signature';

export function webhookSignature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** True when `header` is the signature of `body` under `secret`; any other value (absent, malformed) is false. */
export function verifyWebhookSignature(secret: string, body: string | Buffer, header: string | undefined): boolean {
  if (typeof header !== 'string' || !/^sha256=[0-9a-f]{64}$/.test(header)) return false;
  const expected = Buffer.from(webhookSignature(secret, body));
  return timingSafeEqual(expected, Buffer.from(header));
}
