import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FactoryError, isFactoryError } from '@factory/errors';
import { DEFAULT_SCHEMATIC_ID } from '@factory/schematic';
import { createLocalStore, StorageError } from '@factory/storage';
import { Registry } from '@factory/telemetry';
import { registerSchematicMetrics, SchematicMetrics, schematicHandlers, SchematicStorage } from '../src/handlers';
import { SchematicRepository } from '../src/repository';

/** A storage fake: a Map, with the calls it saw. */
class MemoryStorage implements SchematicStorage {
  readonly stored = new Map<string, string>();
  readonly puts: string[] = [];
  pingError: Error | undefined;
  async get(id: string) {
    return this.stored.get(id) ?? null;
  }
  async put(id: string, yaml: string) {
    this.puts.push(id);
    if (this.stored.has(id)) return false;
    this.stored.set(id, yaml);
    return true;
  }
  async ping() {
    if (this.pingError) throw this.pingError;
  }
}

function countingMetrics(): SchematicMetrics & { counts: Record<keyof SchematicMetrics, number> } {
  const counts = { lookup: 0, created: 0, duplicateCreated: 0 };
  return { counts, lookup: () => counts.lookup++, created: () => counts.created++, duplicateCreated: () => counts.duplicateCreated++ };
}

const EXTENSIONS_BODY = 'customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/gvisor\n      - siderolabs/amd-ucode\n';
const EXTENSIONS_YAML = 'customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/gvisor\n            - siderolabs/amd-ucode\n';

