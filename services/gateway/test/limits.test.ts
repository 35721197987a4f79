/** The gateway's side of per-client limits: the 429 it sends for schematic creation (the limiter itself is tested in libs/ratelimit). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { redisConnection } from '@factory/queue';
import { RateLimiter, requestClient } from '@factory/ratelimit';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import { ProcHandle, startRedis } from '../../../test/support/procs';

let redisProc: ProcHandle & { url: string };
let redis: ReturnType<typeof redisConnection>;

beforeAll(async () => {
  redisProc = await startRedis();
  redis = redisConnection(redisProc.url, 'blocking', 'gateway-limits-test');
});
afterAll(async () => {
  redis?.disconnect();
  await redisProc?.stop();
});

test('the gateway answers 429 with Retry-After and a one-line message, before reading the body', async () => {
  const limiter = new RateLimiter({ redis, prefix: 'g', settings: { schematics: { count: 1, periodMs: 60_000 }, maxOutstanding: 0 }, holdMs: 60_000 });
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
