/**
 * Issue 10 item 3: a corrupted stored artifact is never served. Against the embedded factory (`npm start`, local
 * object directory): 16 flipped bytes in a stored ISO are found before serving — the corrupted copy is quarantined,
 * the asset rebuilt (deterministic: the same bytes as before) and served; `.sha512` is the digest of the served bytes,
 * recorded at build time; the scrub finds corruption at rest; an attacker who rewrites both the bytes and the digests
 * recorded for them (the statement in the signature file, where readers take them from; the metadata of objects
 * stored by earlier versions) is caught by the signing service's signature.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync, fstatSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobClient } from '@factory/queue';
import { createLocalStore, createS3Store, LocalObjectStore } from '@factory/storage';
import { createLogger } from '@factory/telemetry';
import { ensureDemoReleases, ROOT, S3Factory, startFactoryOnS3 } from '../support/factory';
import { LaunchedFactory, launchFactory, stopProcess } from '../support/launcher';
import { freePort } from '../support/procs';

jest.setTimeout(300_000);

type Bucket = { getBuffer(key: string, max: number): Promise<Buffer | null>; put(key: string, body: Buffer, o?: { contentType?: string }): Promise<unknown> };

/**
 * What an attacker with write access to storage (but not the signing key) does to make other bytes look recorded:
 * rewrites the digests in the asset's signature file to theirs (its signature stays the signing service's, over the
 * original digests).
 */
async function forgeStatement(store: Bucket, key: string, forged: Buffer): Promise<void> {
  const file = JSON.parse((await store.getBuffer(`${key}.sig`, 1 << 16))!.toString('utf8'));
  file.statement = { ...file.statement, size: forged.length, sha256: sha('sha256', forged), sha512: sha('sha512', forged) };
  await store.put(`${key}.sig`, Buffer.from(JSON.stringify(file)), { contentType: 'application/json' });
}

let dataDir: string;
let factory: LaunchedFactory;
let objects: LocalObjectStore;
let schematicId: string;

beforeAll(async () => {
  const demoDir = ensureDemoReleases();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'fault-integrity-'));
  factory = await launchFactory({ port: await freePort(), dataDir, demoDir, env: { FACTORY_SCRUB_INTERVAL: '0' } });
  objects = createLocalStore(path.join(dataDir, 'objects')) as LocalObjectStore;
  const res = await fetch(`${factory.url}/schematics`, { method: 'POST', body: 'customization:\n  extraKernelArgs: [integrity=1]\n' });
  expect(res.status).toBe(201);
  schematicId = ((await res.json()) as { id: string }).id;
}, 180_000);