describe('schematic.create', () => {
  test('a new schematic is canonicalized, stored under its content ID and counted as created', async () => {
    const storage = new MemoryStorage();
    const metrics = countingMetrics();
    const handlers = schematicHandlers({ storage, storageKind: 'local', metrics });

    const reply = await handlers['schematic.create']({ body: '{}' });
    expect(reply).toEqual({ id: DEFAULT_SCHEMATIC_ID, yaml: 'customization: {}\n', created: true });
    expect(storage.stored.get(DEFAULT_SCHEMATIC_ID)).toBe('customization: {}\n');

    const withExtensions = await handlers['schematic.create']({ body: EXTENSIONS_BODY });
    expect(withExtensions.yaml).toBe(EXTENSIONS_YAML);
    expect(withExtensions.created).toBe(true);
    expect(storage.stored.get(withExtensions.id)).toBe(EXTENSIONS_YAML);
    expect(metrics.counts).toEqual({ lookup: 0, created: 2, duplicateCreated: 0 });
  });

  test('the same schematic written differently is a duplicate: same ID, created false, counted as duplicate', async () => {
    const storage = new MemoryStorage();
    const metrics = countingMetrics();
    const handlers = schematicHandlers({ storage, storageKind: 'local', metrics });

    const first = await handlers['schematic.create']({ body: EXTENSIONS_BODY });
    const again = await handlers['schematic.create']({
      body: '{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/gvisor","siderolabs/amd-ucode"]}}}',
    });
    expect(again).toEqual({ id: first.id, yaml: first.yaml, created: false });
    expect(storage.puts).toEqual([first.id, first.id]);
    expect(metrics.counts).toEqual({ lookup: 0, created: 1, duplicateCreated: 1 });
  });

  test.each([
    ['unknown field', 'something: x\n', 'yaml: construct errors: line 1: field something not found in type schematic.Schematic'],
    ['empty body', '', 'EOF'],
    ['owner (enterprise only)', 'owner: alice\n', 'owner field is only supported in Enterprise edition'],
    ['bad bootloader', 'customization:\n  bootloader: auto\n', 'yaml: construct errors: line 2: auto does not belong to BootloaderKind values'],
    // Work limits (issue 10 item 1): a FactoryError, so the job completes with the 400 and is never retried.
    ['alias bomb', 'customization:\n  extraKernelArgs: [&a x' + ', *a'.repeat(6000) + ']\n', 'yaml: document contains excessive aliasing (more than 1000 aliases)'],
    ['deep nesting', 'overlay:\n  options: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n', 'yaml: exceeded max depth of 100'],
    ['too many tokens', 'customization:\n  extraKernelArgs: [' + 'x,'.repeat(25000) + ']\n', 'yaml: document is too large (more than 25000 YAML tokens)'],
  ])('%s: a 400 FactoryError carrying the parser message, nothing stored or counted', async (_name, body, message) => {
    const storage = new MemoryStorage();
    const metrics = countingMetrics();
    const handlers = schematicHandlers({ storage, storageKind: 'local', metrics });

    await expect(handlers['schematic.create']({ body })).rejects.toMatchObject({ name: 'FactoryError', status: 400, message });
    expect(storage.puts).toEqual([]);
    expect(metrics.counts).toEqual({ lookup: 0, created: 0, duplicateCreated: 0 });
  });

  test('invalid YAML syntax is a one-line 400', async () => {
    const handlers = schematicHandlers({ storage: new MemoryStorage(), storageKind: 'local', metrics: countingMetrics() });
    await expect(handlers['schematic.create']({ body: 'customization: [\n  a: b\n' })).rejects.toMatchObject({
      name: 'FactoryError',
      status: 400,
      message: expect.stringMatching(/^yaml: [^\r\n]+$/),
    });
  });

  test('a storage failure is not a FactoryError: it propagates so the queue retries the job', async () => {
    const storage = new MemoryStorage();
    storage.put = async () => {
      throw new Error('disk full');
    };
    const handlers = schematicHandlers({ storage, storageKind: 'local', metrics: countingMetrics() });
    await expect(handlers['schematic.create']({ body: '{}' })).rejects.toThrow('disk full');
    await expect(handlers['schematic.create']({ body: '{}' })).rejects.not.toBeInstanceOf(FactoryError);
  });

  test('a large body (a 512 KiB embedded machine config) is stored and read back whole', async () => {
    const storage = new MemoryStorage();
    const handlers = schematicHandlers({ storage, storageKind: 'local', metrics: countingMetrics() });
    const config = 'x'.repeat(512 * 1024);
    const { id, yaml, created } = await handlers['schematic.create']({
      body: `customization:\n  embeddedMachineConfiguration: ${config}\n`,
    });
    expect(created).toBe(true);
    expect(yaml.length).toBeGreaterThan(config.length);
    expect(yaml).toContain(config);
    expect((await handlers['schematic.get']({ id })).yaml).toBe(yaml);
  });
});

describe('schematic.get', () => {
  test('a stored schematic answers with its YAML and counts a lookup', async () => {
    const storage = new MemoryStorage();
    storage.stored.set(DEFAULT_SCHEMATIC_ID, 'customization: {}\n');
    const metrics = countingMetrics();
    const handlers = schematicHandlers({ storage, storageKind: 'local', metrics });
    expect(await handlers['schematic.get']({ id: DEFAULT_SCHEMATIC_ID })).toEqual({ yaml: 'customization: {}\n' });
    expect(metrics.counts.lookup).toBe(1);
  });

  test('an unknown ID is a 404 FactoryError "schematic not found" (and still counts a lookup)', async () => {
    const metrics = countingMetrics();
    const handlers = schematicHandlers({ storage: new MemoryStorage(), storageKind: 'local', metrics });
    for (const id of ['0'.repeat(64), 'not-an-id']) {
      await expect(handlers['schematic.get']({ id })).rejects.toMatchObject({ name: 'FactoryError', status: 404, message: 'schematic not found' });
    }
    expect(metrics.counts.lookup).toBe(2);
  });
});

