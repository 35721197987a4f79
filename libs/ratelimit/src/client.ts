/**
 * Who a request comes from, for per-client limits: the peer address, or — only through proxies the operator trusts
 * (FACTORY_TRUST_PROXY) — the address they put in X-Forwarded-For; then grouped (an IPv6 /64 is one client).
 * Every service that limits clients uses this, so the gateway and the registry-proxy agree on who is who.
 */
import type { IncomingMessage } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { TrustProxy } from '@factory/config';

/** Named ranges of FACTORY_TRUST_PROXY (the names Express's `trust proxy` knows). */
const NAMED_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** An address without the IPv4-mapped IPv6 form and zone ID (`::ffff:1.2.3.4` → `1.2.3.4`). */
function plainAddress(address: string): string {
  const text = address.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  return mapped ? mapped[1] : text.replace(/%.*$/, '');
}

/** The trusted proxies of a subnet list, as a predicate. */
function trustedSet(entries: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries.flatMap((e) => NAMED_RANGES[e] ?? [e])) {
    const [addr, bits] = entry.split('/');
    const family = isIPv4(addr) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return (address) => (isIPv4(address) ? list.check(address, 'ipv4') : isIPv6(address) ? list.check(address, 'ipv6') : false);
}

/**
 * The client's address as Express's `trust proxy` would decide it: the peer unless it is trusted, then the next
 * X-Forwarded-For entry from the right, and so on (`true`: the leftmost entry; a number n: n hops from the peer).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trust: TrustProxy): string | undefined {
  if (trust === false || peer === undefined) return peer === undefined ? undefined : plainAddress(peer);
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? '');
  const hops = [peer, ...header.split(',').map((s) => s.trim()).filter(Boolean).reverse()].map(plainAddress);
  if (trust === true) return hops[hops.length - 1];
  if (typeof trust === 'number') return hops[Math.min(trust, hops.length - 1)];
  const trusted = trustedSet(trust);
  let i = 0;
  while (i < hops.length - 1 && trusted(hops[i])) i++;
  return hops[i];
}

/**
 * The limits key of an address: an IPv4 address, or the /64 of an IPv6 address (one subscriber usually holds a whole
 * /64, so per-address limits would be free to evade). IPv4-mapped IPv6 addresses count as IPv4.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const plain = plainAddress(address);
  if (isIPv4(plain)) return plain;
  if (!isIPv6(plain)) return 'unknown';
  return `${expandIPv6(plain).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lowercase hex without leading zeros. */
function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  // an embedded IPv4 tail (64:ff9b::1.2.3.4) is two groups
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

/** The limits key of a request's client (see clientAddress and clientKey). */
export function requestClient(req: Pick<IncomingMessage, 'socket' | 'headers'>, trust: TrustProxy): string {
  return clientKey(clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trust));
}

/**
 * A front proxy of the factory (the gateway forwarding `/v2`) tells the service behind it who the client is: the
 * client's key and, as proof, the secret both hold (FACTORY_HANDOFF_SECRET). Internal `x-factory-*` headers are
 * dropped at every edge, so a client cannot send these itself; a request without the proof is judged by its own
 * peer address.
 */
export const CLIENT_HEADER = 'x-factory-client';
export const CLIENT_PROOF_HEADER = 'x-factory-client-proof';

/** The client key of a request forwarded by a front proxy holding `secret`, else of the request itself. */
export function forwardedClient(req: Pick<IncomingMessage, 'socket' | 'headers'>, trust: TrustProxy, secret: string | undefined): string {
  const key = req.headers[CLIENT_HEADER];
  const proof = req.headers[CLIENT_PROOF_HEADER];
  if (secret && typeof key === 'string' && key && typeof proof === 'string' && sameSecret(proof, secret)) return key;
  return requestClient(req, trust);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
