/**
 * The build-worker's records of its build jobs, from the worker's events: running, progress, done with the published
 * record's digests, a permanent reply's status and message, a retry, a failure for good; other jobs are not recorded.
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'bullmq';
import { Build, BuildStore } from '@factory/builds';
import { createLogger } from '@factory/telemetry';
import { recordBuilds } from '../src/build-records';
import { MemoryBuilds } from '../../../test/support/memory-builds';

const spec = { schematicId: 'a'.repeat(64), version: 'v1.11.3', path: 'metal-amd64.iso', kind: 'iso', platform: 'metal', arch: 'amd64', secureboot: false, outFormat: '.iso', extensions: [] };
const key = 'b'.repeat(64);

function setup() {
  const worker = new EventEmitter();
  const memory = new MemoryBuilds();
  recordBuilds(worker as unknown as Worker, { builds: memory as unknown as BuildStore, externalUrl: 'http://f.test/', logger: createLogger('test', 'silent'), workerName: 'host/1' });
  const job = (o: { attemptsMade?: number; returnvalue?: unknown; finishedOn?: number; priority?: number; name?: string } = {}) => ({
    id: `asset-${key}`,
    name: o.name ?? 'build.asset',
    data: { spec, key },
    opts: { attempts: 3, priority: o.priority ?? 1 },
    attemptsMade: o.attemptsMade ?? 0,
    returnvalue: o.returnvalue,
    finishedOn: o.finishedOn,
  });
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  const states = () => memory.events.map((e) => e.build.state);
  const last = (): Build => memory.events[memory.events.length - 1].build;
  return { worker, memory, job, settle, states, last };
}

test('taken, progress, done: the record follows the job, in order, with the published size and sha256', async () => {
  const { worker, job, settle, states, last } = setup();
  worker.emit('active', job());
  worker.emit('progress', job(), { stage: 'fetching imager', percent: 5 });
  worker.emit('progress', job(), { stage: 'uploading', percent: 96, bytes: 1024 });
  worker.emit('completed', job({ attemptsMade: 1, returnvalue: { ok: true, value: { key: `assets/${key}`, size: 7, sha256: 'c'.repeat(64) } } }));
  await settle();
  expect(states()).toEqual(['running', 'running', 'running', 'done']);
  expect(last()).toMatchObject({ id: key, asset: 'metal-amd64.iso', url: `http://f.test/image/${'a'.repeat(64)}/v1.11.3/metal-amd64.iso`, size: 7, sha256: 'c'.repeat(64), percent: 100, priority: 'user' });
  expect(last().log[0]).toMatch(/ queued \(user\)$/);
  expect(last().log[1]).toMatch(/ started on host\/1 \(attempt 1\)$/);
});

test('a permanent reply is a failed build with its status and message', async () => {
  const { worker, job, settle, last } = setup();
  worker.emit('active', job({ priority: 100 }));
  worker.emit('completed', job({ attemptsMade: 1, priority: 100, returnvalue: { ok: false, status: 422, message: 'asset metal-amd64.iso is 9 bytes, larger than the limit' } }));
  await settle();
  expect(last()).toMatchObject({ state: 'failed', priority: 'prewarm', error: { status: 422, message: 'asset metal-amd64.iso is 9 bytes, larger than the limit' } });
});

test('an unexpected failure is retried (queued again) until the attempts are used up, then failed with 500', async () => {
  const { worker, job, settle, states, last } = setup();
  worker.emit('active', job());
  worker.emit('failed', job({ attemptsMade: 1 }), new Error('boom'));
  worker.emit('active', job({ attemptsMade: 1 }));
  worker.emit('failed', job({ attemptsMade: 2 }), new Error('boom'));
  worker.emit('active', job({ attemptsMade: 2 }));
  worker.emit('failed', job({ attemptsMade: 3, finishedOn: Date.now() }), new Error('boom'));
  await settle();
  expect(states()).toEqual(['running', 'queued', 'running', 'queued', 'running', 'failed']);
  expect(last().error).toEqual({ status: 500, message: 'internal server error' });
  expect(last().log.some((l) => l.endsWith('started on host/1 (attempt 3)'))).toBe(true);
});

test('other jobs (talosctl extraction) have no build record', async () => {
  const { worker, job, settle, memory } = setup();
  worker.emit('active', job({ name: 'build.talosctl' }));
  await settle();
  expect(memory.events).toEqual([]);
});
