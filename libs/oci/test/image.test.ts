import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { FetchedManifest, MediaTypes, OciError, RegistryClient, listImageFiles, normalizeTarPath, readImageFiles } from '../src';
import { MockRegistry } from './mock-registry';
import { makeTar, TarEntry, zstdStored } from './tarball';

let reg: MockRegistry;
let client: RegistryClient;

beforeAll(async () => {
  reg = await new MockRegistry().start();
  client = new RegistryClient({ registry: reg.host, insecure: true, retryDelayMs: 5 });
});
afterAll(() => reg.stop());

type Compress = 'gzip' | 'zstd' | 'none' | 'gzip-as-tar';
let n = 0;

async function image(layers: { entries: TarEntry[]; compress?: Compress }[], manifestType: string = MediaTypes.ociManifest): Promise<FetchedManifest> {
  const docker = manifestType === MediaTypes.dockerManifest;
  const descs = [];
  for (const l of layers) {
    const raw = await makeTar(l.entries);
    const c = l.compress ?? 'gzip';
    const data = c === 'gzip' || c === 'gzip-as-tar' ? gzipSync(raw) : c === 'zstd' ? zstdStored(raw) : raw;
    const mediaType = c === 'gzip' ? (docker ? MediaTypes.dockerLayerGzip : MediaTypes.ociLayerGzip)
      : c === 'zstd' ? MediaTypes.ociLayerZstd : docker ? MediaTypes.dockerLayer : MediaTypes.ociLayer;
    descs.push({ mediaType, digest: await client.pushBlob('t/img', data), size: data.length });
  }
  const config = Buffer.from(`{"architecture":"amd64","os":"linux","n":${n++}}`);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: manifestType,
    config: { mediaType: docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig, digest: await client.pushBlob('t/img', config), size: config.length },
    layers: descs,
  }));
  const tag = `t${n}`;
  await client.pushManifest('t/img', tag, manifestType, manifest);
  return client.getManifest('t/img', tag);
}

const all = () => true;
const asText = (m: Map<string, Buffer>) => Object.fromEntries([...m].map(([k, v]) => [k, v.toString()]).sort());

test('normalizeTarPath', () => {
  expect(normalizeTarPath('./usr/install/amd64/vmlinuz')).toBe('usr/install/amd64/vmlinuz');
  expect(normalizeTarPath('/abs//dir/./file')).toBe('abs/dir/file');
  expect(normalizeTarPath('dir/')).toBe('dir');
  expect(normalizeTarPath('./')).toBe('');
  expect(() => normalizeTarPath('a/../../etc/passwd')).toThrow(OciError);
});

test('gzip, uncompressed and zstd layers are flattened in order; paths normalized', async () => {
  const m = await image([
    { entries: [{ name: './usr/', type: 'directory' }, { name: './usr/install/amd64/vmlinuz', data: 'k1' }, { name: '/etc/os-release', data: 'os' }] },
    { entries: [{ name: 'usr/install/amd64/initramfs.xz', data: 'i1' }], compress: 'none' },
    { entries: [{ name: 'usr/install/amd64/vmlinuz', data: 'k2' }], compress: 'zstd' },
  ]);
  const files = await readImageFiles(client, 't/img', m, (p) => p.startsWith('usr/install/'));
  expect(asText(files)).toEqual({ 'usr/install/amd64/initramfs.xz': 'i1', 'usr/install/amd64/vmlinuz': 'k2' });
});

test('docker schema2 image, gzip layer labelled as plain tar is sniffed', async () => {
  const m = await image([{ entries: [{ name: 'image-digests', data: 'a@sha256:x\n' }], compress: 'gzip-as-tar' }], MediaTypes.dockerManifest);
  expect(m.json.layers[0].mediaType).toBe(MediaTypes.dockerLayer);
  expect(asText(await readImageFiles(client, 't/img', m, all))).toEqual({ 'image-digests': 'a@sha256:x\n' });
});

