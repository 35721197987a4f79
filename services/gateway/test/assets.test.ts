/**
 * The gateway's asset routes with mocked adapters (jobs, object store, catalog): what is answered at the edge, what
 * is looked up in storage, and what is queued — over real HTTP through the gateway's Express app.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { assetKey, assetSignatureKey, AssetVerifier, encodeSignatureFile, integrityEvents, quarantineKey, statementBytes } from '@factory/asset';
import type { BuildAssetPayload, CatalogView } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import { canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';
import { createLocalStore, LocalObjectStore, ObjectStore } from '@factory/storage';
import { createLogger, createMetricsRegistry, Registry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import { AssetRoutes } from '../src/assets';

const yaml = canonicalYaml(parseSchematic('customization:\n  extraKernelArgs: [console=ttyS0]\n  systemExtensions:\n    officialExtensions: [siderolabs/hello]\n'));
const id = schematicId(parseSchematic(yaml));
const digest = (algo: 'sha256' | 'sha512', b: Buffer | string) => createHash(algo).update(b).digest('hex');
/** The signing service's key: the mocked build signs with it, the gateway verifies with its public half. */
const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const catalog: CatalogView = {
  versions: async () => ['v1.11.3'],
  extensions: async (tag) => {
    if (tag !== 'v1.11.3') throw new FactoryError(404, `version ${tag.slice(1)} is not available`);
    return [{ name: 'siderolabs/hello', ref: 'r', digest: `sha256:${'a'.repeat(64)}`, author: '', description: '' }];
  },
  overlays: async () => [],
};

let server: http.Server;
let base: string;
const builds: BuildAssetPayload[] = [];
const storageDir = mkdtempSync(path.join(os.tmpdir(), 'gateway-assets-'));
/** Real local storage underneath; the redirecting variant below only adds presigned URLs. */
const objects = createLocalStore(storageDir) as LocalObjectStore;

/**
 * What the build-worker and the signing service do: store the bytes, then the signature file over their size and
 * SHA-256 (`earlier`: a statement of an earlier version, which names the SHA-512 too).
 */
async function publish(objectKey: string, body: Buffer, o: { earlier?: boolean } = {}): Promise<void> {
  await objects.put(objectKey, body);
  const statement = { key: objectKey, size: body.length, sha256: digest('sha256', body), ...(o.earlier ? { sha512: digest('sha512', body) } : {}) };
  await objects.put(assetSignatureKey(objectKey), encodeSignatureFile(statement, sign('sha256', statementBytes(statement), signingKey.privateKey).toString('base64')));
}

