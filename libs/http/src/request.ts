/**
 * One decision per request for a representation with known validators, taken once by whichever server holds the
 * representation (gateway asset streaming, registry blobs and manifests): preconditions first (RFC 9110 §13.2.2
 * steps 1–4: 412 / 304), then Range with If-Range (step 5). A front proxy that forwards the request (the gateway's
 * `/v2`) passes the fields through and does not decide again.
 */
import { ConditionalHeaders, evaluatePreconditions } from './conditional';
import { RangeDecision, rangeForRequest } from './range';
import type { RepresentationValidators } from './validators';

/** Request header fields as Node's IncomingHttpHeaders holds them (lower-case names). */
export type RequestHeaderFields = Record<string, string | string[] | undefined>;

export type RequestDecision =
  /** 304 Not Modified: no body; send the validators (ETag, Docker-Content-Digest, Cache-Control) a 200 would */
  | { kind: 'not-modified' }
  /** 412 Precondition Failed */
  | { kind: 'precondition-failed' }
  | RangeDecision;

/** A field Node may hand over as a list (repeated field lines): combined as one comma-separated value (§5.3). */
function field(headers: RequestHeaderFields, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function conditionalHeadersOf(headers: RequestHeaderFields): ConditionalHeaders {
  return {
    ifMatch: field(headers, 'if-match'),
    ifNoneMatch: field(headers, 'if-none-match'),
    ifModifiedSince: field(headers, 'if-modified-since'),
    ifUnmodifiedSince: field(headers, 'if-unmodified-since'),
  };
}

/** True when the request carries any precondition field (a cached answer that skips validators cannot serve it). */
export function hasPreconditions(headers: RequestHeaderFields): boolean {
  return Object.values(conditionalHeadersOf(headers)).some((v) => v !== undefined);
}

/**
 * The answer to a GET or HEAD of an existing representation. `size` undefined: the resource does not serve byte
 * ranges (manifests), so a passing request is always `full`.
 */
export function decideRequest(
  method: string,
  headers: RequestHeaderFields,
  representation: RepresentationValidators & { size?: number },
): RequestDecision {
  const outcome = evaluatePreconditions(method, conditionalHeadersOf(headers), representation);
  if (outcome !== 'proceed') return { kind: outcome };
  if (representation.size === undefined) return { kind: 'full' };
  return rangeForRequest({ range: field(headers, 'range'), ifRange: field(headers, 'if-range') }, { ...representation, size: representation.size });
}
