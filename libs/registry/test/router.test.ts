import { RegistryClient, MediaTypes, sha256Digest, verifyCosignSignature } from '@factory/oci';
import type { ObjectStore } from '@factory/storage';
import { createObjectStore } from '@factory/storage';
import { RegistryError } from '../src';
import { ID, TAG, startTestServer } from './fixture';

type Srv = Awaited<ReturnType<typeof startTestServer>>;
let srv: Srv;

beforeAll(async () => {
  srv = await startTestServer({
    extra: {
      proxy: (route, _req, res) => {
        if (route.image === 'boom') throw Object.assign(new Error('upstream'), { name: 'FactoryError', status: 503 });
        res.status(200).type('text/plain').send(`proxied ${route.image} ${route.resource} ${route.reference}`);
      },
    },
  });
});
afterAll(() => srv.close());

const get = (path: string, init: RequestInit = {}) => fetch(srv.url + path, { redirect: 'manual', ...init });
const head = (path: string, init: RequestInit = {}) => get(path, { ...init, method: 'HEAD' });
const repo = `/v2/installer/${ID}`;

describe('routing', () => {
  test.each(['/v2', '/v2/'])('ping %s', async (p) => {
    for (const method of ['GET', 'HEAD']) {
      const res = await get(p, { method });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
      expect(res.headers.get('docker-distribution-api-version')).toBeNull();
    }
  });

  test.each(['/a/b/c/manifests/v1', '/foo', '/image/schematic/tags/list', '/siderolabs/talosctl/tags/v1'])('404 %s', async (p) => {
    const res = await get('/v2' + p);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe(`unknown registry path: "${p}"\n`);
  });

  test('other methods: 405 with Allow', async () => {
    const res = await get(`${repo}/manifests/${TAG}`, { method: 'PUT', body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    expect(await res.text()).toBe('Method Not Allowed\n');
  });

  test('proxy routes: delegated, or 404 unknown image without a handler', async () => {
    const res = await get('/v2/siderolabs/talosctl/v.13.5/manifests/latest');
    expect(await res.text()).toBe('proxied talosctl/v.13.5 manifests latest');
    const boom = await get('/v2/siderolabs/boom/manifests/v1');
    expect(boom.status).toBe(503);
    expect(await boom.text()).toBe('upstream\n');
    const bare = await startTestServer();
    try {
      const r = await fetch(`${bare.url}/v2/siderolabs/nonexistent/manifests/v1.13.5`);
      expect(r.status).toBe(404);
      expect(await r.text()).toBe('unknown image: nonexistent\n');
    } finally {
      await bare.close();
    }
  });
});

describe('source-image routes outside the OCI grammar', () => {
  // Before: these reached the proxy, whose upstream request Node refused (ERR_UNESCAPED_CHARACTERS) → 500.
  test.each([
    ['manifests/a%00b', 'TAG_INVALID'],
    ['manifests/a%20b', 'TAG_INVALID'],
    ['manifests/a%0d%0aX-Injected:%201', 'TAG_INVALID'],
    ['manifests/%C3%A9t%C3%A9', 'TAG_INVALID'],
    ['manifests/-leading-dash', 'TAG_INVALID'],
    [`manifests/${'a'.repeat(129)}`, 'TAG_INVALID'],
    ['blobs/v1.11.0', 'DIGEST_INVALID'],
    ['blobs/sha256:ab%00', 'DIGEST_INVALID'],
    ['referrers/latest', 'DIGEST_INVALID'],
    // Found by the fuzz (test/fuzz): digests the upstream registry cannot take — its answer was a 500, relayed.
    [`manifests/sha256:${'A'.repeat(64)}`, 'DIGEST_INVALID'],
    ['manifests/sha256:0564cfa384f6033bae191b77935a8e7d84', 'DIGEST_INVALID'],
    [`manifests/md5:${'c'.repeat(32)}`, 'DIGEST_INVALID'],
    [`blobs/sha512:${'a'.repeat(64)}`, 'DIGEST_INVALID'],
    [`referrers/sha256:${'a'.repeat(63)}`, 'DIGEST_INVALID'],
  ])('imager/%s → 400 %s before proxying', async (rest, code) => {
    const res = await get(`/v2/siderolabs/imager/${rest}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(JSON.parse(await res.text()).errors[0].code).toBe(code);
  });

  test('a repository name outside the grammar → 400 NAME_INVALID', async () => {
    const res = await get('/v2/siderolabs/Imager%00/manifests/v1.11.0');
    expect(res.status).toBe(400);
    expect(JSON.parse(await res.text()).errors[0].code).toBe('NAME_INVALID');
  });

  test('well-formed tags and digests are still proxied', async () => {
    for (const ref of ['v1.11.0', 'latest', '_x', `sha256:${'a'.repeat(64)}`, `sha512:${'0'.repeat(128)}`]) {
      const res = await get(`/v2/siderolabs/imager/manifests/${ref}`);
      expect(await res.text()).toBe(`proxied imager manifests ${ref}`);
    }
  });
});

describe('manifests', () => {
  test('GET and HEAD by tag: media type, digest, length; HEAD also resolves', async () => {
    srv.calls.resolve.length = 0;
    const res = await get(`${repo}/manifests/${TAG}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(MediaTypes.dockerManifest);
    expect(res.headers.get('docker-content-digest')).toBe(srv.image.manifestDigest);
    expect(res.headers.get('content-length')).toBe(String(srv.image.manifest.length));
    expect(Buffer.from(await res.arrayBuffer())).toEqual(srv.image.manifest);

    const h = await head(`${repo}/manifests/${TAG}`);
    expect(h.status).toBe(200);
    expect(h.headers.get('content-type')).toBe(MediaTypes.dockerManifest);
    expect(h.headers.get('docker-content-digest')).toBe(srv.image.manifestDigest);
    expect(h.headers.get('content-length')).toBe(String(srv.image.manifest.length));
    expect(await h.text()).toBe('');
    expect(srv.calls.resolve).toEqual([`GET installer/${ID}:${TAG}`, `HEAD installer/${ID}:${TAG}`]);
  });

  test('latest goes to resolveManifest', async () => {
    const res = await get(`${repo}/manifests/latest`);
    expect(res.headers.get('docker-content-digest')).toBe(srv.image.manifestDigest);
  });

  test('digests and non-version tags come from the store after checkRepository', async () => {
    srv.calls.resolve.length = 0;
    srv.calls.check.length = 0;
    const byDigest = await get(`${repo}/manifests/${srv.image.manifestDigest}`);
    expect(byDigest.status).toBe(200);
    expect(Buffer.from(await byDigest.arrayBuffer())).toEqual(srv.image.manifest);
    const sigTag = `sha256-${srv.image.manifestDigest.slice(7)}.sig`;
    const sig = await get(`${repo}/manifests/${sigTag}`);
    expect(sig.status).toBe(200);
    expect(sig.headers.get('content-type')).toBe(MediaTypes.ociManifest);
    expect(sig.headers.get('docker-content-digest')).toBe(srv.image.signature.digest);
    expect(srv.calls.resolve).toEqual([]);
    expect(srv.calls.check).toEqual([`GET installer/${ID}`, `GET installer/${ID}`]);
  });

  test('unknown manifests: OCI JSON MANIFEST_UNKNOWN', async () => {
    for (const ref of ['v9.9.9', 'nope', sha256Digest(Buffer.from('x')), 'sha256:zz', srv.image.layerDigest]) {
      const res = await get(`${repo}/manifests/${ref}`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.json()).toEqual({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
    }
    const h = await head(`${repo}/manifests/v9.9.9`);
    expect(h.status).toBe(404);
    expect(await h.text()).toBe('');
  });

  test('caller errors: text/plain status + message; unexpected errors: 500 without details', async () => {
    const other = 'a'.repeat(64);
    let res = await get(`/v2/installer/${other}/manifests/${TAG}`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe(`schematic ID "${other}" not found\n`);
    res = await get(`/v2/imager/${ID}/manifests/${TAG}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toBe('invalid image: imager\n');
    res = await get(`/v2/imager/${ID}/blobs/${srv.image.layerDigest}`);
    expect(res.status).toBe(400);
    srv.errors.length = 0;
    res = await get(`${repo}/manifests/v0.0.0-boom`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('internal server error\n');
    expect(srv.errors).toHaveLength(1);
  });
});

describe('blobs', () => {
  test('GET streams with digest, length and ranges', async () => {
    const { layer, layerDigest } = srv.image;
    const res = await get(`${repo}/blobs/${layerDigest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(layerDigest);
    expect(res.headers.get('content-length')).toBe(String(layer.length));
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(layer);

    const part = await get(`${repo}/blobs/${layerDigest}`, { headers: { Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${layer.length}`);
    expect(part.headers.get('content-length')).toBe('10');
    expect(Buffer.from(await part.arrayBuffer())).toEqual(layer.subarray(10, 20));

    const tail = await get(`${repo}/blobs/${layerDigest}`, { headers: { Range: 'bytes=-5' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(layer.subarray(layer.length - 5));

    const bad = await get(`${repo}/blobs/${layerDigest}`, { headers: { Range: `bytes=${layer.length}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${layer.length}`);
    await bad.text();

    // RFC 9110 (@factory/http): an invalid range (last-pos < first-pos) is ignored, so is a stale If-Range
    const reversed = await get(`${repo}/blobs/${layerDigest}`, { headers: { Range: 'bytes=5-3' } });
    expect(reversed.status).toBe(200);
    expect(Buffer.from(await reversed.arrayBuffer())).toEqual(layer);
    const stale = await get(`${repo}/blobs/${layerDigest}`, { headers: { Range: 'bytes=10-19', 'If-Range': '"sha256:other"' } });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer())).toEqual(layer);
    const current = await get(`${repo}/blobs/${layerDigest}`, { headers: { Range: 'bytes=10-19', 'If-Range': `"${layerDigest}"` } });
    expect(current.status).toBe(206);
    expect(Buffer.from(await current.arrayBuffer())).toEqual(layer.subarray(10, 20));
  });

  test('HEAD: headers only', async () => {
    const res = await head(`${repo}/blobs/${srv.image.layerDigest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(srv.image.layer.length));
    expect(res.headers.get('docker-content-digest')).toBe(srv.image.layerDigest);
    expect(await res.text()).toBe('');
  });

  test('unknown blobs: BLOB_UNKNOWN', async () => {
    for (const d of [sha256Digest(Buffer.from('nope')), 'sha256:deadbeef', 'md5:abc', 'sha512:' + 'a'.repeat(128)]) {
      const res = await get(`${repo}/blobs/${d}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] });
    }
  });

  test('307 to a presigned URL when the store gives one (GET only)', async () => {
    const s = await startTestServer({
      objects: (dir) => {
        const base = createObjectStore({ kind: 'local', dir });
        return Object.assign(Object.create(base), {
          presignGet: async (key: string, o: { ttlSeconds: number }) => `https://s3.example/bucket/${key}?ttl=${o.ttlSeconds}`,
        }) as ObjectStore;
      },
      extra: { presignTtlSeconds: 120 },
    });
    try {
      const r = await fetch(`${s.url}/v2/installer/${ID}/blobs/${s.image.layerDigest}`, { redirect: 'manual' });
      expect(r.status).toBe(307);
      expect(r.headers.get('location')).toBe(`https://s3.example/bucket/oci/blobs/sha256/${s.image.layerDigest.slice(7)}?ttl=120`);
      const h = await fetch(`${s.url}/v2/installer/${ID}/blobs/${s.image.layerDigest}`, { method: 'HEAD', redirect: 'manual' });
      expect(h.status).toBe(200);
      // preconditions are decided before the redirect: 304 / 412 instead of a 307
      const held = await fetch(`${s.url}/v2/installer/${ID}/blobs/${s.image.layerDigest}`, { headers: { 'If-None-Match': `"${s.image.layerDigest}"` }, redirect: 'manual' });
      expect(held.status).toBe(304);
      expect(held.headers.get('location')).toBeNull();
      const failed = await fetch(`${s.url}/v2/installer/${ID}/blobs/${s.image.layerDigest}`, { headers: { 'If-Match': '"sha256:other"' }, redirect: 'manual' });
      expect(failed.status).toBe(412);
      expect(await failed.text()).toBe('precondition failed\n');
      const missing = await fetch(`${s.url}/v2/installer/${ID}/blobs/${sha256Digest(Buffer.from('x'))}`, { redirect: 'manual' });
      expect(missing.status).toBe(404);
    } finally {
      await s.close();
    }
  });
});

describe('referrers', () => {
  test('invalid subject digest', async () => {
    const res = await get(`${repo}/referrers/sha256:deadbeef`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('invalid referrers subject digest: sha256:deadbeef\n');
    // a decoded control character in the digest stays on the one line (found by the fuzz test)
    const newline = await get(`${repo}/referrers/sha256:%0a?artifactType=%00`);
    expect(newline.status).toBe(404);
    expect(await newline.text()).toBe('invalid referrers subject digest: sha256:\\n\n');
  });

  test('index of referrers, artifactType filter', async () => {
    const subject = srv.image.manifestDigest;
    const cfg = Buffer.from('{}');
    await srv.store.putBlob(sha256Digest(cfg), cfg);
    const mk = (artifactType: string) => Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType,
      config: { mediaType: MediaTypes.ociEmpty, size: 2, digest: sha256Digest(cfg) }, layers: [],
      subject: { mediaType: MediaTypes.dockerManifest, digest: subject, size: srv.image.manifest.length },
    }));
    const a = await srv.store.putManifest(mk('application/spdx+json'), MediaTypes.ociManifest);
    const b = await srv.store.putManifest(mk('application/vnd.in-toto+json'), MediaTypes.ociManifest);

    const res = await get(`${repo}/referrers/${subject}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(MediaTypes.ociIndex);
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.headers.get('docker-content-digest')).toBe(sha256Digest(body));
    expect(res.headers.get('content-length')).toBe(String(body.length));
    expect(res.headers.get('oci-filters-applied')).toBeNull();
    const index = JSON.parse(body.toString());
    expect(index.mediaType).toBe(MediaTypes.ociIndex);
    expect(index.manifests.map((m: any) => m.digest).sort()).toEqual([a.digest, b.digest].sort());

    const f = await get(`${repo}/referrers/${subject}?artifactType=${encodeURIComponent('application/spdx+json')}`);
    expect(f.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await f.json()) as { manifests: unknown }).manifests).toEqual([{ ...a, artifactType: 'application/spdx+json' }]);

    const none = await get(`${repo}/referrers/${sha256Digest(Buffer.from('nothing'))}`);
    expect(((await none.json()) as { manifests: unknown }).manifests).toEqual([]);
  });
});

test('errors thrown by deps are mapped; plain errors become 500 internal server error', async () => {
  const s = await startTestServer({
    extra: {
      checkRepository: async () => { throw new Error('db exploded: password=hunter2'); },
      resolveManifest: async () => { throw Object.assign(new Error('version 1.10.0 is not available'), { name: 'FactoryError', status: 404 }); },
    },
  });
  try {
    let r = await fetch(`${s.url}/v2/installer/${ID}/blobs/${s.image.layerDigest}`);
    expect(r.status).toBe(500);
    expect(await r.text()).toBe('internal server error\n');
    expect(s.errors).toHaveLength(1);
    r = await fetch(`${s.url}/v2/installer/${ID}/manifests/v1.10.0`);
    expect(r.status).toBe(404);
    expect(await r.text()).toBe('version 1.10.0 is not available\n');
    r = await fetch(`${s.url}/v2/installer/${ID}/manifests/v1.10.0`, { method: 'HEAD' });
    expect(r.status).toBe(404);
    r = await fetch(`${s.url}/v2/installer/${ID}/manifests/v1.10.0`.replace('v1.10.0', 'latest'));
    expect(r.status).toBe(404);
    expect(new RegistryError(418, 'x').status).toBe(418);
  } finally {
    await s.close();
  }
});

test('@factory/oci client pulls and verifies the cosign signature through the router', async () => {
  const client = new RegistryClient({ registry: srv.host, insecure: true, retries: 0 });
  const m = await client.getManifest(`installer/${ID}`, TAG);
  expect(m.digest).toBe(srv.image.manifestDigest);
  expect(await client.getBlob(`installer/${ID}`, srv.image.layerDigest, 1 << 20)).toEqual(srv.image.layer);
  const v = await verifyCosignSignature(client, `installer/${ID}`, m.digest, srv.image.publicKey, {
    dockerReference: `${srv.host}/installer/${ID}`,
  });
  expect(v.payload.critical.image['docker-manifest-digest']).toBe(m.digest);
});

describe('blob hand-off to a front proxy sharing the object store', () => {
  const SECRET = 'h'.repeat(40);
  test('GET carrying the hand-off secret answers headers and the object key only (whole and ranged)', async () => {
    const local = await startTestServer({ extra: { handoffSecret: SECRET } });
    try {
      const layer = { digest: local.image.layerDigest, size: local.image.layer.length };
      const url = `${local.url}/v2/installer/${ID}/blobs/${layer.digest}`;
      const res = await fetch(url, { headers: { 'X-Factory-Handoff': SECRET } });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-factory-object')).toBe(`oci/blobs/sha256/${layer.digest.slice(7)}`);
      expect(res.headers.get('x-factory-length')).toBe(String(layer.size));
      expect(res.headers.get('docker-content-digest')).toBe(layer.digest);
      expect(await res.text()).toBe('');
      const ranged = await fetch(url, { headers: { 'X-Factory-Handoff': SECRET, Range: 'bytes=2-5' } });
      expect(ranged.status).toBe(206);
      expect(ranged.headers.get('x-factory-range')).toBe('2-5');
      expect(ranged.headers.get('x-factory-length')).toBe('4');
      // conditionals are decided before the hand-off: the proxy relays a 304 / 412 / whole body, never re-deciding
      const held = await fetch(url, { headers: { 'X-Factory-Handoff': SECRET, 'If-None-Match': `"${layer.digest}"` } });
      expect(held.status).toBe(304);
      expect(held.headers.get('x-factory-object')).toBeNull();
      const stale = await fetch(url, { headers: { 'X-Factory-Handoff': SECRET, Range: 'bytes=2-5', 'If-Range': '"sha256:old"' } });
      expect(stale.status).toBe(200);
      expect(stale.headers.get('x-factory-range')).toBeNull();
      expect(stale.headers.get('x-factory-length')).toBe(String(layer.size));
      // without the secret — no header, a guess, the old fixed value — the body is served and nothing internal leaks
      for (const headers of [{}, { 'X-Factory-Handoff': 'object' }, { 'X-Factory-Handoff': SECRET.slice(1) + 'x' }] as Record<string, string>[]) {
        const plain = await fetch(url, { headers });
        expect([...plain.headers.keys()].filter((h) => h.startsWith('x-factory-'))).toEqual([]);
        expect((await plain.arrayBuffer()).byteLength).toBe(layer.size);
      }
      const off = await fetch(`${srv.url}/v2/installer/${ID}/blobs/${layer.digest}`, { headers: { 'X-Factory-Handoff': SECRET }, redirect: 'manual' });
      expect(off.headers.get('x-factory-object')).toBeNull();
    } finally {
      await local.close();
    }
  });
});

describe('conditional requests (RFC 9110 §13): the validator is the digest, quoted', () => {
  test('manifests: ETag, 304 on If-None-Match (GET and HEAD), 412 on a failed If-Match', async () => {
    const res = await get(`${repo}/manifests/${TAG}`);
    const digest = res.headers.get('docker-content-digest')!;
    expect(res.headers.get('etag')).toBe(`"${digest}"`);
    for (const method of ['GET', 'HEAD']) {
      const held = await get(`${repo}/manifests/${TAG}`, { method, headers: { 'If-None-Match': `"${digest}"` } });
      expect(held.status).toBe(304);
      expect(held.headers.get('docker-content-digest')).toBe(digest);
      expect(held.headers.get('etag')).toBe(`"${digest}"`);
      expect(await held.text()).toBe('');
    }
    const byDigest = await get(`${repo}/manifests/${digest}`, { headers: { 'If-None-Match': `W/"${digest}"` } });
    expect(byDigest.status).toBe(304);
    const failed = await get(`${repo}/manifests/${TAG}`, { headers: { 'If-Match': '"sha256:other"' } });
    expect(failed.status).toBe(412);
    expect(failed.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await failed.text()).toBe('precondition failed\n');
    expect((await get(`${repo}/manifests/${TAG}`, { headers: { 'If-Match': `"${digest}"` } })).status).toBe(200);
  });

  test('blobs: 304 with the validators, 412, If-Match with a Range', async () => {
    const { layer, layerDigest } = srv.image;
    const url = `${repo}/blobs/${layerDigest}`;
    const held = await get(url, { headers: { 'If-None-Match': `"${layerDigest}"`, Range: 'bytes=0-1' } });
    expect(held.status).toBe(304);
    expect(held.headers.get('etag')).toBe(`"${layerDigest}"`);
    expect(held.headers.get('docker-content-digest')).toBe(layerDigest);
    expect(await held.text()).toBe('');
    const failed = await get(url, { headers: { 'If-Match': '"sha256:other"' } });
    expect(failed.status).toBe(412);
    expect(await failed.text()).toBe('precondition failed\n');
    const part = await get(url, { headers: { 'If-Match': `"${layerDigest}"`, Range: 'bytes=0-1' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(layer.subarray(0, 2));
  });

  test('referrers index: its digest is its validator', async () => {
    const res = await get(`${repo}/referrers/${srv.image.manifestDigest}`);
    const digest = res.headers.get('docker-content-digest')!;
    await res.text();
    expect((await get(`${repo}/referrers/${srv.image.manifestDigest}`, { headers: { 'If-None-Match': `"${digest}"` } })).status).toBe(304);
  });
});