/** Schematic lookups asked of the (mocked) schematic store. */
let schematicLookups = 0;
const jobs = {
  call: async (name: string, payload: unknown) => {
    if (name === 'schematic.get') {
      schematicLookups++;
      await new Promise((r) => setTimeout(r, 5)); // a round trip: concurrent requests overlap it
      if ((payload as { id: string }).id !== id) throw new FactoryError(404, 'not found');
      return { yaml };
    }
    if (name === 'build.asset') {
      const p = payload as BuildAssetPayload;
      builds.push(p);
      const body = Buffer.from(`built ${p.spec.path}`);
      await publish(`assets/${p.key}`, body);
      return { key: `assets/${p.key}`, size: body.length, sha256: digest('sha256', body), contentType: 'application/octet-stream' };
    }
    if (name === 'signing.publicKey') return { pem: signingKey.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
    throw new Error(`unexpected job ${name}`);
  },
  workerCount: async () => 1,
  ping: async () => undefined,
} as unknown as JobCaller;

/** The gateway's app over the mocked jobs and `store`, on a loopback port. */
async function startGateway(store: ObjectStore, metrics: Registry = createMetricsRegistry('gateway-test')): Promise<{ server: http.Server; base: string }> {
  const logger = createLogger('gateway-test', 'silent');
  const verifier = new AssetVerifier({
    store,
    publicKey: async () => signingKey.publicKey,
    events: integrityEvents(metrics, logger),
  });
  const assets = new AssetRoutes({
    jobs,
    catalog,
    store,
    verifier,
    externalUrl: 'https://factory.example',
    externalPxeUrl: 'https://pxe.example',
    presignTtlSeconds: 3600,
    buildTimeoutMs: 5000,
    redirectCacheMs: 0,
    serverTag: 'test',
  });
  const app = createApp({ jobs, assets, logger, metrics, serverTag: 'test', allowedOrigins: ['*'], maxSchematicBytes: 1024 });
  const srv = http.createServer(app);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { server: srv, base: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` };
}

/** The same storage as an S3 store would answer: presigned URLs, so GET redirects. */
const redirecting = Object.assign(Object.create(objects) as LocalObjectStore, {
  kind: 's3',
  presignGet: async (key: string) => `https://s3.example/${key}?signed`,
}) as unknown as ObjectStore;

beforeAll(async () => {
  ({ server, base } = await startGateway(redirecting));
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(storageDir, { recursive: true, force: true });
});
beforeEach(() => builds.splice(0));

const get = async (p: string, init?: RequestInit) => {
  const res = await fetch(`${base}${p}`, { redirect: 'manual', ...init });
  return { status: res.status, body: await res.text(), location: res.headers.get('location') };
};

test('permanent errors are answered without a build', async () => {
  expect(await get(`/image/${id}/v1.11.3/metal-amd64-secureboot.iso`)).toMatchObject({ status: 400, body: 'error enhancing profile from schematic: secure boot is disabled\n' });
  expect(await get(`/image/${id}/v1.4.0/metal-amd64.iso`)).toMatchObject({ status: 404, body: 'error enhancing profile from schematic: error getting official extensions: version 1.4.0 is not available\n' });
  expect(await get(`/image/${'1'.repeat(64)}/v1.11.3/metal-amd64.iso`)).toMatchObject({ status: 404 });
  expect(builds).toEqual([]);
});

test('a missing asset is one build of the resolved profile, then a redirect to storage', async () => {
  const res = await get(`/image/${id}/1.11.3/metal-x86_64.iso`);
  expect(builds).toHaveLength(1);
  const { spec, key } = builds[0];
  expect(spec).toMatchObject({ schematicId: id, version: 'v1.11.3', kind: 'iso', arch: 'amd64', path: 'metal-x86_64.iso' });
  expect(spec.extensions).toEqual([{ name: 'siderolabs/hello', digest: `sha256:${'a'.repeat(64)}` }]);
  // References only: the worker reads the schematic by ID; none of its content rides in Redis.
  expect(Object.keys(spec).sort()).toEqual(['arch', 'extensions', 'kind', 'outFormat', 'path', 'platform', 'schematicId', 'secureboot', 'version']);
  expect(JSON.stringify(builds[0])).not.toContain('console=ttyS0');
  expect(key).toBe(assetKey(spec));
  expect(res).toMatchObject({ status: 302, location: `https://s3.example/assets/${key}?signed` });
  // stored now: no second build
  expect((await get(`/image/${id}/v1.11.3/metal-amd64.iso`)).status).toBe(302);
  expect(builds).toHaveLength(1);
});

test('concurrent requests for one missing asset share one lookup and one build call', async () => {
  const answers = await Promise.all(Array.from({ length: 20 }, () => get(`/image/${id}/v1.11.3/aws-amd64.raw.xz`)));
  expect(new Set(answers.map((a) => `${a.status} ${a.location}`)).size).toBe(1);
  expect(answers[0].status).toBe(302);
  // the job mock does not de-duplicate by job ID (Redis does): 20 calls would be 20 builds here
  expect(builds.map((b) => b.spec.path)).toEqual(['aws-amd64.raw.xz']);
});

test("concurrent first requests naming a schematic this gateway has not seen share one schematic lookup", async () => {
  const fresh = await startGateway(redirecting);
  try {
    const before = schematicLookups;
    const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${fresh.base}/image/${id}/v1.11.3/aws-amd64.raw.xz`, { redirect: 'manual' })));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(302));
    expect(schematicLookups - before).toBe(1);
  } finally {
    await new Promise((r) => fresh.server.close(r));
  }
});

test('PXE: the cmdline asset through the same path, rendered as the iPXE script', async () => {
  const res = await get(`/pxe/${id}/v1.11.3/metal-amd64`);
  expect(res.status).toBe(200);
  expect(builds.map((b) => b.spec.path)).toEqual(['cmdline-metal-amd64']);
  expect(builds[0].spec.extensions).toEqual([]);
  expect(res.body).toContain(`kernel https://pxe.example/image/${id}/v1.11.3/kernel-amd64 built cmdline-metal-amd64`);
});

describe('conditional requests against the asset ETag ("<sha256>")', () => {
  const ETAG = `"${digest('sha256', 'built kernel-amd64')}"`;
  const asset = `/image/${id}/v1.11.3/kernel-amd64`;
  let local: { server: http.Server; base: string };
  beforeAll(async () => {
    // local storage: no presigned URLs, the gateway streams (as for the PXE host)
    local = await startGateway(objects);
    await fetch(`${local.base}${asset}`); // built and stored
  });
  afterAll(() => new Promise((r) => local.server.close(r)));
  const at = (headers: Record<string, string>, method = 'GET') => fetch(`${local.base}${asset}`, { method, headers, redirect: 'manual' });

  test('If-None-Match matching: 304 without a body, with the ETag (GET and HEAD)', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await at({ 'If-None-Match': `"other", ${ETAG}` }, method);
      expect(res.status).toBe(304);
      expect(res.headers.get('etag')).toBe(ETAG);
      expect(await res.text()).toBe('');
    }
    expect((await at({ 'If-None-Match': '"other"' })).status).toBe(200);
  });

  test('If-Match not matching: 412 precondition failed (Go http.Error style); matching: the body', async () => {
    const res = await at({ 'If-Match': '"other"', Range: 'bytes=0-1' });
    expect(res.status).toBe(412);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe('precondition failed\n');
    const ok = await at({ 'If-Match': ETAG });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('built kernel-amd64');
  });

  test('If-Range: a matching validator gives the 206, a mismatched one the whole body (never spliced bytes)', async () => {
    const partial = await at({ Range: 'bytes=0-4', 'If-Range': ETAG });
    expect(partial.status).toBe(206);
    expect(partial.headers.get('content-range')).toBe('bytes 0-4/18');
    expect(await partial.text()).toBe('built');
    const stale = await at({ Range: 'bytes=0-4', 'If-Range': '"stale"' });
    expect(stale.status).toBe(200);
    expect(stale.headers.get('content-range')).toBeNull();
    expect(await stale.text()).toBe('built kernel-amd64');
  });

  test('before the redirect to storage: 304 instead of a 302, 412 instead of a 302', async () => {
    const redirectable = `${base}${asset}`;
    const notModified = await fetch(redirectable, { headers: { 'If-None-Match': ETAG }, redirect: 'manual' });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get('location')).toBeNull();
    const failed = await fetch(redirectable, { headers: { 'If-Match': '"other"' }, redirect: 'manual' });
    expect(failed.status).toBe(412);
    expect((await fetch(redirectable, { headers: { 'If-None-Match': '"other"' }, redirect: 'manual' })).status).toBe(302);
  });
});

