/**
 * requestBuild: a stored asset is a done build without a job; a cold one is admitted, recorded queued and its job added
 * (the wait goes on in the background, releasing the admission when it ends); a failure to queue is recorded; a user
 * request joining a pre-warm build moves it up.
 */
import { AssetLookup, AssetStatement, AssetTarget, assetSignatureKey, encodeSignatureFile } from '@factory/asset';
import { BuildRequestDeps, buildSubject, BuildStore, PREWARM_PRIORITY, requestBuild } from '@factory/builds';
import { FactoryError } from '@factory/errors';
import { createLogger } from '@factory/telemetry';
import { MemoryBuilds } from '../../../test/support/memory-builds';

const subject = buildSubject(
  { schematicId: 'a'.repeat(64), version: 'v1.11.3', path: 'kernel-amd64', kind: 'kernel', platform: 'metal', arch: 'amd64', secureboot: false, outFormat: 'raw' } as never,
  'http://factory.test/',
);
const objectKey = `assets/${subject.id}`;
const jobId = `asset-${subject.id}`;

function objects(stored: boolean): AssetLookup {
  const statement: AssetStatement = { key: objectKey, size: 5, sha256: 'b'.repeat(64), sha512: 'c'.repeat(128) };
  return {
    head: async (key: string) => (stored && key === objectKey ? { size: 5 } : null),
    getBuffer: async (key: string) => (stored && key === assetSignatureKey(objectKey) ? encodeSignatureFile(statement, 'c2ln') : null),
  } as unknown as AssetLookup;
}

/** A target whose job is added at once (or not: `addFails`), and which finishes when `finish` is called. */
function target(o: { addFails?: boolean } = {}) {
  const calls: Array<{ jobId: string; priority?: number }> = [];
  let finish!: () => void;
  const t: AssetTarget = {
    key: subject.id,
    contentType: 'application/octet-stream',
    build: (id, opts) => {
      calls.push({ jobId: id, priority: opts.priority });
      if (o.addFails) return Promise.reject(new FactoryError(503, 'service temporarily unavailable'));
      opts.onEnqueued?.();
      return new Promise((resolve) => (finish = () => resolve(undefined)));
    },
  };
  return { t, calls, finish: () => finish() };
}

function deps(memory: MemoryBuilds, stored = false, promoted: Array<[string, number]> = []): BuildRequestDeps {
  return {
    builds: memory as unknown as BuildStore,
    objects: objects(stored),
    queueKey: 'factory:build',
    logger: createLogger('test', 'silent'),
    timeoutMs: 60_000,
    promote: async (id, priority) => void promoted.push([id, priority]),
  };
}

test('a stored asset is a done build from its signed record; no job, no admission', async () => {
  const memory = new MemoryBuilds();
  const { t, calls } = target();
  const admit = jest.fn();
  const build = await requestBuild(deps(memory, true), { subject, target: t, priority: 'user', admit });
  expect(build).toMatchObject({ id: subject.id, state: 'done', size: 5, sha256: 'b'.repeat(64), percent: 100 });
  expect(calls).toEqual([]);
  expect(admit).not.toHaveBeenCalled();
});

test('a cold asset: admitted, recorded queued with its position, its job added at the admitted priority; the admission is released when the wait ends', async () => {
  const memory = new MemoryBuilds();
  memory.position = 3;
  const { t, calls, finish } = target();
  const release = jest.fn();
  const build = await requestBuild(deps(memory), { subject, target: t, priority: 'user', admit: async () => ({ priority: 4, release }) });
  expect(build).toMatchObject({ state: 'queued', queuePosition: 3, priority: 'user' });
  expect(calls).toEqual([{ jobId, priority: 4 }]);
  expect(release).not.toHaveBeenCalled();
  finish();
  await new Promise((r) => setImmediate(r));
  expect(release).toHaveBeenCalledTimes(1);
});

test('a job that could not be queued: the record says failed, the client gets the error; a 429 writes nothing', async () => {
  const memory = new MemoryBuilds();
  await expect(requestBuild(deps(memory), { subject, target: target({ addFails: true }).t, priority: 'user' })).rejects.toThrow('service temporarily unavailable');
  expect((await memory.get())!.build).toMatchObject({ state: 'failed', error: { status: 503, message: 'service temporarily unavailable' } });
  const fresh = new MemoryBuilds();
  const limited = requestBuild(deps(fresh), { subject, target: target().t, priority: 'user', admit: async () => { throw new FactoryError(429, 'too many requests'); } });
  await expect(limited).rejects.toThrow('too many requests');
  expect(fresh.events).toEqual([]);
});

test('pre-warm builds queue at priority 100; a user request joining one takes it over and moves its job up', async () => {
  const memory = new MemoryBuilds();
  const promoted: Array<[string, number]> = [];
  const first = target();
  expect(await requestBuild(deps(memory, false, promoted), { subject, target: first.t, priority: 'prewarm' })).toMatchObject({ state: 'queued', priority: 'prewarm' });
  expect(first.calls).toEqual([{ jobId, priority: PREWARM_PRIORITY }]);
  const second = target();
  expect(await requestBuild(deps(memory, false, promoted), { subject, target: second.t, priority: 'user', admit: async () => ({ priority: 1 }) })).toMatchObject({ state: 'queued', priority: 'user' });
  expect(promoted).toEqual([[jobId, 1]]);
  // one record, two revisions (queued by pre-warm, taken over by the user)
  expect(memory.events.map((e) => e.build.priority)).toEqual(['prewarm', 'user']);
});
