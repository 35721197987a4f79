/**
 * Request/response over BullMQ against a real Redis: replies, permanent errors (not retried), transient errors
 * (retried), timeouts and de-duplication by deterministic job ID.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { BUILD_SANDBOX_NODE_FLAGS, JobClient, serveQueue } from '../src';
import { FactoryError } from '@factory/errors';
import { startRedis, ProcHandle } from '../../../test/support/procs';

jest.setTimeout(30_000);
const logger = pino({ level: 'silent' });
let redis: ProcHandle & { url: string };
let client: JobClient;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new JobClient(redis.url, 'test', logger, 5000);
});
afterAll(async () => {
  for (const c of closers) await c();
  await client.close();
  await redis.stop();
});

function serve(handlers: Parameters<typeof serveQueue>[1], queue: Parameters<typeof serveQueue>[0] = 'schematic') {
  const { worker, connection } = serveQueue(queue, handlers, { redisUrl: redis.url, prefix: 'test', logger, concurrency: 4 });
  closers.push(() => worker.close(), () => connection.quit());
  return worker;
}

test('a reply value reaches the caller; a FactoryError keeps its status and is not retried', async () => {
  let calls = 0;
  serve({
    'schematic.get': async ({ id }) => {
      calls++;
      if (id === 'missing') throw new FactoryError(404, 'schematic not found');
      return { yaml: `id: ${id}\n` };
    },
  });
  await expect(client.call('schematic.get', { id: 'x' })).resolves.toEqual({ yaml: 'id: x\n' });
  await expect(client.call('schematic.get', { id: 'missing' })).rejects.toEqual(new FactoryError(404, 'schematic not found'));
  expect(calls).toBe(2);
});

test('unexpected errors are retried, then reported as 500', async () => {
  let attempts = 0;
  serve({
    'upstream.ping': async () => {
      attempts++;
      throw new Error('boom');
    },
  }, 'upstream');
  await expect(client.call('upstream.ping', {}, { timeoutMs: 15_000 })).rejects.toMatchObject({ status: 500, message: 'internal server error' });
  expect(attempts).toBe(3);
});

test('no worker: 503 after the timeout', async () => {
  await expect(client.call('signing.publicKey', { key: 'cosign' }, { timeoutMs: 300 })).rejects.toMatchObject({ status: 503 });
});

test('concurrent calls with one deterministic job ID run the handler once', async () => {
  let runs = 0;
  const { worker, connection } = serveQueue('signing', {
    'signing.publicKey': async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 300));
      return { pem: 'PEM' };
    },
  }, { redisUrl: redis.url, prefix: 'dedupe', logger });
  const dedupe = new JobClient(redis.url, 'dedupe', logger, 5000);
  closers.push(() => worker.close(), () => connection.quit(), () => dedupe.close());
  const results = await Promise.all(Array.from({ length: 20 }, () => dedupe.call('signing.publicKey', { key: 'cosign' }, { jobId: 'public-key-once' })));
  expect(results).toEqual(Array.from({ length: 20 }, () => ({ pem: 'PEM' })));
  expect(runs).toBe(1);
});

test('jobs removed when done and answered at once: every answer arrives (it was a 503 "finished before its result could be read")', async () => {
  // The answer can be published (and the job removed) before add() returns; listening starts before the add.
  serve({ 'signing.publicKey': async ({ key }) => ({ pem: key }) }, 'signing');
  const started = Date.now();
  const slowest = { ms: 0 };
  await Promise.all(
    Array.from({ length: 400 }, async (_, i) => {
      const t = Date.now();
      await expect(client.call('signing.publicKey', { key: `k${i}` } as never, { removeWhenDone: true })).resolves.toEqual({ pem: `k${i}` });
      slowest.ms = Math.max(slowest.ms, Date.now() - t);
    }),
  );
  // The slowest would be 2 s (the vanish grace) if an answer were missed; printed, not asserted (timings vary).
  process.stdout.write(`[rpc] 400 instant replies removed when done: ${Date.now() - started} ms, slowest ${slowest.ms} ms\n`);
});

test('answers of jobs removed the moment they finish are never lost, from the very first call of a client on', async () => {
  // A fresh client per round: its QueueEvents starts reading while the first jobs are already being answered.
  for (let round = 0; round < 3; round++) {
    const prefix = `fast-${round}`;
    const { worker, connection } = serveQueue('schematic', { 'schematic.get': async ({ id }) => ({ yaml: id }) }, { redisUrl: redis.url, prefix, logger, concurrency: 16 });
    const fresh = new JobClient(redis.url, prefix, logger, 5000);
    closers.push(() => worker.close(), () => connection.quit(), () => fresh.close());
    await worker.waitUntilReady();
    const ids = Array.from({ length: 150 }, (_, i) => `s${i}`);
    const results = await Promise.allSettled(ids.map((id) => fresh.call('schematic.get', { id }, { removeWhenDone: true })));
    const lost = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason?.message));
    expect(lost).toEqual([]);
  }
});

test('stop(grace): a sandboxed job still running when the grace is over goes back to the queue and another worker answers it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'queue-hand-back-'));
  const processorFile = path.join(dir, 'slow.js');
  // a sandboxed processor that never finishes on its own
  writeFileSync(processorFile, 'module.exports = () => new Promise(() => undefined);\n');
  const prefix = 'hand-back';
  const slow = serveQueue('signing', { processorFile }, { redisUrl: redis.url, prefix, logger, concurrency: 1 });
  const handback = new JobClient(redis.url, prefix, logger, 20_000);
  closers.push(() => slow.connection.quit(), () => handback.close(), async () => rmSync(dir, { recursive: true, force: true }));
  const answer = handback.call('signing.publicKey', { key: 'cosign' }, { jobId: 'handed-back' });
  const queue = handback.queue('signing');
  for (let i = 0; (await queue.getJobState('handed-back')) !== 'active'; i++) {
    if (i > 200) throw new Error('the job never became active');
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(await slow.stop(200)).toEqual(['handed-back']);
  const job = await queue.getJob('handed-back');
  expect({ state: await job!.getState(), attemptsMade: job!.attemptsMade, stalled: job!.stalledCounter }).toEqual({ state: 'waiting', attemptsMade: 0, stalled: 0 });
  const next = serveQueue('signing', { 'signing.publicKey': async () => ({ pem: 'from the next worker' }) }, { redisUrl: redis.url, prefix, logger });
  closers.push(() => next.worker.close(), () => next.connection.quit());
  await expect(answer).resolves.toEqual({ pem: 'from the next worker' });
});

test("sandboxNodeFlags: a sandboxed processor's child process runs with them (the build sandboxes' heap settings)", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'queue-sandbox-flags-'));
  const processorFile = path.join(dir, 'flags.js');
  // answers with the flags its own process was started with
  writeFileSync(processorFile, 'module.exports = async () => ({ ok: true, value: { pem: JSON.stringify(process.execArgv) } });\n');
  const prefix = 'sandbox-flags';
  const served = serveQueue('signing', { processorFile }, { redisUrl: redis.url, prefix, logger, concurrency: 1, sandboxNodeFlags: BUILD_SANDBOX_NODE_FLAGS });
  const client = new JobClient(redis.url, prefix, logger, 20_000);
  closers.push(() => served.worker.close(), () => served.connection.quit(), () => client.close(), async () => rmSync(dir, { recursive: true, force: true }));
  const { pem } = await client.call('signing.publicKey', { key: 'cosign' });
  expect(JSON.parse(pem)).toEqual(expect.arrayContaining([...BUILD_SANDBOX_NODE_FLAGS]));
});
