import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseWebhookSpec } from '@factory/config';
import { attemptDelivery, MAX_RETRY_DELAY_MS, verdictOfStatus, webhookRetryDelayMs } from '../src/notify/delivery';
import { parsePrewarmBody } from '../src/notify/routes';
import { verifyWebhookSignature, webhookSignature } from '../src/notify/signature';
import { isPrivateAddress, webhookTargetProblem } from '../src/notify/ssrf';

const SCHEMATIC = 'a'.repeat(64);

describe('webhook signature', () => {
  const body = '{"id":"d-1","event":"build.succeeded"}';
  it('is the hex HMAC-SHA256 of the raw body under the secret (RFC 4231 test case 2)', () => {
    expect(webhookSignature('Jefe', 'what do ya want for nothing?')).toBe('sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
  it('verifies with the right secret only, over the exact bytes', () => {
    const sig = webhookSignature('s3cret', body);
    expect(verifyWebhookSignature('s3cret', body, sig)).toBe(true);
    expect(verifyWebhookSignature('wrong', body, sig)).toBe(false);
    expect(verifyWebhookSignature('s3cret', `${body} `, sig)).toBe(false);
    expect(verifyWebhookSignature('s3cret', body, undefined)).toBe(false);
    expect(verifyWebhookSignature('s3cret', body, sig.toUpperCase())).toBe(false);
    expect(verifyWebhookSignature('s3cret', body, 'sha256=abc')).toBe(false);
  });
});

describe('retry policy', () => {
  it('doubles from the base delay, capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => webhookRetryDelayMs(n, 30_000))).toEqual([30_000, 60_000, 120_000, 240_000, 480_000]);
    expect(webhookRetryDelayMs(30, 30_000)).toBe(MAX_RETRY_DELAY_MS);
  });
  it('retries 5xx, 408, 425 and 429; other answers are final', () => {
    expect(verdictOfStatus(200)).toBe('delivered');
    expect(verdictOfStatus(204)).toBe('delivered');
    for (const s of [500, 502, 503, 408, 425, 429]) expect(verdictOfStatus(s)).toBe('retry');
    for (const s of [301, 302, 400, 401, 403, 404, 410, 422]) expect(verdictOfStatus(s)).toBe('permanent');
  });
});

describe('SSRF guard', () => {
  it('knows private, loopback, link-local and reserved addresses, also inside IPv6', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '[::1]', 'not-an-ip']) {
      expect([a, isPrivateAddress(a)]).toEqual([a, true]);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) expect([a, isPrivateAddress(a)]).toEqual([a, false]);
  });
  const resolve = async (host: string) => ({ 'public.example': ['93.184.216.34'], 'inside.example': ['93.184.216.34', '10.0.0.5'] } as Record<string, string[]>)[host] ?? Promise.reject(new Error('ENOTFOUND'));
  it('refuses private targets at registration unless allowed', async () => {
    expect(await webhookTargetProblem('https://public.example/hook', false, resolve)).toBeUndefined();
    expect(await webhookTargetProblem('http://127.0.0.1:9/hook', false, resolve)).toMatch(/private or loopback address \(127\.0\.0\.1\)/);
    expect(await webhookTargetProblem('http://[::1]/hook', false, resolve)).toMatch(/private or loopback/);
    expect(await webhookTargetProblem('http://localhost/hook', false, resolve)).toMatch(/private or loopback/);
    expect(await webhookTargetProblem('http://inside.example/hook', false, resolve)).toMatch(/resolves to a private or loopback address \(10\.0\.0\.5\)/);
    expect(await webhookTargetProblem('http://nowhere.example/hook', false, resolve)).toMatch(/does not resolve/);
    expect(await webhookTargetProblem('http://127.0.0.1:9/hook', true, resolve)).toBeUndefined();
  });
});

