/**
 * The upstream catalog against a real Debian docker-registry holding hand-made catalog images: signature
 * verification with the right key, the wrong key and no signature; namespaces; version filtering and 404s.
 */
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { pushCosignSignature, RegistryClient } from '@factory/oci';
import type { UpstreamSettings } from '@factory/config';
import { FactoryError } from '@factory/errors';
import { UpstreamCatalog } from '../src';
import { startRegistry, ProcHandle } from '../../../test/support/procs';
import { pushFilesImage } from '../../../test/support/oci-fixtures';

jest.setTimeout(60_000);

const D = 'sha256:' + '1'.repeat(64);
let registry: ProcHandle & { host: string };
let client: RegistryClient;
let signer: KeyObject;
let keyFile: string;
let otherKeyFile: string;

function settings(over: Partial<UpstreamSettings> = {}): UpstreamSettings {
  return {
    registry: registry.host,
    namespace: 'mirror',
    insecure: true,
    publicKeyFile: keyFile,
    verifySignatures: true,
    components: { imager: 'siderolabs/imager', installerBase: 'siderolabs/installer-base', installer: 'siderolabs/installer', extensions: 'siderolabs/extensions', overlays: 'siderolabs/overlays', talosctl: 'siderolabs/talosctl-all' },
    minTalosVersion: '1.2.0',
    brokenTalosVersions: [],
    versionRecheckMs: 60_000,
    ...over,
  };
}

async function pushSigned(repo: string, tag: string, files: Record<string, string>, key: KeyObject | null = signer): Promise<void> {
  const digest = await pushFilesImage(client, repo, tag, files);
  if (key) await pushCosignSignature(client, repo, digest, key, `ghcr.io/${repo.replace(/^mirror\//, '')}`);
}