describe('integrity: nothing is served that does not match its signed, recorded digest', () => {
  const asset = `/image/${id}/v1.11.3/kernel-amd64`;
  const body = 'built kernel-amd64';
  let local: { server: http.Server; base: string };
  let metrics: Registry;
  let reads: string[];
  beforeAll(async () => {
    metrics = createMetricsRegistry('gateway-integrity-test');
    // counts whole-object reads: verification streams the object; a range read or a checksum answer does not
    const counting = Object.assign(Object.create(objects) as LocalObjectStore, {
      get: (key: string, range?: { start: number; end?: number }) => {
        if (!range) reads.push(key);
        return objects.get(key, range);
      },
    }) as unknown as ObjectStore;
    local = await startGateway(counting, metrics);
  });
  afterAll(() => new Promise((r) => local.server.close(r)));
  beforeEach(() => (reads = []));
  const fetchText = async (p: string, gateway = local) => {
    const res = await fetch(`${gateway.base}${p}`, { redirect: 'manual' });
    return { status: res.status, body: await res.text(), etag: res.headers.get('etag'), location: res.headers.get('location') };
  };
  /** The kernel's object key (its recorded digest is that of `body`). */
  const objectKey = async () => {
    for await (const o of objects.list('assets/')) if (o.etag === digest('sha256', body)) return o.key;
    throw new Error('the kernel is not stored');
  };
  /** XORs 16 bytes of the stored object in place (its recorded digest stays). */
  const flip16 = (key: string) => {
    const fd = openSync(objects.pathFor(key), 'r+');
    try {
      writeSync(fd, Buffer.alloc(16, 0x5a), 0, 16, Math.min(2, fstatSync(fd).size));
    } finally {
      closeSync(fd);
    }
  };

  test('verified once per stored version: the first serve reads the object, later ones do not', async () => {
    expect((await fetchText(asset)).body).toBe(body);
    const key = await objectKey();
    expect(reads.filter((k) => k === key)).toHaveLength(2); // verification, then the body
    reads = [];
    expect((await fetchText(asset)).body).toBe(body);
    expect(reads).toEqual([key]); // the body only
  });

  test('.sha256 comes from the signed record; .sha512 is derived once from stored bytes that hash to it, then remembered', async () => {
    await fetchText(asset);
    reads = [];
    expect(await fetchText(`${asset}.sha256`)).toMatchObject({ status: 200, body: `${digest('sha256', body)}  kernel-amd64\n` });
    expect(reads).toEqual([]);
    const key = await objectKey();
    const [first, second] = await Promise.all([fetchText(`${asset}.sha512`), fetchText(`${asset}.sha512`)]);
    expect(first).toMatchObject({ status: 200, body: `${digest('sha512', body)}  kernel-amd64\n` });
    expect(second.body).toBe(first.body);
    expect(reads).toEqual([key]); // two concurrent requests, one read
    expect((await fetchText(`${asset}.sha512?filename=k`)).body).toBe(`${digest('sha512', body)}  k\n`);
    expect(reads).toEqual([key]);
  });

  test('an asset signed by an earlier version (its statement names the SHA-512): .sha512 from the record, no read', async () => {
    await fetchText(asset);
    const key = await objectKey();
    const recorded = 'e'.repeat(128); // not the bytes' SHA-512: proves where the answer comes from
    const statement = { key, size: body.length, sha256: digest('sha256', body), sha512: recorded };
    await objects.put(assetSignatureKey(key), encodeSignatureFile(statement, sign('sha256', statementBytes(statement), signingKey.privateKey).toString('base64')));
    reads = [];
    expect((await fetchText(`${asset}.sha512`)).body).toBe(`${recorded}  kernel-amd64\n`);
    expect(reads.filter((k) => k === key).length).toBeLessThanOrEqual(1); // the new signature file: verified again, at most once
    await publish(key, Buffer.from(body)); // back to this version's statement
  });

  test('bytes corrupted after they were verified (same stored version): .sha512 finds them, quarantines them and answers for the rebuilt asset', async () => {
    // a gateway of its own: nothing derived yet (a SHA-512 once derived is remembered for its SHA-256)
    const fresh = await startGateway(Object.assign(Object.create(objects) as LocalObjectStore, {}) as unknown as ObjectStore, createMetricsRegistry('gateway-sha512-test'));
    const ask = (p: string) => fetchText(p, fresh);
    await ask(asset);
    const key = await objectKey();
    const before = builds.length;
    const file = objects.pathFor(key);
    const { atime, mtime } = statSync(file);
    flip16(key);
    utimesSync(file, atime, mtime); // the validator (size, ETag, mtime) unchanged: the verifier's memory still vouches
    const corrupted = (await objects.getBuffer(key, 1024))!;
    try {
      const res = await ask(`${asset}.sha512`);
      expect(res).toMatchObject({ status: 200, body: `${digest('sha512', body)}  kernel-amd64\n` });
      expect(builds.length).toBe(before + 1);
      expect((await objects.getBuffer(quarantineKey(key), 1024))!.equals(corrupted)).toBe(true);
      expect((await objects.getBuffer(key, 1024))!.toString()).toBe(body);
    } finally {
      await new Promise((r) => fresh.server.close(r));
    }
  });

  test('flipped bytes: quarantined and rebuilt; the client gets the good bytes and a .sha512 of them', async () => {
    await fetchText(asset);
    const key = await objectKey();
    const before = builds.length;
    flip16(key);
    const corrupted = (await objects.getBuffer(key, 1024))!;
    expect(corrupted.toString()).not.toBe(body);

    const res = await fetchText(asset);
    expect(res).toMatchObject({ status: 200, body, etag: `"${digest('sha256', body)}"` });
    expect(builds.length).toBe(before + 1);
    expect((await objects.getBuffer(quarantineKey(key), 1024))!.equals(corrupted)).toBe(true);
    expect((await fetchText(`${asset}.sha512`)).body).toBe(`${digest('sha512', body)}  kernel-amd64\n`);
    const text = await metrics.metrics();
    expect(text).toMatch(/^image_factory_assets_corrupt_total\{problem="digest",service="gateway-integrity-test"\} 1$/m);
    expect(text).toMatch(/^image_factory_assets_quarantined_total\{service="gateway-integrity-test"\} 1$/m);
  });

  test("bytes and the statement's digests both rewritten (no key to sign them): the signature check refuses them", async () => {
    await fetchText(asset);
    const key = await objectKey();
    const forged = Buffer.from('forged kernel-amd64');
    await objects.put(key, forged, { metadata: { sha512: digest('sha512', forged) } });
    const file = JSON.parse((await objects.getBuffer(assetSignatureKey(key), 1 << 14))!.toString());
    file.statement = { ...file.statement, size: forged.length, sha256: digest('sha256', forged), sha512: digest('sha512', forged) };
    await objects.put(assetSignatureKey(key), Buffer.from(JSON.stringify(file)));
    const res = await fetchText(asset);
    expect(res).toMatchObject({ status: 200, body });
    expect((await objects.getBuffer(quarantineKey(key), 1024))!.equals(forged)).toBe(true);
    expect(await metrics.metrics()).toMatch(/^image_factory_assets_corrupt_total\{problem="signature",service="gateway-integrity-test"\} 1$/m);
  });

  test('S3: a corrupted object is never redirected to — it is rebuilt first', async () => {
    await fetchText(asset, { server, base });
    const key = await objectKey();
    flip16(key);
    const res = await fetchText(asset, { server, base });
    expect(res).toMatchObject({ status: 302, location: `https://s3.example/${key}?signed` });
    expect((await objects.getBuffer(key, 1024))!.toString()).toBe(body);
  });

  test('an asset without its signature file is not published: the build job completes it', async () => {
    await fetchText(asset);
    const key = await objectKey();
    const before = builds.length;
    await objects.delete(assetSignatureKey(key));
    expect((await fetchText(asset)).body).toBe(body);
    expect(builds.length).toBe(before + 1);
  });
});

