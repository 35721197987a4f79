/**
 * `GET /secureboot/signing-cert.pem` (anchor-api §1.5): the configured signing certificate byte for byte as
 * `application/x-pem-file`, from the signing service's public Secure Boot material; `500 internal server error` as the
 * anchor answers when Secure Boot is not configured.
 */
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import type { SecureBootPublic } from '@factory/queue';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

async function serve(answer: () => SecureBootPublic): Promise<{ base: string; calls: string[]; close: () => Promise<void> }> {
  const calls: string[] = [];
  const jobs = {
    call: async (name: string) => {
      calls.push(name);
      if (name !== 'signing.secureBootPublic') throw new Error(`unexpected job ${name}`);
      return answer();
    },
    workerCount: async () => 1,
    ping: async () => undefined,
  } as unknown as JobCaller;
  const app = createApp({ jobs, logger: createLogger('gateway-test', 'silent'), metrics: createMetricsRegistry('gateway-test'), serverTag: 'test', allowedOrigins: ['*'], maxSchematicBytes: 4096 });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, close: () => new Promise((r) => server.close(() => r())) };
}

test('Secure Boot configured: 200, application/x-pem-file, the certificate as the signing service holds it', async () => {
  const gw = await serve(() => ({ enabled: true, signingCertPem: CERT, pcrPublicKeyPem: '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n' }));
  try {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${gw.base}/secureboot/signing-cert.pem`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/x-pem-file');
      expect(await res.text()).toBe(CERT);
    }
    // The certificate does not change while the signing service runs: asked once.
    expect(gw.calls).toEqual(['signing.secureBootPublic']);
    const post = await fetch(`${gw.base}/secureboot/signing-cert.pem`, { method: 'POST' });
    expect(post.status).toBe(405);
  } finally {
    await gw.close();
  }
});

test('Secure Boot not configured: 500 internal server error, as the anchor', async () => {
  const gw = await serve(() => ({ enabled: false }));
  try {
    const res = await fetch(`${gw.base}/secureboot/signing-cert.pem`);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe('internal server error\n');
  } finally {
    await gw.close();
  }
});
