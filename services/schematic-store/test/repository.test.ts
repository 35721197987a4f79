import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalStore, ObjectStore } from '@factory/storage';
import { MAX_SCHEMATIC_BYTES, SchematicRepository } from '../src/repository';

const idOf = (yaml: string) => createHash('sha256').update(yaml).digest('hex');
const yamlN = (n: number) => `customization:\n    extraKernelArgs:\n        - n=${n}\n`;

/** A local object store that counts the reads and existence checks the repository makes. */
function countingStore(inner: ObjectStore) {
  const calls = { getBuffer: 0, head: 0, put: 0 };
  const store: ObjectStore = Object.create(inner) as ObjectStore;
  store.getBuffer = (key, max) => (calls.getBuffer++, inner.getBuffer(key, max));
  store.head = (key) => (calls.head++, inner.head(key));
  store.put = (key, body, meta) => (calls.put++, inner.put(key, body, meta));
  return { store, calls };
}

describe('SchematicRepository over a local object store', () => {
  let dir: string;
  let now: number;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'schematic-repo-'));
    now = 1_700_000_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  test('put stores the YAML under schematics/<id>.yaml with its digest; a second put is a duplicate', async () => {
    const { store, calls } = countingStore(createLocalStore(dir));
    const repo = new SchematicRepository(store);
    const yaml = yamlN(1);
    const id = idOf(yaml);
    expect(await repo.put(id, yaml)).toBe(true);
    const info = await store.head(`schematics/${id}.yaml`);
    expect(info).toMatchObject({ sha256: id, contentType: 'application/yaml', size: Buffer.byteLength(yaml) });
    expect(await repo.put(id, yaml)).toBe(false);
    // The duplicate was answered from the cache, without another object-store round trip.
    expect(calls).toEqual({ getBuffer: 0, head: 2, put: 1 });
    // A fresh repository (restart) learns it is a duplicate from the store and does not rewrite it.
    expect(await new SchematicRepository(store).put(id, yaml)).toBe(false);
    expect(calls.put).toBe(1);
  });

  test('put refuses a schematic larger than what is read back (413), so none is accepted that could not be served after a restart', async () => {
    const store = createLocalStore(dir);
    const repo = new SchematicRepository(store);
    const yaml = `customization:\n  extraKernelArgs:\n    - ${'x'.repeat(MAX_SCHEMATIC_BYTES)}\n`;
    await expect(repo.put(idOf(yaml), yaml)).rejects.toMatchObject({ status: 413, message: expect.stringContaining(`the limit is ${MAX_SCHEMATIC_BYTES}`) });
    expect(await store.head(SchematicRepository.key(idOf(yaml)))).toBeNull();
  });

  test('put refuses YAML that does not hash to the ID (nothing is published)', async () => {
    const store = createLocalStore(dir);
    const repo = new SchematicRepository(store);
    await expect(repo.put(idOf(yamlN(1)), yamlN(2))).rejects.toThrow();
    expect(await store.head(SchematicRepository.key(idOf(yamlN(1))))).toBeNull();
  });

  test('a hit is served from the cache; a malformed ID never reaches the store', async () => {
    const { store, calls } = countingStore(createLocalStore(dir));
    const yaml = yamlN(1);
    await new SchematicRepository(store).put(idOf(yaml), yaml);
    const repo = new SchematicRepository(store);
    expect(await repo.get(idOf(yaml))).toBe(yaml);
    expect(await repo.get(idOf(yaml))).toBe(yaml);
    expect(calls.getBuffer).toBe(1);
    expect(await repo.get('../etc/passwd')).toBeNull();
    expect(await repo.get(idOf(yaml).toUpperCase())).toBeNull();
    expect(calls.getBuffer).toBe(1);
  });

  test('concurrent reads of one ID share one object-store read', async () => {
    const { store, calls } = countingStore(createLocalStore(dir));
    const yaml = yamlN(1);
    await new SchematicRepository(store).put(idOf(yaml), yaml);
    const repo = new SchematicRepository(store);
    const answers = await Promise.all([repo.get(idOf(yaml)), repo.get(idOf(yaml)), repo.get(idOf(yaml))]);
    expect(answers).toEqual([yaml, yaml, yaml]);
    expect(calls.getBuffer).toBe(1);
  });

  test('the positive cache is bounded: past capacity the oldest entry is forgotten and read again from the store', async () => {
    const { store, calls } = countingStore(createLocalStore(dir));
    const sizes: number[] = [];
    const repo = new SchematicRepository(store, 2, 30_000, { cacheSize: (n) => sizes.push(n) });
    for (const n of [1, 2, 3]) await repo.put(idOf(yamlN(n)), yamlN(n));
    expect(sizes).toEqual([1, 2, 2]);

    expect(await repo.get(idOf(yamlN(3)))).toBe(yamlN(3));
    expect(await repo.get(idOf(yamlN(2)))).toBe(yamlN(2));
    expect(calls.getBuffer).toBe(0);
    expect(await repo.get(idOf(yamlN(1)))).toBe(yamlN(1)); // evicted: read from the store
    expect(calls.getBuffer).toBe(1);
    expect(sizes.at(-1)).toBe(2);
  });

  test('the positive cache is bounded in bytes too: large schematics do not pile up in memory (found by the fuzz: 700 × 1 MB → 2.5 GB RSS)', async () => {
    const { store, calls } = countingStore(createLocalStore(dir));
    const big = (n: number) => `customization:\n    extraKernelArgs:\n        - n=${n}${'a'.repeat(100_000)}\n`;
    const repo = new SchematicRepository(store, 100_000, 30_000, undefined, 250_000);
    for (const n of [1, 2, 3, 4]) await repo.put(idOf(big(n)), big(n));
    expect(repo.cachedBytes).toBeLessThanOrEqual(250_000);
    expect(await repo.get(idOf(big(4)))).toBe(big(4));
    expect(calls.getBuffer).toBe(0);
    expect(await repo.get(idOf(big(1)))).toBe(big(1)); // evicted by size: read from the store
    expect(calls.getBuffer).toBe(1);
  });

  test('a miss is remembered for the negative TTL, then the store is asked again (a schematic created elsewhere appears)', async () => {
    const { store, calls } = countingStore(createLocalStore(dir));
    const repo = new SchematicRepository(store, 100, 30_000);
    const otherReplica = new SchematicRepository(store);
    const yaml = yamlN(7);
    const id = idOf(yaml);

    expect(await repo.get(id)).toBeNull();
    expect(calls.getBuffer).toBe(1);
    await otherReplica.put(id, yaml);

    now += 29_999;
    expect(await repo.get(id)).toBeNull(); // still the remembered miss
    expect(calls.getBuffer).toBe(1);

    now += 2;
    expect(await repo.get(id)).toBe(yaml);
    expect(calls.getBuffer).toBe(2);
  });

  test('a put on this replica clears its own negative entry at once', async () => {
    const repo = new SchematicRepository(createLocalStore(dir));
    const yaml = yamlN(8);
    expect(await repo.get(idOf(yaml))).toBeNull();
    await repo.put(idOf(yaml), yaml);
    expect(await repo.get(idOf(yaml))).toBe(yaml);
  });

  test('the negative cache is bounded too: attacker-chosen unknown IDs cannot grow it past capacity', async () => {
    const { store, calls } = countingStore(createLocalStore(dir));
    const repo = new SchematicRepository(store, 2, 30_000);
    const unknown = [1, 2, 3].map((n) => idOf(`unknown ${n}`));
    for (const id of unknown) expect(await repo.get(id)).toBeNull();
    expect(calls.getBuffer).toBe(3);

    // The two newest misses are remembered ...
    expect(await repo.get(unknown[1])).toBeNull();
    expect(await repo.get(unknown[2])).toBeNull();
    expect(calls.getBuffer).toBe(3);
    // ... the oldest was pushed out and costs a store read again.
    expect(await repo.get(unknown[0])).toBeNull();
    expect(calls.getBuffer).toBe(4);
  });

  test('corrupt content (not hashing to its ID) is an error, and is not cached as good', async () => {
    const store = createLocalStore(dir);
    const id = idOf(yamlN(1));
    await store.put(SchematicRepository.key(id), Buffer.from(yamlN(2)));
    const repo = new SchematicRepository(store);
    await expect(repo.get(id)).rejects.toThrow(`stored schematic ${id} is corrupt (content hashes to ${idOf(yamlN(2))})`);
    await expect(repo.get(id)).rejects.toThrow('is corrupt');

    // Once the object is repaired, the same repository serves it.
    await store.put(SchematicRepository.key(id), Buffer.from(yamlN(1)));
    expect(await repo.get(id)).toBe(yamlN(1));
  });

  test('ping passes the object store readiness through', async () => {
    const store = createLocalStore(dir);
    await expect(new SchematicRepository(store).ping()).resolves.toBeUndefined();
    const down: ObjectStore = Object.create(store) as ObjectStore;
    down.ping = async () => {
      throw new Error('directory not writable');
    };
    await expect(new SchematicRepository(down).ping()).rejects.toThrow('directory not writable');
  });
});
