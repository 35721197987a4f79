/**
 * Issue 13 item 4: `GET /talosctl/<version>`, `GET|HEAD /talosctl/<version>/<file>` and `GET /llms.txt` against the
 * five services on Redis, s3rver and the demo releases (signature verification on). The binaries are compared with
 * the files of the demo `talosctl-all` image as skopeo and tar read them from the demo registry.
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/procs';
import { S3Factory, startFactoryOnS3 } from '../support/factory';

jest.setTimeout(180_000);

const MAX_ASSET_BYTES = 64;
let env: S3Factory;
let workerMetrics: number;
let tmp: string;

beforeAll(async () => {
  workerMetrics = await freePort();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'talosctl-test-'));
  env = await startFactoryOnS3({
    tmpPrefix: 'talosctl-',
    // requests to the PXE host are streamed, never redirected (as for /image)
    env: (port) => ({ FACTORY_EXTERNAL_PXE_URL: `http://pxe.test:${port}/` }),
    // FACTORY_MAX_ASSET_BYTES between the demo binaries' sizes (62 and 63 bytes for linux-amd64 and darwin-arm64 of
    // v1.12.2, 68 for windows-amd64.exe): the limit applies to extracted binaries as to built assets
    perService: { 'build-worker': { METRICS_PORT: String(workerMetrics), FACTORY_MAX_ASSET_BYTES: String(MAX_ASSET_BYTES) } },
  });
});

afterAll(async () => {
  await env?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const url = (p: string) => `${env.factory.url}${p}`;

/** The root files of the demo registry's talosctl-all:<version> (amd64), read with skopeo and tar: name → bytes. */
function imageFiles(version: string): Map<string, Buffer> {
  const layout = path.join(tmp, `layout-${version}`);
  const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', '--override-arch', 'amd64', '--override-os', 'linux', `docker://${env.upstream.host}/siderolabs/talosctl-all:${version}`, `oci:${layout}:x`], { encoding: 'utf8', timeout: 120_000 });
  if (copy.status !== 0) throw new Error(`skopeo copy: ${copy.stderr}`);
  const blob = (digest: string) => path.join(layout, 'blobs', 'sha256', digest.replace('sha256:', ''));
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const root = path.join(tmp, `root-${version}`);
  spawnSync('mkdir', ['-p', root]);
  for (const layer of manifest.layers) {
    const untar = spawnSync('tar', ['-x', '-f', blob(layer.digest), '-C', root], { encoding: 'utf8' });
    if (untar.status !== 0) throw new Error(`tar: ${untar.stderr}`);
  }
  return new Map(readdirSync(root).map((name) => [name, readFileSync(path.join(root, name))]));
}

/** GET with a Host header of our choosing (fetch does not allow one). */
function getWithHost(p: string, host: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: env.factory.port, path: p, headers: { Host: host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function extractions(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${workerMetrics}/metrics`)).text();
  const m = /image_factory_assets_built_total\{[^}]*kind="talosctl"[^}]*outcome="ok"[^}]*\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('GET /talosctl/<version>', () => {
  test.each(['v1.11.3', 'v1.12.2'])('%s lists the files of the talosctl-all image as sorted absolute URLs', async (version) => {
    const res = await fetch(url(`/talosctl/${version}`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const listed = (await res.json()) as string[];
    const files = [...imageFiles(version).keys()].sort();
    expect(files.length).toBeGreaterThan(0);
    expect(listed).toEqual(files.map((f) => `http://${env.host}/talosctl/${version}/${f}`));
    expect([...listed].sort()).toEqual(listed);
    // the version without its `v` names the same release
    expect(await (await fetch(url(`/talosctl/${version.slice(1)}`))).json()).toEqual(listed);
  });

  test('a version before 1.11 that is offered lists nothing', async () => {
    const res = await fetch(url('/talosctl/v1.7.7'));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('[]\n');
  });

  test('a version not offered is a 404 in the anchor words, a malformed one a 400', async () => {
    const unknown = await fetch(url('/talosctl/v1.10.0'));
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe('version 1.10.0 is not available\n');
    const malformed = await fetch(url('/talosctl/not-a-version'));
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toMatch(/^invalid version "not-a-version"/);
  });
});

