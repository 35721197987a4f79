/**
 * ensureAsset's admission hook: a cache hit never reaches it; a miss asks it before queuing, passes its priority to
 * the job, and releases the ticket however the wait ends; a refusal queues nothing.
 */
import { FactoryError } from '@factory/errors';
import { AssetLookup, AssetProfile, assetStatement, encodeSignatureFile, assetJobId, assetKey, assetObjectKey, AssetBuildCaller, ensureAsset } from '../src';
import { rejectionOf } from '../../../test/support/expect';

const profile = { schematicId: 'a'.repeat(64), version: 'v1.11.3', kind: 'cmdline', platform: 'metal', arch: 'amd64', secureboot: false, outFormat: 'raw', path: 'cmdline-metal-amd64' } as unknown as AssetProfile;
const key = assetKey(profile);
const record = { key: assetObjectKey(key), size: 3, sha256: 'c'.repeat(64), sha512: 'd'.repeat(128), contentType: 'text/plain' };

function fixtures(o: { stored: boolean; fail?: Error }) {
  const calls: Array<{ jobId: string; priority?: number }> = [];
  // published = the object and its signature file are stored (what findAsset looks for); a build publishes it
  let published = o.stored;
  const jobs: AssetBuildCaller = {
    call: async (_name, _payload, opts) => {
      calls.push({ jobId: opts.jobId, priority: opts.priority });
      if (o.fail) throw o.fail;
      published = true;
      return record;
    },
  };
  const store: AssetLookup = {
    head: async () => (published ? { key: record.key, size: 3 } : null),
    getBuffer: async () => (published ? encodeSignatureFile(assetStatement(record), 'AAAA') : null),
  };
  return { jobs, store, calls };
}

test('a cache hit is not admitted', async () => {
  const { jobs, store, calls } = fixtures({ stored: true });
  const asked: string[] = [];
  await ensureAsset(jobs, store, profile, { timeoutMs: 1000, beforeBuild: async (jobId) => (asked.push(jobId), {}) });
  expect(asked).toEqual([]);
  expect(calls).toEqual([]);
});

test('a miss is admitted with the job ID, queued with the ticket priority, and released', async () => {
  const { jobs, store, calls } = fixtures({ stored: false });
  const events: string[] = [];
  await ensureAsset(jobs, store, profile, { timeoutMs: 1000, beforeBuild: async (jobId) => (events.push(`admit ${jobId}`), { priority: 4, release: () => events.push('release') }) });
  expect(calls).toEqual([{ jobId: assetJobId(key), priority: 4 }]);
  expect(events).toEqual([`admit ${assetJobId(key)}`, 'release']);
});

test('the ticket is released when the build fails too; a refusal queues nothing', async () => {
  const failing = fixtures({ stored: false, fail: new FactoryError(500, 'internal server error') });
  let released = 0;
  await rejectionOf(ensureAsset(failing.jobs, failing.store, profile, { timeoutMs: 1000, beforeBuild: async () => ({ release: () => released++ }) }), FactoryError);
  expect(released).toBe(1);
  const refused = fixtures({ stored: false });
  const err = await rejectionOf(ensureAsset(refused.jobs, refused.store, profile, { timeoutMs: 1000, beforeBuild: async () => Promise.reject(new FactoryError(429, 'too many requests')) }), FactoryError);
  expect(err.status).toBe(429);
  expect(refused.calls).toEqual([]);
});
