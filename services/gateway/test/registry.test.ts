/**
 * The gateway's `/v2` forwarding against a stand-in registry-proxy: internal `X-Factory-*` headers are dropped in both
 * directions, the hand-off secret is the gateway's own, and a hand-off is streamed with the registry-proxy's status,
 * headers and span (conditionals and ranges are not decided a second time here).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ObjectStore } from '@factory/storage';
import { createLogger } from '@factory/telemetry';
import { createRegistryProxy } from '../src/registry';

const SECRET = 's'.repeat(40);
const OBJECT = Buffer.from('0123456789');
let seen: http.IncomingHttpHeaders[] = [];
let registry: http.Server;
let gateway: http.Server;
let url: string;

const listen = async (srv: http.Server) => {
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  // answers like the registry router: a hand-off when the secret is there, a body with a stray internal header otherwise
  registry = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/v2/handoff' && req.headers['x-factory-handoff'] === SECRET) {
      res.writeHead(206, { 'Content-Range': 'bytes 2-5/10', ETag: '"e"', 'X-Factory-Object': 'obj', 'X-Factory-Length': '4', 'X-Factory-Range': '2-5', 'Content-Length': '0' });
      res.end();
      return;
    }
    if (req.url === '/v2/not-modified') {
      res.writeHead(304, { ETag: '"e"' });
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Factory-Debug': 'internal' });
    res.end('relayed');
  });
  const target = await listen(registry);
  const store = {
    kind: 'local',
    get: async (key: string, range?: { start: number; end: number }) =>
      key === 'obj' ? { body: Readable.from([range ? OBJECT.subarray(range.start, range.end + 1) : OBJECT]) } : null,
  } as unknown as ObjectStore;
  gateway = http.createServer(createRegistryProxy({ target, logger: createLogger('gateway-test', 'silent'), timeoutMs: 5000, handoff: { store, secret: SECRET } }));
  url = await listen(gateway);
});
afterAll(async () => {
  await new Promise((r) => gateway.close(r));
  await new Promise((r) => registry.close(r));
});
beforeEach(() => {
  seen = [];
});

const internal = (res: Response) => [...res.headers.keys()].filter((h) => h.startsWith('x-factory-'));

test('internal headers: a client cannot send them, never receives them', async () => {
  const res = await fetch(`${url}/v2/plain`, { method: 'HEAD', headers: { 'X-Factory-Handoff': 'guess', 'X-Factory-Object': '/etc/passwd' } });
  expect(res.status).toBe(200);
  expect(internal(res)).toEqual([]);
  expect(Object.keys(seen[0]).filter((h) => h.startsWith('x-factory-'))).toEqual([]);
  const got = await fetch(`${url}/v2/plain`, { headers: { 'X-Factory-Handoff': 'guess' } });
  expect(internal(got)).toEqual([]);
  expect(await got.text()).toBe('relayed');
  expect(seen[1]['x-factory-handoff']).toBe(SECRET);
});

test("a hand-off is streamed with the registry-proxy's status and span; a 304 passes through", async () => {
  const res = await fetch(`${url}/v2/handoff`);
  expect(res.status).toBe(206);
  expect(res.headers.get('content-range')).toBe('bytes 2-5/10');
  expect(res.headers.get('content-length')).toBe('4');
  expect(internal(res)).toEqual([]);
  expect(await res.text()).toBe('2345');
  const held = await fetch(`${url}/v2/not-modified`, { headers: { 'If-None-Match': '"e"' } });
  expect(held.status).toBe(304);
  expect(seen[1]['if-none-match']).toBe('"e"');
});

test('the registry-proxy learns the client: X-Forwarded-For gets the peer appended, and the client key comes with its proof', async () => {
  const named = http.createServer(
    createRegistryProxy({ target: `http://127.0.0.1:${(registry.address() as AddressInfo).port}`, logger: createLogger('gateway-test', 'silent'), timeoutMs: 5000, client: { of: () => 'client-key', proof: SECRET } }),
  );
  const namedUrl = await listen(named);
  try {
    await fetch(`${namedUrl}/v2/plain`, { headers: { 'X-Forwarded-For': '198.51.100.7', 'X-Factory-Client': 'forged', 'X-Factory-Client-Proof': 'guess' } });
    expect(seen[0]['x-forwarded-for']).toBe('198.51.100.7, 127.0.0.1');
    expect(seen[0]['x-factory-client']).toBe('client-key');
    expect(seen[0]['x-factory-client-proof']).toBe(SECRET);
    await fetch(`${url}/v2/plain`);
    expect(seen[1]['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen[1]['x-factory-client']).toBeUndefined();
  } finally {
    await new Promise((r) => named.close(r));
  }
});
