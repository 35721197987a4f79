/** Header handling shared by the factory's reverse proxies in front of and behind the `/v2` API. */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1): a proxy never forwards them, in either direction. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

/**
 * Headers the factory's services use between themselves (the blob hand-off, router.ts): never accepted from a
 * client nor sent to one, whatever their value — every edge drops them.
 */
export function isInternalHeader(name: string): boolean {
  return name.toLowerCase().startsWith('x-factory-');
}

/** The end-to-end headers of a request or response, without internal headers and without `drop` (lower-case names). */
export function endToEndHeaders(headers: IncomingHttpHeaders, drop: readonly string[] = []): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !isInternalHeader(name) && !drop.includes(name)) out[name] = value;
  }
  return out;
}