test('large zstd layer (several blocks)', async () => {
  const big = Buffer.alloc(700 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const m = await image([{ entries: [{ name: 'big.bin', data: big }], compress: 'zstd' }]);
  const files = await readImageFiles(client, 't/img', m, all);
  expect(files.get('big.bin')?.equals(big)).toBe(true);
});

const zstdCli = spawnSync('zstd', ['--version']).status === 0;
(zstdCli ? test : test.skip)(zstdCli ? 'real zstd-compressed layer (zstd CLI)' : 'real zstd-compressed layer (skipped: no zstd CLI on this machine)', async () => {
  const raw = await makeTar([{ name: 'manifest.yaml', data: 'version: v1alpha1\n'.repeat(1000) }, { name: 'rootfs/usr/lib/x', data: 'x' }]);
  const z = spawnSync('zstd', ['-q', '-19', '-c'], { input: raw, maxBuffer: 1 << 26 }).stdout as Buffer;
  expect(z.length).toBeLessThan(raw.length);
  const config = Buffer.from('{}');
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: await client.pushBlob('t/img', config), size: 2 },
    layers: [{ mediaType: MediaTypes.ociLayerZstd, digest: await client.pushBlob('t/img', z), size: z.length }] }));
  await client.pushManifest('t/img', 'zstd', MediaTypes.ociManifest, manifest);
  const files = await readImageFiles(client, 't/img', await client.getManifest('t/img', 'zstd'), all);
  expect(files.get('manifest.yaml')?.toString()).toBe('version: v1alpha1\n'.repeat(1000));
  expect(files.get('rootfs/usr/lib/x')?.toString()).toBe('x');
});

test('whiteouts, opaque directories, replaced files and directories', async () => {
  const m = await image([
    { entries: [
      { name: 'a/x', data: 'ax' }, { name: 'a/y', data: 'ay' }, { name: 'b/z', data: 'bz' }, { name: 'b/deep/q', data: 'bq' },
      { name: 'c/old', data: 'co' }, { name: 'd', data: 'file-d' }, { name: 'e/child', data: 'ec' }, { name: 'f', data: 'f1' },
    ] },
    { entries: [
      { name: 'a/.wh.x' }, { name: '.wh.b' },
      { name: 'c/.wh..wh..opq' }, { name: 'c/new', data: 'cn' },
      { name: 'd', type: 'directory' }, { name: 'd/inner', data: 'di' },
      { name: 'e', data: 'now-a-file' },
      { name: 'f', type: 'symlink', linkname: 'a/y' },
      // a whiteout only hides lower layers: g/kept is added in this very layer and survives
      { name: 'g/kept', data: 'gk' }, { name: 'g/.wh.kept' },
    ] },
  ]);
  expect(asText(await readImageFiles(client, 't/img', m, all))).toEqual({
    'a/y': 'ay', 'c/new': 'cn', 'd/inner': 'di', e: 'now-a-file', 'g/kept': 'gk',
  });
});

test('hard links resolve to their wanted targets (same and lower layer)', async () => {
  const m = await image([
    { entries: [{ name: 'bin/installer', data: 'installer-binary' }] },
    { entries: [{ name: 'bin/imager', type: 'link', linkname: 'bin/installer' }, { name: 'x/a', data: 'xa' }, { name: 'x/b', type: 'link', linkname: './x/a' }] },
  ]);
  expect(asText(await readImageFiles(client, 't/img', m, all))).toEqual({
    'bin/imager': 'installer-binary', 'bin/installer': 'installer-binary', 'x/a': 'xa', 'x/b': 'xa',
  });
});

test('".." traversal is rejected', async () => {
  const m = await image([{ entries: [{ name: 'ok', data: 'ok' }, { name: 'a/../../etc/passwd', data: 'evil' }] }]);
  const err = await readImageFiles(client, 't/img', m, all).catch((e) => e);
  expect(err).toBeInstanceOf(OciError);
  expect(err.code).toBe('INVALID');
  expect(err.message).toMatch(/escapes/);
});

