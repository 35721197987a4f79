/**
 * One webhook delivery attempt, and what its outcome means for the retries.
 *
 * Outcome rules (documented in the README):
 * - 2xx: delivered.
 * - 408, 425, 429 and every 5xx, timeouts, refused or reset connections, DNS failures: transient, retried from the
 *   `notify` queue with exponential backoff (FACTORY_WEBHOOK_RETRY_DELAY, doubling; 6 attempts in all).
 * - any other 4xx: permanent — the receiver understood and refused these bytes; the same bytes would be refused again.
 * - 1xx/3xx: permanent — redirects are not followed (a redirect could lead the factory to a private address), so the
 *   receiver's configuration is wrong, which retries do not fix.
 * - a target that resolves to a private address (SSRF guard, when not allowed): permanent.
 * The response body is never needed: at most MAX_RESPONSE_BYTES of it are read (for the log's error text), the rest
 * is discarded by closing the connection.
 */
import http from 'node:http';
import https from 'node:https';
import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isPrivateAddress } from './ssrf';
import { SIGNATURE_HEADER, webhookSignature } from './signature';

export const WEBHOOK_ATTEMPTS = 6;
/** The longest wait between two attempts, whatever the base delay. */
export const MAX_RETRY_DELAY_MS = 60 * 60_000;
const MAX_RESPONSE_BYTES = 1024;

/** Delay before attempt `attemptsMade + 1` (attemptsMade ≥ 1 failed attempts so far): base, 2×, 4×, … capped. */
export function webhookRetryDelayMs(attemptsMade: number, baseMs: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, Math.round(baseMs * 2 ** Math.max(0, attemptsMade - 1)));
}

export type AttemptVerdict = 'delivered' | 'retry' | 'permanent';

/** The verdict on an HTTP status answered by the receiver. */
export function verdictOfStatus(status: number): AttemptVerdict {
  if (status >= 200 && status < 300) return 'delivered';
  if (status >= 500 || status === 408 || status === 425 || status === 429) return 'retry';
  return 'permanent';
}

export interface AttemptResult {
  verdict: AttemptVerdict;
  /** the receiver's HTTP status (absent when none was received) */
  status?: number;
  /** why it was not delivered (absent when delivered) */
  error?: string;
}

export interface DeliveryRequest {
  url: string;
  secret: string;
  event: string;
  deliveryId: string;
  body: string;
}

/** A DNS lookup that refuses private addresses: the guard applies to the address connected to, after resolution. */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const usable = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (usable.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves to a private or loopback address`), { code: 'EPRIVATETARGET' });
        return callback(refused, '', 0);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      callback(null, usable[0].address, usable[0].family);
    });
  };
}

/** POSTs one signed delivery; never throws (every outcome is an AttemptResult). */
export function attemptDelivery(req: DeliveryRequest, o: { timeoutMs: number; allowPrivate: boolean; userAgent: string }): Promise<AttemptResult> {
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (r: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const url = new URL(req.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // An address literal never goes through the lookup: judge it here.
    if (!o.allowPrivate && /^[\d.]+$|:/.test(host) && isPrivateAddress(host)) {
      done({ verdict: 'permanent', error: `target ${host} is a private or loopback address` });
      return;
    }
    const body = Buffer.from(req.body, 'utf8');
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, {
      method: 'POST',
      agent: false,
      lookup: guardedLookup(o.allowPrivate),
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': body.length,
        'User-Agent': o.userAgent,
        'X-Factory-Event': req.event,
        'X-Factory-Delivery': req.deliveryId,
        [SIGNATURE_HEADER]: webhookSignature(req.secret, body),
      },
    });
    timer = setTimeout(() => {
      request.destroy(new Error(`no answer within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    request.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const verdict = verdictOfStatus(status);
      if (verdict === 'delivered') {
        res.destroy();
        done({ verdict, status });
        return;
      }
      // a little of the body says why (bounded; the rest is never read)
      let text = '';
      const finish = () => {
        res.destroy();
        done({ verdict, status, error: `HTTP ${status}${text.trim() ? `: ${text.trim().replace(/\s+/g, ' ').slice(0, 200)}` : ''}` });
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.length >= MAX_RESPONSE_BYTES) finish();
      });
      res.on('end', finish);
      res.on('error', finish);
    });
    request.on('error', (err: NodeJS.ErrnoException) => {
      const permanent = err.code === 'EPRIVATETARGET';
      done({ verdict: permanent ? 'permanent' : 'retry', error: err.message || String(err.code) });
    });
    request.end(body);
  });
}