describe('storage faults are 503 replies naming the cause (they used to fail the job: a bare 500 after retries)', () => {
  const fsFault = (code: string) => new StorageError('UNAVAILABLE', `local store: write failed: ${code}: /srv/objects/x`, { cause: Object.assign(new Error(code), { code }) });

  test.each([
    ['EROFS', 'storage is read-only (EROFS)'],
    ['ENOSPC', 'storage is full (ENOSPC)'],
    ['EACCES', 'storage denies access (EACCES)'],
    ['ECONNREFUSED', 'storage is unavailable'],
  ])('%s on create, get and ping → 503 %s', async (code, reason) => {
    const storage = new MemoryStorage();
    storage.put = async () => {
      throw fsFault(code);
    };
    storage.get = async () => {
      throw fsFault(code);
    };
    storage.pingError = fsFault(code);
    const handlers = schematicHandlers({ storage, storageKind: 'local', metrics: countingMetrics() });
    for (const call of [() => handlers['schematic.create']({ body: '{}' }), () => handlers['schematic.get']({ id: DEFAULT_SCHEMATIC_ID }), () => handlers['schematic.ping']({})]) {
      const err = await call().catch((e: unknown) => e);
      expect(isFactoryError(err)).toBe(true);
      expect(err).toMatchObject({ status: 503, message: reason });
    }
  });
});

describe('schematic.ping', () => {
  test('answers with the storage kind while storage answers, and fails (no FactoryError) when it does not', async () => {
    const storage = new MemoryStorage();
    const handlers = schematicHandlers({ storage, storageKind: 's3', metrics: countingMetrics() });
    expect(await handlers['schematic.ping']({})).toEqual({ storage: 's3' });
    storage.pingError = new Error('bucket unreachable');
    await expect(handlers['schematic.ping']({})).rejects.toThrow('bucket unreachable');
  });
});

describe('handlers over the real repository and a local object store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'schematic-handlers-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('create, then get from a fresh repository (another replica or a restart) over the same store', async () => {
    const store = createLocalStore(dir);
    const registry = new Registry();
    const metrics = registerSchematicMetrics(registry);
    const handlers = schematicHandlers({ storage: new SchematicRepository(store, 10, 30_000, metrics), storageKind: store.kind, metrics });

    const { id, yaml } = await handlers['schematic.create']({ body: EXTENSIONS_BODY });
    expect((await handlers['schematic.create']({ body: EXTENSIONS_BODY })).created).toBe(false);
    expect(await handlers['schematic.ping']({})).toEqual({ storage: 'local' });

    const replica = schematicHandlers({ storage: new SchematicRepository(createLocalStore(dir)), storageKind: 'local', metrics: countingMetrics() });
    expect(await replica['schematic.get']({ id })).toEqual({ yaml });
    await expect(replica['schematic.get']({ id: DEFAULT_SCHEMATIC_ID })).rejects.toMatchObject({ name: 'FactoryError', status: 404 });

    // The metric names are part of the service's contract (dashboards, anchor parity).
    const text = await registry.metrics();
    expect(text).toMatch(/^image_factory_schematic_create_total 1$/m);
    expect(text).toMatch(/^image_factory_schematic_duplicate_create_total 1$/m);
    expect(text).toMatch(/^image_factory_schematic_get_total 0$/m);
    expect(text).toMatch(/^image_factory_schematic_cache_size 1$/m);
  });

  test('corrupt stored content is an error to retry, never a 404 or a wrong answer', async () => {
    const store = createLocalStore(dir);
    await store.put(SchematicRepository.key(DEFAULT_SCHEMATIC_ID), Buffer.from('customization:\n  extraKernelArgs: [evil]\n'));
    const handlers = schematicHandlers({ storage: new SchematicRepository(store), storageKind: 'local', metrics: countingMetrics() });
    const err = await handlers['schematic.get']({ id: DEFAULT_SCHEMATIC_ID }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(isFactoryError(err)).toBe(false);
    expect((err as Error).message).toMatch(new RegExp(`^stored schematic ${DEFAULT_SCHEMATIC_ID} is corrupt`));
  });
});