describe('GET|HEAD /talosctl/<version>/<file>', () => {
  test('a binary equals the file in the image; HEAD has its length; the second download extracts nothing', async () => {
    const version = 'v1.12.2';
    const files = imageFiles(version);
    const name = 'talosctl-linux-amd64';
    const expected = files.get(name)!;
    expect(expected).toBeDefined();
    const before = await extractions();

    // GET on S3: a 302 to the presigned object, whose bytes are the file's
    const first = await fetch(url(`/talosctl/${version}/${name}`), { redirect: 'manual' });
    expect(first.status).toBe(302);
    const stored = await fetch(first.headers.get('location')!);
    expect(stored.status).toBe(200);
    expect(Buffer.from(await stored.arrayBuffer()).equals(expected)).toBe(true);
    expect(await extractions()).toBe(before + 1);

    // HEAD is answered directly, with the anchor's headers
    const head = await fetch(url(`/talosctl/${version}/${name}`), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(expected.length));
    expect(head.headers.get('content-disposition')).toBe(`attachment; filename="${name}"`);
    expect(head.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);

    // followed redirect, again: the stored bytes, no second extraction
    const second = await fetch(url(`/talosctl/${version}/${name}`));
    expect(second.status).toBe(200);
    expect(Buffer.from(await second.arrayBuffer()).equals(expected)).toBe(true);
    expect(await extractions()).toBe(before + 1);

    // the PXE host gets the bytes themselves, with the anchor's headers
    const streamed = await getWithHost(`/talosctl/${version}/${name}`, `pxe.test:${env.factory.port}`);
    expect(streamed.status).toBe(200);
    expect(streamed.body.equals(expected)).toBe(true);
    expect(streamed.headers['content-length']).toBe(String(expected.length));
    expect(streamed.headers['content-type']).toBe('application/octet-stream');
    expect(streamed.headers['content-disposition']).toBe(`attachment; filename="${name}"`);
    expect(await extractions()).toBe(before + 1);

    // another file of the same version is its own asset, from the same verified image
    const mac = 'talosctl-darwin-arm64';
    const darwin = await fetch(url(`/talosctl/${version}/${mac}`));
    expect(darwin.status).toBe(200);
    expect(Buffer.from(await darwin.arrayBuffer()).equals(files.get(mac)!)).toBe(true);
    expect(await extractions()).toBe(before + 2);
  });

  test('a binary larger than FACTORY_MAX_ASSET_BYTES is a 422 naming the limit, and nothing is published', async () => {
    const exe = 'talosctl-windows-amd64.exe';
    const size = imageFiles('v1.12.2').get(exe)!.length;
    expect(size).toBeGreaterThan(MAX_ASSET_BYTES);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(url(`/talosctl/v1.12.2/${exe}`), { method: i ? 'HEAD' : 'GET' });
      expect(res.status).toBe(422);
      if (!i) expect(await res.text()).toBe(`asset ${exe} is ${size} bytes, larger than the factory's asset size limit of ${MAX_ASSET_BYTES} bytes (FACTORY_MAX_ASSET_BYTES)\n`);
    }
  });

  test('unknown files, traversal and versions without talosctl are 404s; a malformed version a 400', async () => {
    const unknown = await fetch(url('/talosctl/v1.12.2/talosctl-plan9-amd64'));
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe('talosctl file "talosctl-plan9-amd64" is not available for Talos version v1.12.2\n');
    for (const p of ['/talosctl/v1.12.2/..%2Fcosign.pub', '/talosctl/v1.12.2/.%2e', '/talosctl/v1.12.2/%2Fetc%2Fpasswd']) {
      const res = await fetch(url(p));
      expect([p, res.status]).toEqual([p, 404]);
    }
    const old = await fetch(url('/talosctl/v1.7.7/talosctl-linux-amd64'));
    expect(old.status).toBe(404);
    expect(await old.text()).toBe('version 1.7.7 is not available\n');
    const notOffered = await fetch(url('/talosctl/v1.10.0/talosctl-linux-amd64'), { method: 'HEAD' });
    expect(notOffered.status).toBe(404);
    const malformed = await fetch(url('/talosctl/1.x/talosctl-linux-amd64'));
    expect(malformed.status).toBe(400);
  });
});

describe('GET /llms.txt', () => {
  test('a plain-text guide naming this factory, its routes and keys', async () => {
    const res = await fetch(url('/llms.txt'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const text = await res.text();
    const base = `http://${env.host}`;
    expect(text).toMatch(/^# Talos Linux Image Factory/);
    expect(text).toContain('self-hosted');
    expect(text).toContain('NOT factory.talos.dev');
    expect(text).toContain('376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba');
    for (const route of ['/schematics', '/versions', '/image/<schematic-id>/<version>/<path>', '/pxe/', '/talosctl/<version>', '/oci/cosign/signing-key.pub', '/secureboot/signing-cert.pem']) expect(text).toContain(route);
    expect(text).toContain(`${base}/oci/cosign/signing-key.pub`);
    expect(text).toContain(`${env.host}/metal-installer/`);
    expect(text).not.toContain('https://localhost');
    expect((await fetch(url('/llms.txt'), { method: 'HEAD' })).status).toBe(405);
  });
});