describe('request bodies', () => {
  it('webhook objects: known fields, http(s) URL, known events', () => {
    expect(parseWebhookSpec({ url: 'https://h.example/x', secret: 's', events: ['build.failed', 'build.succeeded', 'build.failed'], schematic: SCHEMATIC })).toEqual({
      spec: { url: 'https://h.example/x', secret: 's', events: ['build.succeeded', 'build.failed'], schematic: SCHEMATIC },
    });
    expect(parseWebhookSpec({ url: 'ftp://h.example/x', secret: 's', events: ['build.failed'] })).toEqual({ problem: '"url" must be an http or https URL' });
    expect(parseWebhookSpec({ url: 'https://h.example/x', secret: 's', events: ['build.started'] })).toEqual({ problem: expect.stringMatching(/^unknown event "build.started"/) });
    expect(parseWebhookSpec({ url: 'https://h.example/x', secret: '', events: ['build.failed'] })).toEqual({ problem: expect.stringMatching(/"secret"/) });
    expect(parseWebhookSpec({ url: 'https://h.example/x', secret: 's', events: ['build.failed'], extra: 1 })).toEqual({ problem: 'unknown field "extra"' });
    expect(parseWebhookSpec({ url: 'https://u:p@h.example/x', secret: 's', events: ['build.failed'] })).toEqual({ problem: expect.stringMatching(/credentials/) });
  });
  it('pre-warm sets: 1 to 16 asset paths /image accepts', () => {
    expect(parsePrewarmBody({ assets: ['metal-amd64.iso', 'kernel-amd64', 'metal-amd64.iso'] })).toEqual(['metal-amd64.iso', 'kernel-amd64']);
    expect(() => parsePrewarmBody({ assets: [] })).toThrow('invalid prewarm request: "assets" must be a non-empty array of asset paths');
    expect(() => parsePrewarmBody({ assets: ['metal-amd64.iso'], other: 1 })).toThrow('invalid prewarm request: unknown field "other"');
    expect(() => parsePrewarmBody({ assets: ['nonsense'] })).toThrow(/^error parsing profile from path: /);
    const many = Array.from({ length: 17 }, (_, i) => `cmdline-metal-amd64-${i}`);
    expect(() => parsePrewarmBody({ assets: many })).toThrow('too many prewarm assets: 17 (limit 16)');
  });
});

describe('one delivery attempt', () => {
  let server: http.Server;
  let url: string;
  let answer: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
  const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        answer(req, res, body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const request = () => ({ url, secret: 'k', event: 'build.succeeded', deliveryId: 'd-1', body: '{"hello":1}' });
  const options = { timeoutMs: 2000, allowPrivate: true, userAgent: 'test' };

  it('posts the signed body with the event headers; 2xx is delivered', async () => {
    answer = (_q, res) => res.writeHead(204).end();
    expect(await attemptDelivery(request(), options)).toEqual({ verdict: 'delivered', status: 204 });
    const got = received.at(-1)!;
    expect(got.body).toBe('{"hello":1}');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-factory-event']).toBe('build.succeeded');
    expect(got.headers['x-factory-delivery']).toBe('d-1');
    expect(verifyWebhookSignature('k', got.body, got.headers['x-factory-signature'] as string)).toBe(true);
  });
  it('a 500 is retried, a 404 or a redirect is final; only a little of the body is read', async () => {
    answer = (_q, res) => res.writeHead(500).end('x'.repeat(1_000_000));
    const failed = await attemptDelivery(request(), options);
    expect(failed.verdict).toBe('retry');
    expect(failed.status).toBe(500);
    expect(failed.error!.length).toBeLessThan(300);
    answer = (_q, res) => res.writeHead(404).end('no such hook');
    expect(await attemptDelivery(request(), options)).toEqual({ verdict: 'permanent', status: 404, error: 'HTTP 404: no such hook' });
    answer = (_q, res) => res.writeHead(302, { Location: 'http://169.254.169.254/' }).end();
    expect((await attemptDelivery(request(), options)).verdict).toBe('permanent');
  });
  it('times out and retries a receiver that does not answer', async () => {
    answer = () => undefined;
    const r = await attemptDelivery(request(), { ...options, timeoutMs: 200 });
    expect(r).toEqual({ verdict: 'retry', error: 'no answer within 200 ms' });
  });
  it('does not connect to a private address unless allowed (literal or resolved)', async () => {
    const before = received.length;
    expect(await attemptDelivery(request(), { ...options, allowPrivate: false })).toEqual({ verdict: 'permanent', error: 'target 127.0.0.1 is a private or loopback address' });
    const byName = await attemptDelivery({ ...request(), url: url.replace('127.0.0.1', 'localhost') }, { ...options, allowPrivate: false });
    expect(byName.verdict).toBe('permanent');
    expect(byName.error).toMatch(/private or loopback/);
    expect(received.length).toBe(before);
  });
});