test('limits: maxFileBytes and maxTotalBytes → TOO_LARGE; unwanted files are not counted', async () => {
  const m = await image([{ entries: [{ name: 'a', data: 'x'.repeat(100) }, { name: 'b', data: 'y'.repeat(100) }, { name: 'big', data: 'z'.repeat(1000) }] }]);
  await expect(readImageFiles(client, 't/img', m, all, { maxFileBytes: 500 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
  await expect(readImageFiles(client, 't/img', m, (p) => p !== 'big', { maxTotalBytes: 150 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
  const ok = await readImageFiles(client, 't/img', m, (p) => p !== 'big', { maxFileBytes: 500, maxTotalBytes: 200 });
  expect([...ok.keys()].sort()).toEqual(['a', 'b']);
});

test('an index is refused; a tampered layer fails with DIGEST_MISMATCH; unknown layer types are refused', async () => {
  const m = await image([{ entries: [{ name: 'f', data: 'content' }] }]);
  const idx: FetchedManifest = { mediaType: MediaTypes.ociIndex, digest: 'sha256:' + '0'.repeat(64), raw: Buffer.from('{}'), json: { manifests: [] } };
  await expect(readImageFiles(client, 't/img', idx, all)).rejects.toMatchObject({ code: 'INVALID' });

  const layerDigest = m.json.layers[0].digest as string;
  const good = reg.blobs.get(layerDigest)!;
  const evil = gzipSync(await makeTar([{ name: 'f', data: 'CONTENT' }]));
  reg.blobs.set(layerDigest, evil);
  const bad: FetchedManifest = { ...m, json: { ...m.json, layers: [{ ...m.json.layers[0], size: evil.length }] } };
  try {
    await expect(readImageFiles(client, 't/img', bad, all)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  } finally {
    reg.blobs.set(layerDigest, good);
  }
  const other: FetchedManifest = { ...m, json: { ...m.json, layers: [{ ...m.json.layers[0], mediaType: 'application/data' }] } };
  await expect(readImageFiles(client, 't/img', other, all)).rejects.toMatchObject({ code: 'INVALID' });
});

test('corrupt gzip → INVALID', async () => {
  const junk = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(100, 0x55)]);
  const config = Buffer.from('{}');
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: await client.pushBlob('t/img', config), size: 2 },
    layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: await client.pushBlob('t/img', junk), size: junk.length }] }));
  await client.pushManifest('t/img', 'junk', MediaTypes.ociManifest, manifest);
  await expect(readImageFiles(client, 't/img', await client.getManifest('t/img', 'junk'), all)).rejects.toMatchObject({ code: 'INVALID' });
});

test('listImageFiles: regular files of the flattened image with their sizes, from tar headers only', async () => {
  const big = Buffer.alloc(300 * 1024, 7);
  const m = await image([
    { entries: [{ name: './talosctl-linux-amd64', data: big }, { name: 'talosctl-darwin-arm64', data: 'old' }, { name: 'gone', data: 'x' }, { name: 'dir/', type: 'directory' }, { name: 'dir/inner', data: 'in' }] },
    { entries: [{ name: 'talosctl-darwin-arm64', data: 'newer' }, { name: '.wh.gone' }, { name: 'link', type: 'symlink', linkname: 'talosctl-darwin-arm64' }, { name: 'hard', type: 'link', linkname: 'dir/inner' }], compress: 'zstd' },
  ]);
  const listed = await listImageFiles(client, 't/img', m);
  expect(Object.fromEntries([...listed].sort())).toEqual({ 'dir/inner': 2, hard: 2, 'talosctl-darwin-arm64': 5, 'talosctl-linux-amd64': big.length });
});
