import { createHash } from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import {
  MediaTypes, OciError, RegistryClient, parseImageReference, parseWwwAuthenticate, sha256Digest,
} from '../src';
import { MockRegistry, MockRegistryOptions } from './mock-registry';

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function withRegistry(opts: MockRegistryOptions, fn: (reg: MockRegistry) => Promise<void>): Promise<void> {
  const reg = await new MockRegistry(opts).start();
  try { await fn(reg); } finally { await reg.stop(); }
}

function client(reg: MockRegistry, extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient {
  return new RegistryClient({ registry: reg.host, insecure: true, retryDelayMs: 5, timeoutMs: 5000, ...extra });
}

async function expectOciError(p: Promise<unknown>, code: OciError['code']): Promise<OciError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).code).toBe(code);
    return err as OciError;
  }
  throw new Error(`expected OciError ${code}`);
}

function sampleImage(reg: MockRegistry, repo: string, tag: string) {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.from('layer-bytes');
  const manifest = {
    schemaVersion: 2, mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: reg.putBlob(config), size: config.length },
    layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: reg.putBlob(layer), size: layer.length }],
  };
  return reg.putManifest(repo, manifest, tag);
}

describe('parsers', () => {
  test('WWW-Authenticate bearer with quoted commas', () => {
    const c = parseWwwAuthenticate(['Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push"']);
    expect(c).toEqual([{ scheme: 'bearer', params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:a/b:pull,push' } }]);
  });

  test('WWW-Authenticate basic and several challenges', () => {
    expect(parseWwwAuthenticate(['Basic realm="Registry Realm"'])).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    const c = parseWwwAuthenticate(['Basic realm="x", Bearer realm="https://a/t",service=svc']);
    expect(c.map((x) => x.scheme)).toEqual(['basic', 'bearer']);
    expect(c[1].params).toEqual({ realm: 'https://a/t', service: 'svc' });
  });

  test('image references', () => {
    expect(parseImageReference('ghcr.io/siderolabs/gvisor:20231214.0-v1.7.0@sha256:' + 'a'.repeat(64))).toEqual({
      registry: 'ghcr.io', repository: 'siderolabs/gvisor', tag: '20231214.0-v1.7.0', digest: 'sha256:' + 'a'.repeat(64),
    });
    expect(parseImageReference('localhost:5100/extension-testing/my-extension:v1.0.0')).toEqual({
      registry: 'localhost:5100', repository: 'extension-testing/my-extension', tag: 'v1.0.0',
    });
    expect(parseImageReference('alpine')).toEqual({ registry: 'docker.io', repository: 'library/alpine' });
    expect(() => parseImageReference('ghcr.io/Bad/Name:v1')).toThrow(OciError);
  });

  test('invalid names and refs are rejected before any request', async () => {
    const c = new RegistryClient({ registry: '127.0.0.1:1', insecure: true });
    await expectOciError(c.getManifest('../etc', 'v1'), 'INVALID');
    await expectOciError(c.getManifest('ok/repo', 'bad/ref'), 'INVALID');
    await expectOciError(c.getBlob('ok/repo', 'sha256:xyz', 10), 'INVALID');
  });
});

describe('bearer token flow', () => {
  test('anonymous pull token, cached per scope', () => withRegistry({ auth: 'bearer', anonymousPull: true }, async (reg) => {
    const { digest, raw } = sampleImage(reg, 'siderolabs/imager', 'v1.7.0');
    const c = client(reg);
    const m = await c.getManifest('siderolabs/imager', 'v1.7.0');
    expect(m.digest).toBe(digest);
    expect(m.raw.equals(raw)).toBe(true);
    expect(m.mediaType).toBe(MediaTypes.ociManifest);
    expect(m.json.layers).toHaveLength(1);
    await c.getManifest('siderolabs/imager', digest);
    expect(await c.headManifest('siderolabs/imager', 'v1.7.0')).toEqual({ mediaType: MediaTypes.ociManifest, digest, size: raw.length });
    expect(reg.tokenRequests).toHaveLength(1);
    expect(reg.tokenRequests[0].searchParams.get('service')).toBe('mock-registry');
    expect(reg.tokenRequests[0].searchParams.getAll('scope')).toEqual(['repository:siderolabs/imager:pull']);
    expect(reg.tokenRequests[0].searchParams.has('authorization')).toBe(false);
    // a second repository needs its own token, fetched proactively (no extra 401 round trip)
    sampleImage(reg, 'siderolabs/installer', 'v1.7.0');
    const before401 = reg.requests.filter((r) => r.url.startsWith('/v2/siderolabs/installer') && !r.headers.authorization).length;
    await c.getManifest('siderolabs/installer', 'v1.7.0');
    expect(reg.tokenRequests).toHaveLength(2);
    expect(reg.requests.filter((r) => r.url.startsWith('/v2/siderolabs/installer') && !r.headers.authorization).length).toBe(before401);
  }));

  test('credentials are sent to the token endpoint; push gets a pull,push token', () =>
    withRegistry({ auth: 'bearer', user: { username: 'bob', password: 'pw' } }, async (reg) => {
      const c = client(reg, { auth: { username: 'bob', password: 'pw' } });
      const data = Buffer.from('hello blob');
      const d = await c.pushBlob('factory/cache', data);
      expect(d).toBe(sha(data));
      expect(reg.blobs.get(d)?.equals(data)).toBe(true);
      const tokenReq = reg.tokenRequests[reg.tokenRequests.length - 1];
      expect(tokenReq.searchParams.getAll('scope')).toContain('repository:factory/cache:pull,push');
      expect((await c.getBlob('factory/cache', d, 100)).toString()).toBe('hello blob');
      // tokens are invalidated server-side: the client refreshes once and succeeds
      const n = reg.tokenRequests.length;
      reg.revokeTokens();
      expect((await c.getBlob('factory/cache', d, 100)).toString()).toBe('hello blob');
      expect(reg.tokenRequests.length).toBe(n + 1);
    }));

  test('access_token field and expiry refresh', () => withRegistry({ auth: 'bearer', anonymousPull: true, tokenField: 'access_token', expiresIn: 2 }, async (reg) => {
    sampleImage(reg, 'a/b', 'v1');
    const c = client(reg);
    await c.getManifest('a/b', 'v1');
    expect(reg.tokenRequests).toHaveLength(1);
    await c.getManifest('a/b', 'v1');
    expect(reg.tokenRequests).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1100)); // 2 s token, refreshed after half its lifetime
    await c.getManifest('a/b', 'v1');
    expect(reg.tokenRequests).toHaveLength(2);
  }));

  test('wrong credentials → UNAUTHORIZED; anonymous without anonymous access → UNAUTHORIZED', () =>
    withRegistry({ auth: 'bearer', user: { username: 'bob', password: 'pw' } }, async (reg) => {
      sampleImage(reg, 'a/b', 'v1');
      const bad = client(reg, { auth: { username: 'bob', password: 'nope' } });
      const e1 = await expectOciError(bad.getManifest('a/b', 'v1'), 'UNAUTHORIZED');
      expect(e1.status).toBe(401);
      await expectOciError(client(reg).getManifest('a/b', 'v1'), 'UNAUTHORIZED');
    }));

  test('anonymous token without push rights → UNAUTHORIZED on push', () => withRegistry({ auth: 'bearer', anonymousPull: true }, async (reg) => {
    await expectOciError(client(reg).pushBlob('a/b', Buffer.from('x')), 'UNAUTHORIZED');
  }));

  test('ping authenticates', () => withRegistry({ auth: 'bearer', anonymousPull: true }, async (reg) => {
    await client(reg).ping();
    expect(reg.tokenRequests).toHaveLength(1);
  }));
});

describe('basic auth', () => {
  test('Basic challenge → credentials sent, remembered', () => withRegistry({ auth: 'basic', user: { username: 'u', password: 'p' } }, async (reg) => {
    const { digest } = sampleImage(reg, 'a/b', 'v1');
    const c = client(reg, { auth: { username: 'u', password: 'p' } });
    await c.ping();
    expect((await c.getManifest('a/b', 'v1')).digest).toBe(digest);
    expect(await c.pushManifest('a/b', 'v2', MediaTypes.ociManifest, reg.manifests.get(`a/b@${digest}`)!.raw)).toBe(digest);
    const unauth = reg.requests.filter((r) => !r.headers.authorization);
    expect(unauth).toHaveLength(1); // only the first ping
  }));

  test('no or wrong credentials → UNAUTHORIZED', () => withRegistry({ auth: 'basic', user: { username: 'u', password: 'p' } }, async (reg) => {
    sampleImage(reg, 'a/b', 'v1');
    const e = await expectOciError(client(reg).getManifest('a/b', 'v1'), 'UNAUTHORIZED');
    expect(e.message).toMatch(/no credentials configured/);
    const e2 = await expectOciError(client(reg, { auth: { username: 'u', password: 'x' } }).getManifest('a/b', 'v1'), 'UNAUTHORIZED');
    expect(e2.status).toBe(401);
  }));
});

describe('tags', () => {
  test.each([false, true])('pagination via Link (absolute links: %s)', (absoluteLinks) =>
    withRegistry({ defaultPageSize: 2, absoluteLinks }, async (reg) => {
      for (const t of ['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.3.0', 'v1.4.0']) sampleImage(reg, 'siderolabs/imager', t);
      const tags = await client(reg).listTags('siderolabs/imager');
      expect(tags).toEqual(['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.3.0', 'v1.4.0']);
      expect(reg.requests.filter((r) => r.url.includes('/tags/list')).length).toBe(3);
    }));

  test('unknown repository → NOT_FOUND', () => withRegistry({}, async (reg) => {
    await expectOciError(client(reg).listTags('nope/nope'), 'NOT_FOUND');
  }));
});

describe('blobs', () => {
  test('redirect to another host: followed, Authorization dropped, digest verified', () =>
    withRegistry({ auth: 'bearer', anonymousPull: true, redirectBlobs: true }, async (reg) => {
      const data = Buffer.alloc(300_000, 7);
      const d = reg.putBlob(data);
      const c = client(reg);
      expect((await c.getBlob('x/y', d, 1 << 20)).equals(data)).toBe(true);
      expect(reg.cdnRequests).toHaveLength(1);
      expect(reg.cdnRequests[0].headers.authorization).toBeUndefined();
      expect(reg.cdnRequests[0].url).toContain('X-Signature=s3cr3t');
      expect(reg.requests.some((r) => r.url === `/v2/x/y/blobs/${d}` && r.headers.authorization?.startsWith('Bearer '))).toBe(true);
    }));

  test('content not matching the digest → DIGEST_MISMATCH (stream and buffer)', () => withRegistry({}, async (reg) => {
    const d = reg.putBlob(Buffer.from('original'));
    reg.blobs.set(d, Buffer.from('tampered'));
    const c = client(reg);
    await expectOciError(c.getBlob('x/y', d, 100), 'DIGEST_MISMATCH');
    const s = await c.getBlobStream('x/y', d);
    const err = await new Promise<unknown>((resolve) => { s.on('error', resolve); s.on('end', () => resolve(null)); s.resume(); });
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).code).toBe('DIGEST_MISMATCH');
  }));

  test('maxBytes → TOO_LARGE (Content-Length and streamed)', () => withRegistry({}, async (reg) => {
    const data = Buffer.alloc(1000, 1);
    const d = reg.putBlob(data);
    const c = client(reg);
    await expectOciError(c.getBlob('x/y', d, 999), 'TOO_LARGE');
    // chunked response without Content-Length
    reg.hooks.push((req, res) => {
      if (req.method !== 'GET' || !req.url!.includes('/blobs/')) return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(data.subarray(0, 600));
      setTimeout(() => res.end(data.subarray(600)), 10);
      return true;
    });
    await expectOciError(c.getBlob('x/y', d, 999), 'TOO_LARGE');
    expect((await c.getBlob('x/y', d, 1000)).equals(data)).toBe(true);
  }));

  test('missing blob → NOT_FOUND; headBlob', () => withRegistry({}, async (reg) => {
    const c = client(reg);
    await expectOciError(c.getBlob('x/y', 'sha256:' + '0'.repeat(64), 10), 'NOT_FOUND');
    expect(await c.headBlob('x/y', 'sha256:' + '0'.repeat(64))).toBeNull();
    const d = reg.putBlob(Buffer.from('abc'));
    expect(await c.headBlob('x/y', d)).toEqual({ size: 3 });
  }));

  test('pushBlob skips existing blobs and keeps the upload state query', () => withRegistry({}, async (reg) => {
    const c = client(reg);
    const data = Buffer.from('some content');
    const d = await c.pushBlob('r/s', data);
    expect(reg.blobs.get(d)?.equals(data)).toBe(true);
    const posts = () => reg.requests.filter((r) => r.method === 'POST').length;
    expect(posts()).toBe(1);
    expect(await c.pushBlob('r/s', data)).toBe(d);
    expect(posts()).toBe(1);
  }));
});

