/**
 * The gateway's asset routes with mocked adapters (jobs, object store, catalog): what is answered at the edge, what
 * is looked up in storage, and what is queued — over real HTTP through the gateway's Express app.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { assetKey } from '@factory/asset';
import type { BuildAssetPayload, CatalogView } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import { canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';
import { StorageError } from '@factory/storage';
import type { ObjectStore } from '@factory/storage';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import { AssetRoutes } from '../src/assets';

const yaml = canonicalYaml(parseSchematic('customization:\n  extraKernelArgs: [console=ttyS0]\n  systemExtensions:\n    officialExtensions: [siderolabs/hello]\n'));
const id = schematicId(parseSchematic(yaml));
// a schematic POST /schematics accepts (as the anchor does) but no build can use
const hugeYaml = canonicalYaml(parseSchematic(`customization:\n  extraKernelArgs: [foo=${'y'.repeat(70 * 1024)}]\n  meta:\n    - key: 10\n      value: ${'m'.repeat(1024 * 1024)}\n`));
const hugeId = schematicId(parseSchematic(hugeYaml));
const schematics = new Map([[id, yaml], [hugeId, hugeYaml]]);
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
let storageFault: StorageError | undefined;

beforeAll(async () => {
  const jobs = {
    call: async (name: string, payload: unknown) => {
      if (name === 'schematic.get') {
        const known = schematics.get((payload as { id: string }).id);
        if (known === undefined) throw new FactoryError(404, 'not found');
        return { yaml: known };
      }
      if (name === 'schematic.ping') {
        // what the schematic-store replies when its storage faults
        if (storageFault) throw new FactoryError(503, 'storage is read-only (EROFS)');
        return { storage: 'local' };
      }
      if (name === 'upstream.ping') return {};
      if (name === 'build.asset') {
        const p = payload as BuildAssetPayload;
        builds.push(p);
        const body = Buffer.from(`built ${p.profile.path}`);
        stored.set(`assets/${p.key}`, body);
        return { key: `assets/${p.key}`, size: body.length, sha256: SHA, contentType: 'application/octet-stream' };
      }
      throw new Error(`unexpected job ${name}`);
    },
    workerCount: async () => 1,
    ping: async () => undefined,
  } as unknown as JobCaller;
  const store = {
    kind: 's3',
    head: async (key: string) => {
      if (storageFault) throw storageFault;
      return stored.has(key) ? { size: stored.get(key)!.length, sha256: SHA } : null;
    },
    presignGet: async (key: string) => `https://s3.example/${key}?signed`,
    getBuffer: async (key: string) => stored.get(key) ?? null,
  } as unknown as ObjectStore;
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
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
  const { profile, key } = builds[0];
  expect(profile).toMatchObject({ schematicId: id, version: 'v1.11.3', kind: 'iso', arch: 'amd64', path: 'metal-x86_64.iso', extraKernelArgs: ['console=ttyS0'] });
  expect(profile.extensions).toEqual([{ name: 'siderolabs/hello', digest: `sha256:${'a'.repeat(64)}` }]);
  expect(key).toBe(assetKey(profile));
  expect(res).toMatchObject({ status: 302, location: `https://s3.example/assets/${key}?signed` });
  // stored now: no second build
  expect((await get(`/image/${id}/v1.11.3/metal-amd64.iso`)).status).toBe(302);
  expect(builds).toHaveLength(1);
});

test('PXE: the cmdline asset through the same path, rendered as the iPXE script', async () => {
  const res = await get(`/pxe/${id}/v1.11.3/metal-amd64`);
  expect(res.status).toBe(200);
  expect(builds.map((b) => b.profile.path)).toEqual(['cmdline-metal-amd64']);
  expect(builds[0].profile.extensions).toEqual([]);
  expect(res.body).toContain(`kernel https://pxe.example/image/${id}/v1.11.3/kernel-amd64 built cmdline-metal-amd64`);
});

test('a non-ASCII ?filename= is sent in the RFC 6266 form (it used to be a 500: ERR_INVALID_CHAR)', async () => {
  const res = await fetch(`${base}/image/${id}/v1.11.3/metal-amd64.iso.sha256?filename=%e4%b8%ad`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-disposition')).toBe(`attachment; filename="_.sha256"; filename*=UTF-8''%E4%B8%AD.sha256`);
  expect(await res.text()).toBe(`${SHA}  中\n`);
});

test('a schematic no build can use is refused at the edge: 70 KB kernel argument (PXE used to be a 500), 1 MB META value', async () => {
  const pxe = await get(`/pxe/${hugeId}/v1.11.3/metal-amd64`);
  expect(pxe.status).toBe(400);
  expect(pxe.body).toMatch(/^error enhancing profile from schematic: kernel command line is \d+ bytes, more than the 2047 bytes Linux accepts/);
  expect((await get(`/image/${hugeId}/v1.11.3/metal-amd64.iso`)).status).toBe(400);
  const disk = await get(`/image/${hugeId}/v1.11.3/metal-amd64.raw.xz`);
  expect(disk.status).toBe(400);
  expect(disk.body).toContain('META partition holds');
  expect(builds).toEqual([]);
});

test('a storage fault is a 503 naming it, and /readyz says which (both used to be a bare 500 / "internal server error")', async () => {
  storageFault = new StorageError('UNAVAILABLE', 'local store: head failed: EROFS: read-only file system, stat /srv/x', { cause: Object.assign(new Error('EROFS'), { code: 'EROFS' }) });
  try {
    const res = await get(`/image/${id}/v1.11.3/metal-amd64.iso`);
    expect(res).toMatchObject({ status: 503, body: 'storage is read-only (EROFS)\n' });
    const ready = await get('/readyz');
    expect(ready).toMatchObject({ status: 503, body: 'not ready: storage is read-only (EROFS)\n' });
  } finally {
    storageFault = undefined;
  }
});
