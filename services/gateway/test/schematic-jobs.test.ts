/**
 * `schematic.create` jobs carry the whole request body: they are removed from Redis as soon as they are answered
 * (completed or failed), a job that vanished before its answer was read is asked again (creating is idempotent),
 * and the body bytes one gateway has queued at once are capped (503 with Retry-After beyond).
 */
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { JobVanishedError } from '@factory/errors';
import { canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';

const LIMIT = 4096;
const calls: Array<{ body: string; opts: unknown }> = [];
let vanishNext = false;
let hold: Promise<void> | undefined;
let server: http.Server;
let base: string;

beforeAll(async () => {
  const jobs = {
    call: async (name: string, payload: { body: string }, opts: unknown) => {
      if (name !== 'schematic.create') throw new Error(`unexpected job ${name}`);
      calls.push({ body: payload.body, opts });
      if (hold) await hold;
      if (vanishNext) {
        vanishNext = false;
        throw new JobVanishedError('x');
      }
      const s = parseSchematic(payload.body);
      return { id: schematicId(s), yaml: canonicalYaml(s), created: true };
    },
    workerCount: async () => 1,
    ping: async () => undefined,
  } as unknown as JobCaller;
  const app = createApp({
    jobs,
    logger: createLogger('gateway-test', 'silent'),
    metrics: createMetricsRegistry('gateway-test'),
    serverTag: 'test',
    allowedOrigins: ['*'],
    maxSchematicBytes: LIMIT,
    maxSchematicBytesInFlight: 2 * LIMIT,
  });
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((r) => server.close(r)));

beforeEach(() => {
  calls.length = 0;
});

const post = (body: string) => fetch(`${base}/schematics`, { method: 'POST', body });
const args = (n: number) => `customization:\n  extraKernelArgs:\n    - ${'x'.repeat(n)}\n`;

test('the create job is removed when answered', async () => {
  const res = await post(args(10));
  expect(res.status).toBe(201);
  expect(calls).toEqual([{ body: args(10), opts: { removeWhenDone: true } }]);
});

test('a job that vanished before its answer was read is asked once more', async () => {
  vanishNext = true;
  const res = await post(args(10));
  expect(res.status).toBe(201);
  expect(((await res.json()) as { id: string }).id).toBe(schematicId(parseSchematic(args(10))));
  expect(calls).toHaveLength(2);
});

test('bodies in flight are capped: 503 with Retry-After beyond, accepted again once answered', async () => {
  let release!: () => void;
  hold = new Promise<void>((r) => (release = r));
  const first = post(args(3000));
  const second = post(args(3000));
  while (calls.length < 2) await new Promise((r) => setTimeout(r, 5));
  const third = await post(args(3000));
  expect(third.status).toBe(503);
  expect(third.headers.get('retry-after')).toBe('1');
  expect(await third.text()).toContain('too many schematics are being created');
  hold = undefined;
  release();
  expect((await first).status).toBe(201);
  expect((await second).status).toBe(201);
  expect((await post(args(3000))).status).toBe(201);
});