describe('manifests', () => {
  test('digest checks: by-digest ref, Docker-Content-Digest header', () => withRegistry({}, async (reg) => {
    const { digest } = sampleImage(reg, 'a/b', 'v1');
    const c = client(reg);
    // content stored under a digest it does not have
    const bogus = 'sha256:' + '1'.repeat(64);
    reg.manifests.set(`a/b@${bogus}`, { ...reg.manifests.get(`a/b@${digest}`)! });
    await expectOciError(c.getManifest('a/b', bogus), 'DIGEST_MISMATCH');
    // by tag, header lies
    reg.manifests.get(`a/b@${digest}`)!.headerDigest = bogus;
    await expectOciError(c.getManifest('a/b', 'v1'), 'DIGEST_MISMATCH');
  }));

  test('NOT_FOUND and headManifest null', () => withRegistry({}, async (reg) => {
    const c = client(reg);
    const e = await expectOciError(c.getManifest('a/b', 'v9'), 'NOT_FOUND');
    expect(e.details?.[0].code).toBe('MANIFEST_UNKNOWN');
    expect(await c.headManifest('a/b', 'v9')).toBeNull();
  }));

  test('manifest over 4 MiB → TOO_LARGE', () => withRegistry({}, async (reg) => {
    const big = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, pad: 'x'.repeat(4 * 1024 * 1024) }));
    reg.putManifest('a/b', big, 'big', MediaTypes.ociManifest);
    await expectOciError(client(reg).getManifest('a/b', 'big'), 'TOO_LARGE');
  }));

  test('resolveImage picks the platform from an index; image manifests are returned as is', () => withRegistry({}, async (reg) => {
    const amd = sampleImage(reg, 'a/b', 'amd');
    const cfg = Buffer.from('{"architecture":"arm64"}');
    const arm = reg.putManifest('a/b', { schemaVersion: 2, mediaType: MediaTypes.dockerManifest,
      config: { mediaType: MediaTypes.dockerConfig, digest: reg.putBlob(cfg), size: cfg.length }, layers: [] });
    const index = reg.putManifest('a/b', { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [
      { mediaType: MediaTypes.ociManifest, digest: amd.digest, size: amd.raw.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaTypes.dockerManifest, digest: arm.digest, size: arm.raw.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: MediaTypes.ociManifest, digest: amd.digest, size: amd.raw.length, platform: { os: 'unknown', architecture: 'unknown' } },
    ] }, 'v1');
    const c = client(reg);
    expect((await c.resolveImage('a/b', 'v1', { os: 'linux', architecture: 'amd64' })).digest).toBe(amd.digest);
    const a = await c.resolveImage('a/b', index.digest, { os: 'linux', architecture: 'arm64' });
    expect(a.digest).toBe(arm.digest);
    expect(a.mediaType).toBe(MediaTypes.dockerManifest);
    const e = await expectOciError(c.resolveImage('a/b', 'v1', { os: 'linux', architecture: 's390x' }), 'NOT_FOUND');
    expect(e.message).toMatch(/linux\/amd64, linux\/arm64\/v8/);
    expect((await c.resolveImage('a/b', 'amd', { os: 'linux', architecture: 'arm64' })).digest).toBe(amd.digest);
  }));

  test('pushManifest by digest must match the content', async () => {
    const c = new RegistryClient({ registry: '127.0.0.1:1', insecure: true });
    await expectOciError(c.pushManifest('a/b', 'sha256:' + '2'.repeat(64), MediaTypes.ociManifest, Buffer.from('{}')), 'DIGEST_MISMATCH');
  });
});

