/**
 * Issue 10 item 6: disk use is bounded. With a small storage budget the least recently used artifacts are evicted
 * (never schematics) and the store stays within the budget; an evicted asset is rebuilt on its next GET with the same
 * bytes; the budget's metrics are exposed; an asset above FACTORY_MAX_ASSET_BYTES fails once with a 4xx, is not
 * retried and publishes nothing; and build jobs in Redis carry the schematic ID, not its content.
 *
 * Assets: `kernel-amd64` of three versions (8.2 MB each) and `kernel-arm64` (33 MB). The budget (53 MB) holds the
 * three amd64 kernels, not all four, and holds any three of them once one amd64 kernel is gone.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assetKey, assetObjectKey } from '@factory/asset';
import { createLocalStore } from '@factory/storage';
import { parseAssetPath } from '@factory/talos';
import { demoHasArm64 } from '../support/demo-imager';
import { ensureDemoReleases } from '../support/factory';
import { LaunchedFactory, launchFactory, stopProcess } from '../support/launcher';
import { freePort, startRedis } from '../support/procs';
import { describeIf } from '../support/skip';
import { until as pollUntil } from '../support/wait';

jest.setTimeout(300_000);

const BUDGET = 53_000_000;
const MAX_ASSET = 32 * 2 ** 20;
const MARKER = 'budget-marker-7f3a';

let dataDir: string;
let redis: Awaited<ReturnType<typeof startRedis>>;
let factory: LaunchedFactory;
let schematicId: string;

const hasArm64 = demoHasArm64(process.env.FACTORY_TEST_DEMO_DIR);

describeIf(hasArm64, 'the demo releases were built without arm64 inputs (the budget needs the arm64 kernel)')('storage budget', () => {
  beforeAll(async () => {
    const demoDir = ensureDemoReleases();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'fault-budget-'));
    redis = await startRedis();
    factory = await launchFactory({
      port: await freePort(),
      dataDir,
      demoDir,
      env: {
        REDIS_URL: redis.url,
        FACTORY_STORAGE_BUDGET: String(BUDGET),
        FACTORY_STORAGE_EVICTION_GRACE: '0s',
        // Only passes asked for by publishes (and the one at start): what this test sees is their doing.
        FACTORY_STORAGE_EVICTION_INTERVAL: '1h',
        FACTORY_MAX_ASSET_BYTES: '32MiB',
      },
    });
    const res = await fetch(`${factory.url}/schematics`, { method: 'POST', body: `customization:\n  extraKernelArgs: [${MARKER}]\n` });
    expect(res.status).toBe(201);
    schematicId = ((await res.json()) as { id: string }).id;
  }, 180_000);

  afterAll(async () => {
    if (factory) await stopProcess(factory.proc);
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const store = () => createLocalStore(path.join(dataDir, 'objects'));
  const objectKeyOf = (version: string, assetPath: string) => assetObjectKey(assetKey({ schematicId, version, path: assetPath, ...parseAssetPath(assetPath) }));
  const A = { version: 'v1.7.7', path: 'kernel-amd64' };
  const B = { version: 'v1.11.3', path: 'kernel-amd64' };
  const C = { version: 'v1.12.2', path: 'kernel-amd64' };
  const D = { version: 'v1.11.3', path: 'kernel-arm64' };
  const keyOf = (a: { version: string; path: string }) => objectKeyOf(a.version, a.path);

  async function list(prefix: string): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for await (const o of store().list(prefix)) found.set(o.key, o.size);
    return found;
  }
  const total = async () => [...(await list('')).values()].reduce((n, s) => n + s, 0);
  /** The assets stored, each with its signature file (counted and evicted with it, never alone). */
  async function storedAssets(): Promise<string[]> {
    const found = await list('assets/');
    const assets = [...found.keys()].filter((k) => !k.endsWith('.sig')).sort();
    expect([...found.keys()].filter((k) => k.endsWith('.sig')).sort()).toEqual(assets.map((k) => `${k}.sig`));
    return assets;
  }

  async function getAsset(a: { version: string; path: string }): Promise<{ status: number; sha256: string; text: string }> {
    const res = await fetch(`${factory.url}/image/${schematicId}/${a.version}/${a.path}`, { signal: AbortSignal.timeout(240_000) });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, sha256: createHash('sha256').update(body).digest('hex'), text: res.status >= 400 ? body.toString('utf8') : '' };
  }

  const until = <T>(what: string, get: () => Promise<T | undefined | false>, ms = 30_000) =>
    pollUntil(what, get, { ms, everyMs: 200, context: () => factory.output().slice(-3000) });

  async function workerMetrics(): Promise<string> {
    const m = /build-worker: metrics on (http:\/\/[^\s]+\/metrics)/.exec(factory.output());
    if (!m) throw new Error(`the launcher did not say where the build-worker's metrics are\n${factory.output().slice(-2000)}`);
    return (await fetch(m[1])).text();
  }
  /** The value of the first sample of `name` whose labels include `labels`. */
  const metric = (text: string, name: string, labels = '') => {
    const line = text.split('\n').find((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && l.includes(labels));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  const built: Record<string, string> = {};

  test('least recently used artifacts are evicted, never schematics; the budget holds; metrics say so', async () => {
    for (const a of [A, B, C]) {
      const got = await getAsset(a);
      expect(got.status).toBe(200);
      built[keyOf(a)] = got.sha256;
    }
    expect(await storedAssets()).toEqual([keyOf(A), keyOf(B), keyOf(C)].sort());
    // A is served again (a storage hit): it is now more recent than B and C.
    await new Promise((r) => setTimeout(r, 50));
    expect((await getAsset(A)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));

    // D's publish pushes the store over budget: B, the least recently used, goes (with its signature file); nothing
    // else does.
    const before = await list('assets/');
    const bytesOfB = before.get(keyOf(B))! + before.get(`${keyOf(B)}.sig`)!;
    expect((await getAsset(D)).status).toBe(200);
    await until('B to be evicted', async () => !(await list('assets/')).has(keyOf(B)));
    expect(await storedAssets()).toEqual([keyOf(A), keyOf(C), keyOf(D)].sort());
    expect([...(await list('schematics/')).keys()]).toEqual([`schematics/${schematicId}.yaml`]);
    const stored = await total();
    process.stdout.write(`[fault-storage-budget] ${stored} bytes stored after eviction, budget ${BUDGET}\n`);
    expect(stored).toBeLessThanOrEqual(BUDGET);

    const text = await until('the eviction metrics', async () => {
      const t = await workerMetrics();
      return (metric(t, 'image_factory_storage_evicted_objects_total') ?? 0) >= 1 && t;
    });
    expect(metric(text, 'image_factory_storage_budget_bytes')).toBe(BUDGET);
    expect(metric(text, 'image_factory_storage_evicted_bytes_total')).toBe(bytesOfB);
    expect(before.get(keyOf(B))).toBe(8_247_232);
    expect(metric(text, 'image_factory_storage_bytes', 'class="artifacts"')).toBe(stored - (await list('schematics/')).get(`schematics/${schematicId}.yaml`)!);
    expect(metric(text, 'image_factory_storage_bytes', 'class="schematics"')).toBeGreaterThan(0);
    // three assets and their signature files
    expect(metric(text, 'image_factory_storage_objects', 'class="artifacts"')).toBe(6);
  });

  test('an evicted asset is rebuilt on its next GET with identical bytes; its build job carries no schematic content', async () => {
    // Every command Redis receives while B is rebuilt, job payloads included.
    const monitor = spawn('redis-cli', ['-p', String(redis.port), 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let seen = '';
    monitor.stdout.on('data', (d) => (seen += d));
    await until('redis-cli monitor to start', async () => seen.startsWith('OK'), 10_000);
    try {
      const again = await getAsset(B);
      expect(again.status).toBe(200);
      expect(again.sha256).toBe(built[keyOf(B)]);
    } finally {
      monitor.kill();
    }
    const commands = seen.split('\n');
    // The job was added (its ID names the asset) ...
    const added = commands.filter((c) => c.includes(`asset-${keyOf(B).slice('assets/'.length)}`) && c.includes('build.asset'));
    expect(added.length).toBeGreaterThan(0);
    // ... with the schematic ID and not a byte of the schematic's content.
    expect(added.some((c) => c.includes(schematicId))).toBe(true);
    expect(commands.filter((c) => c.includes(MARKER))).toEqual([]);

    // B's publish is over budget again: now C is the least recently used.
    await until('C to be evicted', async () => !(await list('assets/')).has(keyOf(C)));
    expect(await storedAssets()).toEqual([keyOf(A), keyOf(B), keyOf(D)].sort());
    expect(await total()).toBeLessThanOrEqual(BUDGET);
  });

  test('an asset above FACTORY_MAX_ASSET_BYTES: one 422 naming the limit, not retried, nothing published', async () => {
    const before = await list('assets/');
    const uki = { version: 'v1.11.3', path: 'metal-arm64-uki.efi' };
    const got = await getAsset(uki);
    expect(got.status).toBe(422);
    expect(got.text).toContain(`larger than the factory's asset size limit of ${MAX_ASSET} bytes`);
    expect(await list('assets/')).toEqual(before);
    expect(await store().head(keyOf(uki))).toBeNull();
    const text = await workerMetrics();
    // One attempt, answered with the 4xx (a retried build would count as failed first).
    expect(metric(text, 'image_factory_assets_built_total', 'kind="uki",outcome="422"')).toBe(1);
    expect(text).not.toMatch(/image_factory_assets_built_total\{[^}]*kind="uki",outcome="failed"/);
  });
});
