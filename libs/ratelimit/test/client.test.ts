/** Who a client is: the peer or a trusted proxy's X-Forwarded-For entry, grouped (IPv6 by /64). */
import { CLIENT_HEADER, CLIENT_PROOF_HEADER, clientAddress, clientKey, forwardedClient, requestClient } from '../src';

describe('clientKey', () => {
  test('IPv4 as is, IPv4-mapped IPv6 as IPv4', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(clientKey('::FFFF:10.1.2.3')).toBe('10.1.2.3');
  });

  test('IPv6 grouped by /64, whatever the spelling', () => {
    const key = '2001:db8:1:2::/64';
    expect(clientKey('2001:db8:1:2::1')).toBe(key);
    expect(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe(key);
    expect(clientKey('2001:DB8:1:2:0:0:0:9')).toBe(key);
    expect(clientKey('2001:db8:1:3::1')).not.toBe(key);
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });

  test('no or malformed address: one shared "unknown" client', () => {
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('not an address')).toBe('unknown');
  });
});

describe('clientAddress (the rules of Express’s trust proxy)', () => {
  const xff = '198.51.100.9, 203.0.113.5, 10.0.0.2';
  test('untrusted: the peer, whatever X-Forwarded-For says', () => {
    expect(clientAddress('192.0.2.1', xff, false)).toBe('192.0.2.1');
    expect(clientAddress('::ffff:192.0.2.1', undefined, false)).toBe('192.0.2.1');
  });
  test('true: the leftmost entry; a hop count: that many proxies from the peer', () => {
    expect(clientAddress('10.0.0.1', xff, true)).toBe('198.51.100.9');
    expect(clientAddress('10.0.0.1', xff, 1)).toBe('10.0.0.2');
    expect(clientAddress('10.0.0.1', xff, 2)).toBe('203.0.113.5');
    expect(clientAddress('10.0.0.1', xff, 9)).toBe('198.51.100.9');
    expect(clientAddress('10.0.0.1', undefined, true)).toBe('10.0.0.1');
  });
  test('a subnet list: walk from the peer while the hop is a trusted proxy', () => {
    expect(clientAddress('10.0.0.1', xff, ['10.0.0.0/8'])).toBe('203.0.113.5');
    expect(clientAddress('127.0.0.1', '203.0.113.5', ['loopback'])).toBe('203.0.113.5');
    expect(clientAddress('::1', '2001:db8::1', ['loopback'])).toBe('2001:db8::1');
    expect(clientAddress('192.0.2.1', xff, ['10.0.0.0/8'])).toBe('192.0.2.1');
    // an entry a client wrote itself left of the proxy's is not believed
    expect(clientAddress('10.0.0.1', '6.6.6.6, 203.0.113.5', ['uniquelocal'])).toBe('203.0.113.5');
  });
  test('requestClient: the key of a request', () => {
    const req = { socket: { remoteAddress: '127.0.0.1' }, headers: { 'x-forwarded-for': '2001:db8:1:2::7' } } as never;
    expect(requestClient(req, false)).toBe('127.0.0.1');
    expect(requestClient(req, ['loopback'])).toBe('2001:db8:1:2::/64');
  });
});

describe('forwardedClient: the client a front proxy names, only with the proof', () => {
  const secret = 's'.repeat(32);
  const from = (headers: Record<string, string>) => ({ socket: { remoteAddress: '127.0.0.1' }, headers }) as never;
  test('named with the right proof: that client', () => {
    expect(forwardedClient(from({ [CLIENT_HEADER]: '192.0.2.7', [CLIENT_PROOF_HEADER]: secret }), false, secret)).toBe('192.0.2.7');
  });
  test('a wrong or missing proof, or no secret configured: the request’s own client', () => {
    expect(forwardedClient(from({ [CLIENT_HEADER]: '192.0.2.7', [CLIENT_PROOF_HEADER]: 't'.repeat(32) }), false, secret)).toBe('127.0.0.1');
    expect(forwardedClient(from({ [CLIENT_HEADER]: '192.0.2.7', [CLIENT_PROOF_HEADER]: 'short' }), false, secret)).toBe('127.0.0.1');
    expect(forwardedClient(from({ [CLIENT_HEADER]: '192.0.2.7' }), false, secret)).toBe('127.0.0.1');
    expect(forwardedClient(from({ [CLIENT_HEADER]: '192.0.2.7', [CLIENT_PROOF_HEADER]: secret }), false, undefined)).toBe('127.0.0.1');
  });
});