test('a client gone while the object was being opened: the stored object is released at once, not at garbage collection', async () => {
  const asset = `/image/${id}/v1.11.3/kernel-arm64`;
  const plain = await startGateway(objects);
  try {
    expect((await fetch(`${plain.base}${asset}`)).status).toBe(200);
    let opened: NodeJS.ReadableStream | undefined;
    let clientGone!: () => void;
    const gone = new Promise<void>((r) => (clientGone = r));
    // once armed, the store answers get() only after the client has disconnected
    let armed = false;
    const slow = Object.assign(Object.create(objects) as LocalObjectStore, {
      get: async (key: string, range?: { start: number; end: number }) => {
        if (!armed) return objects.get(key, range);
        await gone;
        await new Promise((r) => setTimeout(r, 50));
        const got = await objects.get(key, range);
        opened = got?.body;
        return got;
      },
    }) as unknown as ObjectStore;
    const gw = await startGateway(slow);
    try {
      // this gateway's first serve verifies the stored version (reads it whole); the next one only streams it
      expect((await fetch(`${gw.base}${asset}`)).status).toBe(200);
      armed = true;
      const req = http.get(`${gw.base}${asset}`);
      req.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, 100));
      req.destroy();
      clientGone();
      for (let i = 0; i < 100 && !(opened as { destroyed?: boolean } | undefined)?.destroyed; i++) await new Promise((r) => setTimeout(r, 20));
      expect(opened).toBeDefined();
      expect((opened as unknown as { destroyed: boolean }).destroyed).toBe(true);
    } finally {
      await new Promise((r) => gw.server.close(r));
    }
  } finally {
    await new Promise((r) => plain.server.close(r));
  }
});
