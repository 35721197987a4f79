/**
 * The SSRF guard of webhooks: the factory POSTs to URLs its clients chose, from inside the cluster, so a hook must not
 * reach loopback, private, link-local (cloud metadata at 169.254.169.254), shared (CGNAT), multicast or reserved
 * addresses unless FACTORY_WEBHOOK_ALLOW_PRIVATE says so. Checked at registration (400) and again on every delivery
 * against the address actually connected to (a name may resolve elsewhere later: DNS rebinding).
 */
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['64:ff9b::', 96], // NAT64 (reaches IPv4 addresses through a translator)
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** IPv4 written inside IPv6 (`::ffff:10.0.0.1`, `::10.0.0.1`): judged as the IPv4 address it carries. */
function embeddedIpv4(address: string): string | undefined {
  const m = /^::(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return m[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return undefined;
}

/** True for an address a webhook may not reach without FACTORY_WEBHOOK_ALLOW_PRIVATE (not an IP address: true). */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return blocked.check(bare, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    return v4 !== undefined ? blocked.check(v4, 'ipv4') : blocked.check(bare, 'ipv6');
  }
  return true;
}

export type Resolve = (host: string) => Promise<string[]>;

/**
 * Why a webhook URL may not be registered (undefined: it may). A host name is resolved and every address it has must
 * be public; `localhost` and names that do not resolve are refused.
 */
export async function webhookTargetProblem(rawUrl: string, allowPrivate: boolean, resolve: Resolve): Promise<string | undefined> {
  const url = new URL(rawUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'webhook URL must be http or https';
  if (allowPrivate) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return isPrivateAddress(host) ? `webhook URL targets a private or loopback address (${host})` : undefined;
  if (/(^|\.)localhost\.?$/i.test(host)) return `webhook URL targets a private or loopback address (${host})`;
  let addresses: string[];
  try {
    addresses = await resolve(host);
  } catch {
    return `webhook URL host ${JSON.stringify(host)} does not resolve`;
  }
  if (addresses.length === 0) return `webhook URL host ${JSON.stringify(host)} does not resolve`;
  const inside = addresses.find(isPrivateAddress);
  return inside ? `webhook URL host ${JSON.stringify(host)} resolves to a private or loopback address (${inside})` : undefined;
}
