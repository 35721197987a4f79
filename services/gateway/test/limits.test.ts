/** The gateway's side of per-client limits: the 429 it sends for schematic creation (the limiter's scripts are tested against Redis in libs/ratelimit). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiter, requestClient } from '@factory/ratelimit';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';

/** A limiter over a stand-in for Redis whose bucket holds one token, then says "wait 59.5 s". */
function oneTokenLimiter(): RateLimiter {
  let tokens = 1;
  const redis = { eval: async () => (tokens-- > 0 ? [1, 0] : [0, 59_500]), zrem: async () => 0 };
  return new RateLimiter({ redis, prefix: 'g', settings: { schematics: { count: 1, periodMs: 60_000 }, maxOutstanding: 0 }, holdMs: 60_000 });
}

test('the gateway answers 429 with Retry-After and a one-line message, before reading the body', async () => {
  const limiter = oneTokenLimiter();
  const created: string[] = [];
  const jobs = {
    call: async (name: string, payload: { body: string }) => {
      created.push(payload.body);
      return { id: 'x', yaml: 'customization: {}\n' };
    },
    workerCount: async () => 1,
    ping: async () => undefined,
  } as unknown as JobCaller;
  const app = createApp({ jobs, logger: createLogger('t', 'silent'), metrics: createMetricsRegistry('t'), serverTag: 't', allowedOrigins: ['*'], maxSchematicBytes: 1024, limits: { limiter, clientOf: (req) => requestClient(req, false) } });
  const srv = http.createServer(app);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  try {
    expect((await fetch(`${base}/schematics`, { method: 'POST', body: '{}' })).status).toBe(201);
    const res = await fetch(`${base}/schematics`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toMatch(/^too many requests: schematic creation is limited to 1 per minute per client; retry in \d+ s\n$/);
    expect(created).toHaveLength(1);
  } finally {
    await new Promise((r) => srv.close(r));
  }
});
