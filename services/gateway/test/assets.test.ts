/**
 * The gateway's asset routes with mocked adapters (jobs, object store, catalog): what is answered at the edge, what
 * is looked up in storage, and what is queued — over real HTTP through the gateway's Express app.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { assetKey } from '@factory/asset';
import type { BuildAssetPayload, CatalogView } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import { canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';
import type { ObjectStore } from '@factory/storage';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import { AssetRoutes } from '../src/assets';

const yaml = canonicalYaml(parseSchematic('customization:\n  extraKernelArgs: [console=ttyS0]\n  systemExtensions:\n    officialExtensions: [siderolabs/hello]\n'));
const id = schematicId(parseSchematic(yaml));
const SHA = 'c'.repeat(64);

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
const stored = new Map<string, Buffer>();

const jobs = {
  call: async (name: string, payload: unknown) => {
    if (name === 'schematic.get') {
      if ((payload as { id: string }).id !== id) throw new FactoryError(404, 'not found');
      return { yaml };
    }
    if (name === 'build.asset') {
      const p = payload as BuildAssetPayload;
      builds.push(p);
      const body = Buffer.from(`built ${p.spec.path}`);
      stored.set(`assets/${p.key}`, body);
      return { key: `assets/${p.key}`, size: body.length, sha256: SHA, contentType: 'application/octet-stream' };
    }
    throw new Error(`unexpected job ${name}`);
  },
  workerCount: async () => 1,
  ping: async () => undefined,
} as unknown as JobCaller;

/** The gateway's app over the mocked jobs and `store`, on a loopback port. */
async function startGateway(store: ObjectStore): Promise<{ server: http.Server; base: string }> {
  const assets = new AssetRoutes({
    jobs,
    catalog,
    store,
    externalUrl: 'https://factory.example',
    externalPxeUrl: 'https://pxe.example',
    presignTtlSeconds: 3600,
    buildTimeoutMs: 5000,
    redirectCacheMs: 0,
    serverTag: 'test',
  });
  const app = createApp({ jobs, assets, logger: createLogger('gateway-test', 'silent'), metrics: createMetricsRegistry('gateway-test'), serverTag: 'test', allowedOrigins: ['*'], maxSchematicBytes: 1024 });
  const srv = http.createServer(app);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { server: srv, base: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` };
}

const head = async (key: string) => (stored.has(key) ? { size: stored.get(key)!.length, sha256: SHA } : null);

beforeAll(async () => {
  const store = {
    kind: 's3',
    head,
    presignGet: async (key: string) => `https://s3.example/${key}?signed`,
    getBuffer: async (key: string) => stored.get(key) ?? null,
  } as unknown as ObjectStore;
  ({ server, base } = await startGateway(store));
});

afterAll(() => new Promise((r) => server.close(r)));
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

test('PXE: the cmdline asset through the same path, rendered as the iPXE script', async () => {
  const res = await get(`/pxe/${id}/v1.11.3/metal-amd64`);
  expect(res.status).toBe(200);
  expect(builds.map((b) => b.spec.path)).toEqual(['cmdline-metal-amd64']);
  expect(builds[0].spec.extensions).toEqual([]);
  expect(res.body).toContain(`kernel https://pxe.example/image/${id}/v1.11.3/kernel-amd64 built cmdline-metal-amd64`);
});

describe('conditional requests against the asset ETag ("<sha256>")', () => {
  const ETAG = `"${SHA}"`;
  const asset = `/image/${id}/v1.11.3/kernel-amd64`;
  let local: { server: http.Server; base: string };
  beforeAll(async () => {
    // local storage: no presigned URLs, the gateway streams (as for the PXE host)
    const store = {
      kind: 'local',
      head,
      presignGet: async () => null,
      get: async (key: string, range?: { start: number; end: number }) => {
        const body = stored.get(key);
        if (!body) return null;
        return { body: Readable.from([range ? body.subarray(range.start, range.end + 1) : body]) };
      },
    } as unknown as ObjectStore;
    local = await startGateway(store);
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