beforeAll(async () => {
  registry = await startRegistry();
  client = new RegistryClient({ registry: registry.host, insecure: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'catalog-keys-'));
  const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  signer = a.privateKey;
  keyFile = path.join(dir, 'a.pub');
  otherKeyFile = path.join(dir, 'b.pub');
  writeFileSync(keyFile, a.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(otherKeyFile, b.publicKey.export({ type: 'spki', format: 'pem' }));
  for (const tag of ['v1.6.1', 'v1.8.0', 'v1.9.0', 'v1.9.1', 'v1.1.0', 'junk']) await pushSigned('mirror/siderolabs/imager', tag, { 'usr/install/amd64/vmlinuz': tag });
  await pushSigned('mirror/siderolabs/extensions', 'v1.9.0', {
    'image-digests': `ghcr.io/siderolabs/hello:1.0@${D}\n`,
    'descriptions.yaml': `ghcr.io/siderolabs/hello:1.0@${D}:\n  author: Fixture\n  description: hi\n`,
  });
  await pushSigned('mirror/siderolabs/extensions', 'v1.9.1', { 'image-digests': `ghcr.io/siderolabs/hello:1.1@${D}\n` }, null);
  await pushSigned('mirror/siderolabs/overlays', 'v1.9.0', { 'overlays.yaml': `overlays:\n  - name: board\n    image: ghcr.io/siderolabs/sbc-x:v1\n    digest: ${D}\n` });
});

afterAll(() => registry?.stop());

test('versions from the namespaced imager repository', async () => {
  const cat = new UpstreamCatalog(settings(), pino({ level: 'silent' }));
  expect(await cat.versions()).toEqual(['v1.6.1', 'v1.8.0', 'v1.9.0', 'v1.9.1']);
});

test('a signed catalog is read; ref uses the configured registry without the namespace', async () => {
  const cat = new UpstreamCatalog(settings(), pino({ level: 'silent' }));
  const ext = await cat.extensions('1.9.0');
  expect(ext).toEqual([{ name: 'siderolabs/hello', ref: `${registry.host}/siderolabs/hello:1.0`, digest: D, author: 'Fixture', description: 'hi', repository: 'siderolabs/hello', tag: '1.0' }]);
  expect((await cat.overlays('v1.9.0')).map((o) => o.name)).toEqual(['board']);
  expect(await cat.overlays('v1.6.1')).toEqual([]);
});

test('wrong key and missing signature are refused', async () => {
  const wrong = new UpstreamCatalog(settings({ publicKeyFile: otherKeyFile }), pino({ level: 'silent' }));
  await expect(wrong.extensions('v1.9.0')).rejects.toMatchObject({ status: 502, message: expect.stringContaining('failed signature verification') });
  const right = new UpstreamCatalog(settings(), pino({ level: 'silent' }));
  await expect(right.extensions('v1.9.1')).rejects.toMatchObject({ status: 502 });
  // Verification off (explicitly) reads the unsigned one.
  const off = new UpstreamCatalog(settings({ verifySignatures: false, publicKeyFile: undefined }), pino({ level: 'silent' }));
  expect((await off.extensions('v1.9.1'))[0].tag).toBe('1.1');
});

test('404 for versions not offered, 400 for malformed ones, 404 for a missing catalog', async () => {
  const cat = new UpstreamCatalog(settings(), pino({ level: 'silent' }));
  await expect(cat.extensions('1.1.0')).rejects.toEqual(new FactoryError(404, 'version 1.1.0 is not available'));
  await expect(cat.extensions('abc')).rejects.toMatchObject({ status: 400 });
  await expect(cat.extensions('v1.8.0')).rejects.toMatchObject({ status: 404 });
});

test('an unreachable registry is a 503', async () => {
  const cat = new UpstreamCatalog(settings({ registry: '127.0.0.1:1' }), pino({ level: 'silent' }));
  await expect(cat.versions()).rejects.toMatchObject({ status: 503 });
});

test('digest-pinned resolutions are remembered; tags are resolved every time', async () => {
  const cat = new UpstreamCatalog(settings(), pino({ level: 'silent' }));
  const repo = cat.repo('siderolabs/imager');
  const byTag = await cat.resolveVerified(repo, 'v1.9.0');
  const spy = jest.spyOn(cat.client, 'getManifest');
  const first = await cat.resolveVerified(repo, byTag.digest);
  const afterFirst = spy.mock.calls.length;
  expect(afterFirst).toBeGreaterThan(0);
  const second = await cat.resolveVerified(repo, byTag.digest);
  expect(second).toBe(first);
  expect(first.digest).toBe(byTag.digest);
  expect(spy.mock.calls.length).toBe(afterFirst); // no registry round trip
  await cat.resolveVerified(repo, 'v1.9.0');
  expect(spy.mock.calls.length).toBeGreaterThan(afterFirst); // a tag may move: asked again
  spy.mockRestore();
});

describe('talosctl', () => {
  // its own namespace: the imager tags it adds do not change the other tests' version lists
  const ns = 'talosctl-ns';
  beforeAll(async () => {
    for (const tag of ['v1.10.0', 'v1.11.0', 'v1.12.0']) await pushSigned(`${ns}/siderolabs/imager`, tag, { 'usr/install/amd64/vmlinuz': tag });
    await pushSigned(`${ns}/siderolabs/talosctl-all`, 'v1.11.0', {
      'talosctl-linux-amd64': 'linux binary',
      'talosctl-windows-amd64.exe': 'exe',
      'talosctl-darwin-arm64': 'mac',
      'README.md': 'not a binary',
      'talosctl-linux-amd64-extra': 'three parts after the prefix',
      'sub/talosctl-linux-arm64': 'not at the root',
    });
  });

  test('lists the root binaries of the verified image, sorted, with sizes and the pinned digest', async () => {
    const cat = new UpstreamCatalog(settings({ namespace: ns }), pino({ level: 'silent' }));
    const release = await cat.talosctl('1.11.0');
    expect(release.version).toBe('v1.11.0');
    expect(release.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(release.files).toEqual([
      { name: 'talosctl-darwin-arm64', size: 3 },
      { name: 'talosctl-linux-amd64', size: 12 },
      { name: 'talosctl-windows-amd64.exe', size: 3 },
    ]);
  });

  test('before 1.11 nothing, without reading an image; no image or a version not offered is a 404; malformed a 400', async () => {
    const cat = new UpstreamCatalog(settings({ namespace: ns }), pino({ level: 'silent' }));
    expect(await cat.talosctl('v1.10.0')).toEqual({ version: 'v1.10.0', digest: '', files: [] });
    await expect(cat.talosctl('v1.12.0')).rejects.toMatchObject({ status: 404, message: 'version 1.12.0 is not available' });
    await expect(cat.talosctl('v1.13.0')).rejects.toMatchObject({ status: 404, message: 'version 1.13.0 is not available' });
    await expect(cat.talosctl('1.x')).rejects.toMatchObject({ status: 400 });
  });
});