afterAll(async () => {
  if (factory) await stopProcess(factory.proc);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const sha = (algo: 'sha256' | 'sha512', b: Buffer) => createHash(algo).update(b).digest('hex');

async function download(asset: string): Promise<{ status: number; etag: string | null; body: Buffer }> {
  const res = await fetch(`${factory.url}/image/${schematicId}/v1.12.2/${asset}`, { signal: AbortSignal.timeout(240_000) });
  return { status: res.status, etag: res.headers.get('etag'), body: Buffer.from(await res.arrayBuffer()) };
}

/** The object key of the stored asset whose recorded digest is `sha256`. */
async function objectKeyOf(sha256: string): Promise<string> {
  for await (const o of objects.list('assets/')) if (o.etag === sha256) return o.key;
  throw new Error(`no stored asset with sha256 ${sha256}`);
}

/** XORs 16 bytes in the middle of the object's data, as a failing disk or a careless operator would. */
function flip16(key: string): void {
  const file = objects.pathFor(key);
  const fd = openSync(file, 'r+');
  try {
    const offset = Math.floor(fstatSync(fd).size / 3);
    const buf = Buffer.alloc(16);
    readSync(fd, buf, 0, 16, offset);
    for (let i = 0; i < 16; i++) buf[i] ^= 0xa5;
    writeSync(fd, buf, 0, 16, offset);
  } finally {
    closeSync(fd);
  }
}

async function storedBytes(key: string): Promise<Buffer | null> {
  return objects.getBuffer(key, 1024 * 1024 * 1024);
}

/** `npm run scrub` against the factory's object directory; the public key comes from the factory's API. */
function runScrub(): { status: number | null; report: { checked: number; corrupt: number; quarantined: number; problems: Array<{ key: string; problem: string }> }; out: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'services/build-worker/dist/scrub-cli.js'), '--factory', factory.url, '--json'], {
    env: { ...process.env, FACTORY_DATA_DIR: dataDir, LOG_LEVEL: 'warn', REDIS_URL: '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return { status: r.status, report: JSON.parse(line), out };
  } catch {
    throw new Error(`the scrub printed no report (exit ${r.status}):\n${out}`);
  }
}

test('16 flipped bytes in a stored ISO: never served — quarantined, rebuilt, and .sha512 vouches for the served bytes', async () => {
  const first = await download('metal-amd64.iso');
  expect(first.status).toBe(200);
  const good = sha('sha256', first.body);
  expect(first.etag).toBe(`"${good}"`);
  const key = await objectKeyOf(good);

  flip16(key);
  const corrupted = await storedBytes(key);
  expect(sha('sha256', corrupted!)).not.toBe(good);

  const again = await download('metal-amd64.iso');
  expect(again.status).toBe(200);
  // the rebuilt record equals the original (builds are deterministic), and so do the served bytes
  expect(sha('sha256', again.body)).toBe(good);
  expect(again.etag).toBe(`"${good}"`);

  const sums = await fetch(`${factory.url}/image/${schematicId}/v1.12.2/metal-amd64.iso.sha512`);
  expect(sums.status).toBe(200);
  expect((await sums.text()).split(' ')[0]).toBe(sha('sha512', again.body));

  // the corrupted copy is kept aside for inspection, and the store holds the good bytes again
  const quarantined = await storedBytes(`quarantine/${key}`);
  expect(quarantined && sha('sha256', quarantined)).toBe(sha('sha256', corrupted!));
  expect(sha('sha256', (await storedBytes(key))!)).toBe(good);
  expect(factory.output()).toMatch(/quarantin/i);
});

test('forged bytes with forged recorded digests (statement and metadata): the signature check refuses them', async () => {
  const first = await download('kernel-amd64');
  expect(first.status).toBe(200);
  const good = sha('sha256', first.body);
  const key = await objectKeyOf(good);
  const info = (await objects.head(key))!;
  // An attacker with write access to storage (but not the signing key) replaces the bytes and records their digests.
  const forged = Buffer.concat([first.body.subarray(0, 1024), Buffer.from('forged by an attacker'), first.body.subarray(1045)]);
  await objects.put(key, forged, { contentType: info.contentType, metadata: { ...info.metadata, sha512: sha('sha512', forged) } });
  await forgeStatement(objects, key, forged);
  expect((await objects.head(key))!.sha256).toBe(sha('sha256', forged));

  const again = await download('kernel-amd64');
  expect(again.status).toBe(200);
  expect(sha('sha256', again.body)).toBe(good);
  expect(sha('sha256', (await storedBytes(`quarantine/${key}`))!)).toBe(sha('sha256', forged));
});

test('the scrub finds corruption planted at rest (flipped bytes, forged recorded digests) and quarantines it; the next request rebuilds', async () => {
  const iso = await download('metal-amd64.iso');
  const kernel = await download('kernel-amd64');
  const isoKey = await objectKeyOf(sha('sha256', iso.body));
  const kernelKey = await objectKeyOf(sha('sha256', kernel.body));

  const clean = runScrub();
  expect({ status: clean.status, corrupt: clean.report.corrupt }).toEqual({ status: 0, corrupt: 0 });
  expect(clean.report.checked).toBeGreaterThanOrEqual(2);

  flip16(isoKey);
  const info = (await objects.head(kernelKey))!;
  const forged = Buffer.from(kernel.body);
  forged[100] ^= 1;
  await objects.put(kernelKey, forged, { contentType: info.contentType, metadata: { ...info.metadata, sha512: sha('sha512', forged) } });
  await forgeStatement(objects, kernelKey, forged);

  const found = runScrub();
  expect(found.status).toBe(1);
  expect(found.report.corrupt).toBe(2);
  expect(found.report.quarantined).toBe(2);
  const problems = Object.fromEntries(found.report.problems.map((p) => [p.key, p.problem]));
  expect(problems).toEqual({ [isoKey]: 'digest', [kernelKey]: 'signature' });
  expect(await objects.head(isoKey)).toBeNull();
  expect(await objects.head(kernelKey)).toBeNull();

  const rebuilt = await download('metal-amd64.iso');
  expect(sha('sha256', rebuilt.body)).toBe(sha('sha256', iso.body));
  expect(runScrub().report.corrupt).toBe(0);
});

describe('on S3: the build-workers\' scheduled scrub (maintenance.scrub) and the job on demand', () => {
  let env: S3Factory;
  let jobs: JobClient;
  beforeAll(async () => {
    env = await startFactoryOnS3({ tmpPrefix: 'fault-integrity-s3-', env: () => ({ FACTORY_SCRUB_INTERVAL: '3s', FACTORY_REDIRECT_CACHE_TTL: '0' }) });
    jobs = new JobClient(env.redis.url, 'factory', createLogger('fault-integrity', 'silent'));
  }, 120_000);
  afterAll(async () => {
    await jobs?.close();
    await env?.stop();
  });

  test('forged bytes and recorded digests in the bucket are found by the next scheduled scrub, quarantined, and rebuilt on request', async () => {
    const { factory } = env;
    const bucket = createS3Store({ endpoint: env.s3.endpoint, bucket: env.s3.bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    const created = await fetch(`${factory.url}/schematics`, { method: 'POST', body: 'customization:\n  extraKernelArgs: [integrity=s3]\n' });
    const { id } = (await created.json()) as { id: string };
    const kernelUrl = `${factory.url}/image/${id}/v1.11.3/kernel-amd64`;
    const download = async () => {
      const res = await fetch(kernelUrl, { redirect: 'manual', signal: AbortSignal.timeout(120_000) });
      expect(res.status).toBe(302);
      return Buffer.from(await (await fetch(res.headers.get('location')!)).arrayBuffer());
    };
    const good = await download();
    let key = '';
    for await (const o of bucket.list('assets/')) if (!o.key.endsWith('.sig')) key = o.key;
    expect(key).toMatch(/^assets\/[0-9a-f]{64}$/);

    const onDemand = await jobs.call('maintenance.scrub', {}, { timeoutMs: 60_000 });
    expect(onDemand).toMatchObject({ checked: 1, corrupt: 0, quarantined: 0 });

    const info = (await bucket.head(key))!;
    const forged = Buffer.from(good);
    forged[64] ^= 0x01;
    await bucket.put(key, forged, { contentType: info.contentType, metadata: { ...info.metadata, sha512: sha('sha512', forged) } });
    await forgeStatement(bucket, key, forged);

    const deadline = Date.now() + 20_000;
    while ((await bucket.head(key)) !== null) {
      if (Date.now() > deadline) throw new Error(`the scheduled scrub did not quarantine ${key}\n${factory.logs.get('build-worker')?.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(sha('sha256', (await bucket.getBuffer(`quarantine/${key}`, 1 << 30))!)).toBe(sha('sha256', forged));
    expect(factory.logs.get('build-worker')).toMatch(/"problem":"signature"/);
    expect(sha('sha256', await download())).toBe(sha('sha256', good));
  });
});
