/**
 * Issue 2 black-box proofs: the five services as real processes on real Redis, a real S3 protocol server (s3rver)
 * and the demo Talos releases served by Debian's docker-registry, with signature verification on.
 */
import path from 'node:path';
import { createPublicKey } from 'node:crypto';
import { startRedis, startRegistry, startS3, ProcHandle } from '../support/procs';
import { ensureDemoReleases, RunningFactory, startServices } from '../support/factory';

jest.setTimeout(180_000);

let redis: ProcHandle & { url: string };
let s3: ProcHandle & { endpoint: string; bucket: string };
let registry: ProcHandle & { host: string };
let factory: RunningFactory;
let demoDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  demoDir = ensureDemoReleases();
  [redis, s3, registry] = await Promise.all([startRedis(), startS3(), startRegistry(path.join(demoDir, 'registry'))]);
  env = {
    REDIS_URL: redis.url,
    S3_BUCKET: s3.bucket,
    S3_ENDPOINT: s3.endpoint,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    FACTORY_DATA_DIR: path.join(redis.dir, 'data'),
    FACTORY_UPSTREAM_REGISTRY: registry.host,
    FACTORY_UPSTREAM_INSECURE: 'true',
    FACTORY_UPSTREAM_PUBLIC_KEY: path.join(demoDir, 'cosign.pub'),
    FACTORY_BROKEN_TALOS_VERSIONS: '1.10.0,1.9.5',
  };
  factory = await startServices(env);
});

afterAll(async () => {
  await factory?.stop();
  await Promise.all([redis?.stop(), s3?.stop(), registry?.stop()]);
});

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(`${factory.url}/schematics`, { method: 'POST', body, headers: { 'Content-Type': 'application/yaml', ...headers } });

