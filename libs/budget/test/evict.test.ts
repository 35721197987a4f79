/** One eviction pass over a real (local) object store and an in-memory stand-in for the Redis access index. */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalStore } from '@factory/storage';
import { Registry } from '@factory/telemetry';
import { registerBudgetMetrics, runEvictionPass } from '../src';

function fakeTracker(initial: Record<string, number>) {
  const scores = new Map(Object.entries(initial));
  let stored = -1;
  return {
    scores,
    stored: () => stored,
    lastAccess: async (keys: readonly string[]) => new Map(keys.filter((k) => scores.has(k)).map((k) => [k, scores.get(k)!])),
    forget: async (keys: readonly string[]) => void keys.forEach((k) => scores.delete(k)),
    recordedKeys: async () => [...scores.keys()],
    setStoredBytes: async (n: number) => void (stored = n),
  };
}

test('evicts least recently used artifacts only, keeps schematics and OCI content, reports and exports metrics', async () => {
  const store = createLocalStore(mkdtempSync(path.join(os.tmpdir(), 'budget-')));
  const now = 10_000_000;
  await store.put('schematics/s.yaml', Buffer.alloc(100));
  await store.put('oci/blobs/sha256/x', Buffer.alloc(200));
  for (const k of ['a', 'b', 'c', 'd']) await store.put(`assets/${k}`, Buffer.alloc(1000));
  // d was never recorded: its age comes from the store (just written: the newest)
  const tracker = fakeTracker({ 'assets/a': now - 4000, 'assets/b': now - 9000, 'assets/c': now - 1000, 'assets/gone': now - 5 });
  const registry = new Registry();
  const report = await runEvictionPass({
    store,
    tracker,
    layout: { artifacts: 'assets/', pinned: { schematics: 'schematics/', oci: 'oci/' } },
    settings: { budgetBytes: 2500, graceMs: 0 },
    metrics: registerBudgetMetrics(registry),
    now: () => now,
  });
  expect(report).toMatchObject({ storedBytes: 4300, evictedBytes: 2000, evictedObjects: 2, remainingBytes: 2300, overBudget: false });
  expect(report.bytes).toEqual({ schematics: 100, oci: 200, artifacts: 4000 });
  expect(await store.head('assets/b')).toBeNull();
  expect(await store.head('assets/a')).toBeNull();
  expect(await store.head('assets/c')).not.toBeNull();
  expect(await store.head('assets/d')).not.toBeNull();
  expect(await store.head('schematics/s.yaml')).not.toBeNull();
  // evicted and stale records dropped; the estimate restarts from what is stored
  expect([...tracker.scores.keys()].sort()).toEqual(['assets/c']);
  expect(tracker.stored()).toBe(2300);
  const text = await registry.metrics();
  expect(text).toContain('image_factory_storage_bytes{class="artifacts"} 2000');
  expect(text).toContain('image_factory_storage_bytes{class="schematics"} 100');
  expect(text).toContain('image_factory_storage_evicted_bytes_total 2000');
  expect(text).toContain('image_factory_storage_evicted_objects_total 2');
  expect(text).toContain('image_factory_storage_budget_bytes 2500');
});

test('an artifact read between planning and deleting is spared', async () => {
  const store = createLocalStore(mkdtempSync(path.join(os.tmpdir(), 'budget-')));
  await store.put('assets/a', Buffer.alloc(10));
  const tracker = fakeTracker({ 'assets/a': 0 });
  const lastAccess = tracker.lastAccess;
  let reads = 0;
  // The second read (right before deleting) sees a fresh access.
  tracker.lastAccess = async (keys) => (++reads === 2 ? new Map([['assets/a', 1_000_000]]) : lastAccess(keys));
  const report = await runEvictionPass({ store, tracker, layout: { artifacts: 'assets/', pinned: {} }, settings: { budgetBytes: 0, graceMs: 60_000 }, now: () => 1_000_000 });
  expect(report.evictedObjects).toBe(0);
  expect(await store.head('assets/a')).not.toBeNull();
});

test('a signature file is counted and deleted with its artifact, never evicted alone; a lone one is an artifact', async () => {
  const store = createLocalStore(mkdtempSync(path.join(os.tmpdir(), 'budget-')));
  const now = 10_000_000;
  // The signature files were never accessed (only their assets are): alone they would be the oldest of all.
  for (const k of ['old', 'new']) {
    await store.put(`assets/${k}`, Buffer.alloc(1000));
    await store.put(`assets/${k}.sig`, Buffer.alloc(50));
  }
  await store.put('assets/orphan.sig', Buffer.alloc(50));
  const tracker = fakeTracker({ 'assets/old': now - 9000, 'assets/new': now - 1000, 'assets/orphan.sig': now - 500 });
  const report = await runEvictionPass({
    store,
    tracker,
    layout: { artifacts: 'assets/', companionSuffixes: ['.sig'], pinned: {} },
    settings: { budgetBytes: 1100, graceMs: 0 },
    now: () => now,
  });
  expect(report).toMatchObject({ storedBytes: 2150, evictedBytes: 1050, evictedObjects: 2, remainingBytes: 1100 });
  expect(report.objects.artifacts).toBe(5);
  expect(await store.head('assets/old')).toBeNull();
  expect(await store.head('assets/old.sig')).toBeNull();
  expect(await store.head('assets/new')).not.toBeNull();
  expect(await store.head('assets/new.sig')).not.toBeNull();
  expect(await store.head('assets/orphan.sig')).not.toBeNull();
});