describe('retries and errors', () => {
  test('5xx then success; bounded attempts; 429 with Retry-After', () => withRegistry({}, async (reg) => {
    sampleImage(reg, 'a/b', 'v1');
    let failures = 2;
    reg.hooks = [(req, res) => {
      if (failures > 0 && req.url!.includes('/manifests/')) { failures--; res.writeHead(503); res.end('busy'); return true; }
      return false;
    }];
    const c = client(reg, { retries: 3 });
    await c.getManifest('a/b', 'v1');
    expect(failures).toBe(0);

    reg.hooks = [(req, res) => { if (req.url!.includes('/manifests/')) { res.writeHead(500); res.end('down'); return true; } return false; }];
    const before = reg.requests.length;
    const e = await expectOciError(c.getManifest('a/b', 'v1'), 'UNAVAILABLE');
    expect(e.status).toBe(500);
    expect(reg.requests.length - before).toBe(4);

    let limited = 1;
    reg.hooks = [(req, res) => {
      if (limited > 0) { limited--; res.writeHead(429, { 'retry-after': '0' }); res.end(); return true; }
      return false;
    }];
    await c.getManifest('a/b', 'v1');
    expect(limited).toBe(0);
  }));

  test('network error is retried; connection refused → UNAVAILABLE', () => withRegistry({}, async (reg) => {
    sampleImage(reg, 'a/b', 'v1');
    let drops = 1;
    reg.hooks = [(req, res) => { if (drops > 0) { drops--; req.socket.destroy(); return true; } return false; }];
    await client(reg).getManifest('a/b', 'v1');
    expect(drops).toBe(0);
    const dead = new RegistryClient({ registry: '127.0.0.1:1', insecure: true, retries: 1, retryDelayMs: 1 });
    await expectOciError(dead.ping(), 'UNAVAILABLE');
  }));

  test('upload restarts after a transient failure; other statuses → UNAVAILABLE with registry codes', () => withRegistry({}, async (reg) => {
    let fail = 1;
    reg.hooks = [(req, res) => {
      if (fail > 0 && req.method === 'PUT' && req.url!.includes('/uploads/')) { fail--; res.writeHead(502); res.end(); return true; }
      return false;
    }];
    const c = client(reg);
    const d = await c.pushBlob('r/s', Buffer.from('retry me'));
    expect(reg.blobs.has(d)).toBe(true);
    expect(reg.requests.filter((r) => r.method === 'POST').length).toBe(2);

    reg.hooks = [(req, res) => {
      if (req.method === 'PUT' && req.url!.includes('/manifests/')) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] }));
        return true;
      }
      return false;
    }];
    const e = await expectOciError(c.pushManifest('r/s', 'v1', MediaTypes.ociManifest, Buffer.from('{}')), 'UNAVAILABLE');
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/MANIFEST_INVALID/);
  }));

  test('request timeout → UNAVAILABLE', async () => {
    const server = http.createServer(() => { /* never answers */ });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = new RegistryClient({ registry: `127.0.0.1:${(server.address() as AddressInfo).port}`, insecure: true, timeoutMs: 200, retries: 0 });
      const e = await expectOciError(c.ping(), 'UNAVAILABLE');
      expect(e.message).toMatch(/timeout/i);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('sha256Digest', () => {
    expect(sha256Digest('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