describe('health and identity', () => {
  test('healthz, readyz, Server and X-Request-ID', async () => {
    const h = await fetch(`${factory.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.text()).toBe('');
    expect(h.headers.get('server')).toMatch(/^Image Factory v/);
    expect(h.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await fetch(`${factory.url}/healthz`, { headers: { 'X-Request-ID': 'abc-123' } });
    expect(echoed.headers.get('x-request-id')).toBe('abc-123');
    expect((await fetch(`${factory.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${factory.url}/healthz`, { method: 'HEAD' })).status).toBe(200);
  });

  test('router texts: 404 page not found, 405 with Allow', async () => {
    const nf = await fetch(`${factory.url}/nope`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toBe('404 page not found\n');
    const na = await fetch(`${factory.url}/versions`, { method: 'HEAD' });
    expect(na.status).toBe(405);
    expect(na.headers.get('allow')).toContain('GET');
    const np = await fetch(`${factory.url}/versions`, { method: 'POST' });
    expect(np.status).toBe(405);
    expect(await np.text()).toBe('Method Not Allowed\n');
  });

  test('CORS as rs/cors: preflight echoes method and header, GET exposes headers', async () => {
    const pre = await fetch(`${factory.url}/versions`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://ui.example', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'Cache-Control' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET');
    expect(pre.headers.get('access-control-allow-headers')).toBe('cache-control');
    const get = await fetch(`${factory.url}/versions`, { headers: { Origin: 'https://ui.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBe('*');
    expect(get.headers.get('access-control-expose-headers')).toBe('Content-Disposition, Content-Length, Content-Type');
  });

  test('metrics', async () => {
    const m = await fetch(`${factory.url}/metrics`);
    expect(m.status).toBe(200);
    expect(await m.text()).toContain('http_request_duration_seconds_bucket');
  });
});

describe('schematics', () => {
  test('create returns the anchor bytes; get returns canonical YAML', async () => {
    const res = await post('{"customization":{"extraKernelArgs":["vga=791"]}}', { 'Content-Type': 'application/json' });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe(
      '{"id":"eea1f9534c46d95c4715a2f13d17eacb927c13a42ef087c79b22c3bd0c49d073","schematic":"customization:\\n    extraKernelArgs:\\n        - vga=791\\n"}\n',
    );
    const got = await fetch(`${factory.url}/schematics/eea1f9534c46d95c4715a2f13d17eacb927c13a42ef087c79b22c3bd0c49d073`);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/yaml');
    expect(await got.text()).toBe('customization:\n    extraKernelArgs:\n        - vga=791\n');
  });

  test.each([
    ['{}', '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba'],
    ['customization:\n  extraKernelArgs: [noapic, nolapic]\n', '9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c'],
    ['customization:\n  meta:\n    - key: 0xa\n      value: foo\n', 'd308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f'],
    ['overlay:\n  image: siderolabs/sbc-raspberrypi\n  name: rpi_generic\n', 'ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9'],
    ['customization:\n  bootloader: sd-boot\n', '9ed5fecdacb36b5c5427b87d409f1065cfb2df69b0f71c58b868d9d466d8dab3'],
  ])('ID of %j', async (body, id) => {
    const res = await post(body);
    expect(res.status).toBe(201);
    expect(((await res.json()) as { id: string }).id).toBe(id);
  });

  test('idempotent re-post', async () => {
    const a = await (await post('customization:\n  extraKernelArgs: [a]\n')).json();
    const b = await (await post('{"customization":{"extraKernelArgs":["a"]}}')).json();
    expect(a).toEqual(b);
  });

  test.each([
    ['', 'EOF'],
    ['something: 1\n', 'yaml: construct errors: line 1: field something not found in type schematic.Schematic'],
    ['customization:\n  meta:\n    - key: 256\n      value: x\n', 'yaml: construct errors: line 3: cannot construct !!int `256` into uint8'],
    ['customization:\n  bootloader: auto\n', 'yaml: construct errors: line 2: auto does not belong to BootloaderKind values'],
    ['owner: alice\n', 'owner field is only supported in Enterprise edition'],
  ])('400 for %j', async (body, message) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe(`${message}\n`);
  });

  test('413 for an oversized body', async () => {
    const res = await post(`customization:\n  extraKernelArgs:\n${'    - x\n'.repeat(200_000)}`);
    expect(res.status).toBe(413);
    expect(await res.text()).toMatch(/^request body too large/);
  });

  test('404 for unknown and malformed IDs', async () => {
    for (const id of ['a'.repeat(64), 'not-an-id', 'A'.repeat(64)]) {
      const res = await fetch(`${factory.url}/schematics/${id}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe('schematic not found\n');
    }
  });
});

describe('versions, extensions, overlays from the demo upstream (signatures verified)', () => {
  test('versions are filtered as the anchor does', async () => {
    const res = await fetch(`${factory.url}/versions`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('["v1.7.7","v1.11.3","v1.12.2"]\n');
    const broken = await fetch(`${factory.url}/versions?broken=true`);
    expect(await broken.json()).toEqual(['v1.10.0', 'v1.9.5']);
    expect(await (await fetch(`${factory.url}/versions?broken=1`)).json()).toEqual(['v1.7.7', 'v1.11.3', 'v1.12.2']);
  });

  test('extensions: five keys, configured registry in ref, per-version catalogs', async () => {
    const res = await fetch(`${factory.url}/version/v1.12.2/extensions/official`);
    expect(res.status).toBe(200);
    const list = (await res.json()) as Array<Record<string, string>>;
    for (const e of list) {
      expect(Object.keys(e)).toEqual(['name', 'ref', 'digest', 'author', 'description']);
      expect(e.ref.startsWith(`${registry.host}/siderolabs/`)).toBe(true);
      expect(e.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
    const names = list.map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module', 'siderolabs/gasket-driver']));
    const older = (await (await fetch(`${factory.url}/version/1.11.3/extensions/official`)).json()) as Array<{ name: string }>;
    expect(older.map((e) => e.name)).not.toContain('siderolabs/gasket-driver');
    expect(older.map((e) => e.name)).toContain('siderolabs/hello');
  });

  test('extensions: 404 for a version not offered, 400 for a malformed one', async () => {
    const nf = await fetch(`${factory.url}/version/v1.5.0-alpha.0/extensions/official`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toBe('version 1.5.0-alpha.0 is not available\n');
    const bad = await fetch(`${factory.url}/version/abc/extensions/official`);
    expect(bad.status).toBe(400);
  });

  test('overlays: catalog for >= 1.7, [] before without an availability check', async () => {
    const list = (await (await fetch(`${factory.url}/version/v1.7.7/overlays/official`)).json()) as Array<Record<string, string>>;
    expect(list).toEqual([{ name: 'fixture_board', image: 'siderolabs/sbc-fixture', ref: 'ghcr.io/siderolabs/sbc-fixture:v0.1.0', digest: expect.stringMatching(/^sha256:/) }]);
    const old = await fetch(`${factory.url}/version/v1.6.0/overlays/official`);
    expect(old.status).toBe(200);
    expect(await old.text()).toBe('[]\n');
    expect((await fetch(`${factory.url}/version/v1.8.0/overlays/official`)).status).toBe(404);
  });
});

describe('keys', () => {
  test('cosign public key from the signing service', async () => {
    const res = await fetch(`${factory.url}/oci/cosign/signing-key.pub`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-pem-file');
    const pem = await res.text();
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(createPublicKey(pem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });
});

describe('durability', () => {
  test('schematics survive a restart of every process, Redis included', async () => {
    const body = 'customization:\n  extraKernelArgs: [survives-restart]\n';
    const { id, schematic } = (await (await post(body)).json()) as { id: string; schematic: string };
    await factory.stop();
    await redis.stop();
    redis = await startRedis();
    factory = await startServices({ ...env, REDIS_URL: redis.url });
    const got = await fetch(`${factory.url}/schematics/${id}`);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe(schematic);
    // The object store holds it, not Redis: the new Redis has never seen it. (s3rver serves unsigned GETs.)
    const obj = await fetch(`${s3.endpoint}/${s3.bucket}/schematics/${id}.yaml`);
    expect(obj.status).toBe(200);
    expect(await obj.text()).toBe(schematic);
  });
});

describe('cache-hit redirects', () => {
  test('a repeated GET of a published asset is answered from memory with the same presigned URL', async () => {
    const { id } = (await (await post('customization:\n  extraKernelArgs: [fast-path]\n')).json()) as { id: string };
    const url = `${factory.url}/image/${id}/v1.11.3/kernel-amd64`;
    const first = await fetch(url, { redirect: 'manual' });
    expect(first.status).toBe(302);
    const second = await fetch(url, { redirect: 'manual', headers: { 'X-Request-ID': 'again' } });
    expect(second.status).toBe(302);
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(second.headers.get('server')).toMatch(/^Image Factory /);
    expect(second.headers.get('x-request-id')).toBe('again');
    const metrics = await (await fetch(`${factory.url}/metrics`)).text();
    expect(metrics).toMatch(/image_factory_assets_delivered_total\{cached="true"[^}]*\} [1-9]/);
  });
});
