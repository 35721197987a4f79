/**
 * How the gateway receives requests (@factory/http createBoundedServer and POST /schematics): bodies are cut at the limit whatever the
 * client announces, a connection is not held by a body nobody reads, receiving has deadlines but answering has not,
 * and a body that is not text is a 400, never rewritten.
 */
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import { canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import { createBoundedServer } from '@factory/http';
import { rawExchange } from '../../../test/support/raw-http';

const LIMIT = 1024;
const created: string[] = [];
let server: http.Server;
let port: number;

beforeAll(async () => {
  const jobs = {
    call: async (name: string, payload: { body?: string }) => {
      if (name === 'schematic.create') {
        created.push(payload.body!);
        const s = parseSchematic(payload.body!);
        return { id: schematicId(s), yaml: canonicalYaml(s), created: true };
      }
      if (name === 'upstream.versions') {
        // an answer that takes longer than the request deadline (like an asset waiting for its build)
        await new Promise((r) => setTimeout(r, 1500));
        return { versions: ['v1.11.3'] };
      }
      throw new Error(`unexpected job ${name}`);
    },
    workerCount: async () => 1,
    ping: async () => undefined,
  } as unknown as JobCaller;
  const app = createApp({ jobs, logger: createLogger('gateway-test', 'silent'), metrics: createMetricsRegistry('gateway-test'), serverTag: 'test', allowedOrigins: ['*'], maxSchematicBytes: LIMIT });
  server = createBoundedServer(app, { maxBodyBytes: LIMIT, headersTimeoutMs: 500, requestTimeoutMs: 800 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  server.closeAllConnections();
  return new Promise((r) => server.close(r));
});

const raw = (head: string, opts?: Parameters<typeof rawExchange>[2]) => rawExchange(port, head, opts);

describe('request bodies are cut at the limit', () => {
  test('a lying Content-Length far above the limit: 413 at once, connection closed', async () => {
    const r = await raw('POST /schematics HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\ncustomization: {}\n');
    expect(r.status).toBe(413);
    expect(r.response).toContain(`request body too large: the limit is ${LIMIT} bytes`);
    expect(r.closedAfterMs).toBeLessThan(2000);
  });

  test('the same on a route that reads no body (GET /healthz with a huge announced body)', async () => {
    const r = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\nabc');
    expect(r.status).toBe(413);
    expect(r.closedAfterMs).toBeLessThan(2000);
  });

  test('an endless chunked upload: 413 once the limit is passed, connection closed while the client still sends', async () => {
    const chunk = `${(512).toString(16)}\r\n${'x'.repeat(512)}\r\n`;
    const r = await raw('POST /schematics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', { more: () => chunk });
    expect(r.status).toBe(413);
    expect(r.response.toLowerCase()).toContain('connection: close');
    expect(r.closedAfterMs).toBeLessThan(2000);
  });

  test('a body announced within the limit but never sent is cut by the request deadline', async () => {
    const r = await raw('POST /schematics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\ncustomization: {}\n');
    expect(r.closedAfterMs).toBeLessThan(3000);
    expect(created).not.toContain('customization: {}\n');
  });

  test('headers that never end are cut by the headers deadline', async () => {
    let n = 0;
    const r = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\n', { more: () => (n++ < 500 ? `X-Slow-${n}: 1\r\n` : undefined) });
    expect(r.closedAfterMs).toBeLessThan(3000);
    expect(r.status).not.toBe(200);
  });
});

describe('the deadlines cover receiving, not answering', () => {
  test('a complete request whose answer takes longer than the request deadline is answered', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/versions`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(['v1.11.3']);
  });
});

describe('POST /schematics body text', () => {
  test('invalid UTF-8 → 400 in go-yaml words, nothing created (it used to be rewritten to U+FFFD)', async () => {
    const before = created.length;
    const body = Buffer.concat([Buffer.from('customization:\n  extraKernelArgs: ["a'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('"]\n')]);
    const res = await fetch(`http://127.0.0.1:${port}/schematics`, { method: 'POST', body });
    expect(res.status).toBe(400);
    expect(await res.text()).toBe('yaml: invalid leading UTF-8 octet (value: 255)\n');
    expect(created.length).toBe(before);
  });

  test('a truncated UTF-8 sequence → 400', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/schematics`, { method: 'POST', body: Buffer.concat([Buffer.from('customization:\n  extraKernelArgs: [a]\n#'), Buffer.from([0xe4, 0xb8])]) });
    expect(res.status).toBe(400);
    expect(await res.text()).toBe('yaml: incomplete UTF-8 octet sequence\n');
  });

  test('valid UTF-8 (and UTF-16 with a BOM, as go-yaml reads it) is accepted with the same text', async () => {
    const text = 'customization:\n  extraKernelArgs: [中文]\n';
    const utf8 = await fetch(`http://127.0.0.1:${port}/schematics`, { method: 'POST', body: text });
    expect(utf8.status).toBe(201);
    const utf16 = await fetch(`http://127.0.0.1:${port}/schematics`, { method: 'POST', body: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]) });
    expect(utf16.status).toBe(201);
    expect(await utf16.json()).toEqual(await utf8.json());
  });
});
