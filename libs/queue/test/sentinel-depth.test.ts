/**
 * Against real Redis processes: a job round trip through Redis Sentinel (`redis+sentinel://` REDIS_URL), and the
 * queue depth gauge (`factory_queue_jobs`) the Helm chart's backlog alert and KEDA trigger read.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from '@factory/telemetry';
import { JobClient, serveQueue } from '../src';
import { freePort, waitForPort } from '../../../test/support/procs';

jest.setTimeout(30_000);
const logger = pino({ level: 'silent' });
const PASSWORD = 'sentinel-test-password';
let dir: string;
const procs: ChildProcess[] = [];
let sentinelPort: number;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'factory-sentinel-'));
  const redisPort = await freePort();
  sentinelPort = await freePort();
  procs.push(spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--requirepass', PASSWORD], { stdio: 'ignore' }));
  await waitForPort(redisPort);
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `sentinel monitor factory 127.0.0.1 ${redisPort} 1`, `sentinel auth-pass factory ${PASSWORD}`, ''].join('\n'));
  procs.push(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
  await waitForPort(sentinelPort);
});

afterAll(async () => {
  for (const close of closers) await close();
  for (const p of procs) p.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('jobs round-trip through Redis Sentinel, and each consumer reports the queue depth by state', async () => {
  const url = `redis+sentinel://:${PASSWORD}@127.0.0.1:${sentinelPort}/factory`;
  const metrics = new Registry();
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const { worker, connection } = serveQueue(
    'schematic',
    {
      'schematic.get': async ({ id }) => {
        if (id === 'hold') await held;
        return { yaml: `id: ${id}\n` };
      },
    },
    { redisUrl: url, prefix: 'sentinel-test', logger, metrics, concurrency: 1 },
  );
  const client = new JobClient(url, 'sentinel-test', logger, 10_000);
  closers.push(() => client.close(), () => worker.close(), () => connection.quit());

  expect(await client.call('schematic.get', { id: 'abc' })).toEqual({ yaml: 'id: abc\n' });

  // one job running (held), two waiting with a priority (BullMQ's prioritized zset), one plain (the wait list)
  const running = client.call('schematic.get', { id: 'hold' });
  await new Promise((r) => setTimeout(r, 300));
  const queue = client.queue('schematic');
  await queue.add('schematic.get', { id: 'p1' }, { priority: 2 });
  await queue.add('schematic.get', { id: 'p2' }, { priority: 3 });
  await queue.add('schematic.get', { id: 'w1' });
  const text = await metrics.metrics();
  const depth = (state: string) => Number(new RegExp(`factory_queue_jobs\\{queue="schematic",state="${state}"\\} (\\d+)`).exec(text)?.[1]);
  expect({ wait: depth('wait'), prioritized: depth('prioritized'), active: depth('active'), delayed: depth('delayed') }).toEqual({ wait: 1, prioritized: 2, active: 1, delayed: 0 });
  release();
  expect(await running).toEqual({ yaml: 'id: hold\n' });
});
