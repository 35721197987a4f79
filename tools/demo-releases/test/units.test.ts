/** Fast unit tests of the demo-releases building blocks (no Debian packages, no registry, no QEMU). */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildExtensionImage,
  createCpio,
  createTar,
  derSignature,
  extensionManifestYaml,
  extensionsCatalogFiles,
  fetchTrixieSdBoot,
  loadSigningKey,
  MIN_SD_BOOT_SYSTEMD,
  moduleLoadOrder,
  MT,
  overlayInstallerScript,
  parseFixtureReport,
  readCpio,
  readTar,
  Repository,
  signatureTag,
  signP256Deterministic,
  signPayload,
  simpleSigningPayload,
  systemdMajor,
  verifyPayload,
  withCpioParents,
  withParentDirs,
} from '../src';

describe('tar', () => {
  it('is deterministic, sorted, root-owned and readable by GNU tar', () => {
    const entries = withParentDirs([
      { type: 'file', path: 'usr/bin/installer', data: 'x', mode: 0o755 },
      { type: 'symlink', path: 'usr/bin/imager', target: 'installer' },
      { type: 'file', path: `deep/${'d'.repeat(120)}/${'f'.repeat(90)}`, data: 'long' },
      { type: 'file', path: 'a', data: 'A', pax: { 'SCHILY.xattr.security.selinux': 'system_u:object_r:system_t:s0' } },
    ]);
    const a = createTar(entries);
    const b = createTar([...entries].reverse());
    expect(a.equals(b)).toBe(true);
    const read = readTar(a);
    expect(read.map((e) => e.path)).toEqual([
      'a', 'deep/', `deep/${'d'.repeat(120)}/`, `deep/${'d'.repeat(120)}/${'f'.repeat(90)}`, 'usr/', 'usr/bin/', 'usr/bin/imager', 'usr/bin/installer',
    ]);
    expect(read[0].pax['SCHILY.xattr.security.selinux']).toBe('system_u:object_r:system_t:s0');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tar-'));
    fs.writeFileSync(path.join(dir, 'x.tar'), a);
    const listing = execFileSync('tar', ['-tvf', path.join(dir, 'x.tar')]).toString();
    expect(listing.trim().split('\n').every((l) => l.includes(' 0/0 '))).toBe(true);
    expect(listing).toContain('usr/bin/imager -> installer');
    expect(listing).toContain('f'.repeat(90));
    fs.rmSync(dir, { recursive: true });
  });
});

describe('cpio', () => {
  it('writes newc archives that GNU cpio lists and that read back', () => {
    const cpio = createCpio(withCpioParents([
      { type: 'file', path: 'init', data: '#!/bin/busybox sh\n', mode: 0o755 },
      { type: 'file', path: 'lib/fixture-modules/loop.ko', data: Buffer.alloc(5, 1) },
    ]));
    expect(cpio.length % 512).toBe(0);
    expect(readCpio(cpio).map((e) => e.path)).toEqual(['init', 'lib', 'lib/fixture-modules', 'lib/fixture-modules/loop.ko']);
    const listing = execFileSync('cpio', ['-t', '--quiet'], { input: cpio }).toString().trim().split('\n');
    expect(listing).toEqual(['init', 'lib', 'lib/fixture-modules', 'lib/fixture-modules/loop.ko']);
    // concatenated archives read back as one list
    expect(readCpio(Buffer.concat([cpio, cpio])).length).toBe(8);
  });
});

describe('cosign simple signing', () => {
  it('matches the RFC 6979 P-256/SHA-256 test vector', () => {
    const x = 0xc9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721n;
    const { r, s } = signP256Deterministic(x, Buffer.from('sample'));
    expect(r.toString(16)).toBe('efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716');
    expect(s.toString(16)).toBe('f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8');
    expect(derSignature(r, s)[0]).toBe(0x30);
  });

  it('signs payloads deterministically and verifiably, and builds cosign-style .sig manifests', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const key = loadSigningKey(privateKey.export({ format: 'pem', type: 'sec1' }).toString());
    const digest = `sha256:${'ab'.repeat(32)}`;
    const payload = simpleSigningPayload('ghcr.io/siderolabs/imager', digest);
    expect(payload.toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"ghcr.io/siderolabs/imager"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`,
    );
    const sig = signPayload(key, payload);
    expect(signPayload(key, payload)).toBe(sig);
    expect(verifyPayload(key.publicPem, payload, sig)).toBe(true);
    expect(verifyPayload(key.publicPem, Buffer.concat([payload, Buffer.from(' ')]), sig)).toBe(false);

    const repo = new Repository('siderolabs/x');
    repo.tag('v1', { mediaType: MT.ociIndex, digest, size: 1 });
    repo.sign(key, 'ghcr.io/siderolabs/x');
    const sigDesc = repo.tags.get(signatureTag(digest))!;
    expect(signatureTag(digest)).toBe(`sha256-${'ab'.repeat(32)}.sig`);
    const man = JSON.parse(repo.store.get(sigDesc.digest).toString());
    expect(man.mediaType).toBe(MT.ociManifest);
    expect(man.layers).toHaveLength(1);
    expect(man.layers[0].mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    const layerPayload = repo.store.get(man.layers[0].digest);
    expect(verifyPayload(key.publicPem, layerPayload, man.layers[0].annotations['dev.cosignproject.cosign/signature'])).toBe(true);
  });
});

describe('metadata formats', () => {
  it('writes extension manifests per talos-formats 3.2', () => {
    expect(extensionManifestYaml({ name: 'hello', version: '1.0.0', constraint: '>= v1.7.0', author: 'A', description: '[demo] x\n' })).toBe(
      'version: v1alpha1\nmetadata:\n  name: hello\n  version: "1.0.0"\n  author: A\n  description: |\n    [demo] x\n  compatibility:\n    talos:\n      version: ">= v1.7.0"\n',
    );
  });

  it('builds two-layer docker v2s2 multi-arch extension images', async () => {
    const repo = new Repository('siderolabs/too-new');
    const idx = await buildExtensionImage(repo, { name: 'too-new', version: '1.0.0', constraint: '>= v9.0.0', files: [{ path: 'usr/local/etc/fixture-ext/too-new', data: 'x\n' }] });
    expect(idx.mediaType).toBe(MT.dockerList);
    const list = JSON.parse(repo.store.get(idx.digest).toString());
    expect(list.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    const man = JSON.parse(repo.store.get(list.manifests[0].digest).toString());
    expect(man.mediaType).toBe(MT.dockerManifest);
    expect(man.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MT.dockerLayerGzip, MT.dockerLayerGzip]);
    const zlib = await import('node:zlib');
    const l0 = readTar(zlib.gunzipSync(repo.store.get(man.layers[0].digest))).map((e) => e.path);
    const l1 = readTar(zlib.gunzipSync(repo.store.get(man.layers[1].digest)));
    expect(l0).toContain('rootfs/usr/local/etc/fixture-ext/too-new');
    expect(l1.map((e) => e.path)).toEqual(['manifest.yaml']);
    expect(l1[0].data.toString()).toContain('version: ">= v9.0.0"');
    // same inputs, same digest
    const again = await buildExtensionImage(new Repository('r'), { name: 'too-new', version: '1.0.0', constraint: '>= v9.0.0', files: [{ path: 'usr/local/etc/fixture-ext/too-new', data: 'x\n' }] });
    expect(again.digest).toBe(idx.digest);
  });

  it('writes extension catalogs with a quoted key and a missing description', () => {
    const files = extensionsCatalogFiles(
      [
        { name: 'a', tag: '1', digest: `sha256:${'1'.repeat(64)}`, author: 'X', description: 'd\n' },
        { name: 'b', tag: '2', digest: `sha256:${'2'.repeat(64)}`, author: 'X', description: 'd\n' },
        { name: 'c', tag: '3', digest: `sha256:${'3'.repeat(64)}`, author: 'X', description: 'd\n' },
      ],
      1,
      2,
    );
    const digests = (files[0] as { data: string }).data;
    const desc = (files[1] as { data: string }).data;
    expect(digests.split('\n')[0]).toBe(`ghcr.io/siderolabs/a:1@sha256:${'1'.repeat(64)}`);
    expect(desc).toContain(`ghcr.io/siderolabs/a:1@sha256:${'1'.repeat(64)}:\n  author: X\n  description: |\n    d\n`);
    expect(desc).toContain(`"ghcr.io/siderolabs/b:2@sha256:${'2'.repeat(64)}":`);
    expect(desc).not.toContain('siderolabs/c:3');
  });
});

describe('overlay installer script', () => {
  it('implements get-options and install', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-'));
    const script = path.join(dir, 'fixture_board');
    fs.writeFileSync(script, overlayInstallerScript(), { mode: 0o755 });
    expect(execFileSync(script, ['get-options'], { input: '{}\n' }).toString()).toBe(
      'name: fixture_board\nkernelArgs:\n    - console=ttyS0\n    - fixture.overlay=1\npartitionOptions:\n    offset: 2048\n',
    );
    expect(execFileSync(script, ['get-options'], { input: 'fixtureValue: "hello"\n' }).toString()).toContain('fixture.overlay=hello');
    fs.mkdirSync(path.join(dir, 'artifacts/amd64/fixture'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'artifacts/amd64/fixture/blob.bin'), 'BLOB');
    fs.writeFileSync(path.join(dir, 'disk.raw'), Buffer.alloc(1 << 20));
    const input = `installDisk: ${dir}/disk.raw\nmountPrefix: ${dir}/mnt\nartifactsPath: ${dir}/artifacts\nextraOptions:\n    fixtureValue: x\n`;
    execFileSync(script, ['install'], { input });
    expect(fs.readFileSync(path.join(dir, 'mnt/boot/EFI/fixture-blob.bin'), 'utf8')).toBe('BLOB');
    expect(fs.readFileSync(path.join(dir, 'mnt/boot/EFI/fixture-install.yaml'), 'utf8')).toBe(input);
    const disk = fs.readFileSync(path.join(dir, 'disk.raw'));
    expect(disk.subarray(64 * 512, 64 * 512 + 4).toString()).toBe('BLOB');
    expect(disk.length).toBe(1 << 20);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('modules.dep load order', () => {
  it('puts dependencies first', () => {
    const deps = {
      'kernel/drivers/block/virtio_blk.ko': ['kernel/drivers/virtio/virtio.ko', 'kernel/drivers/virtio/virtio_ring.ko'],
      'kernel/drivers/virtio/virtio.ko': [],
      'kernel/drivers/virtio/virtio_ring.ko': [],
      'kernel/drivers/block/loop.ko': [],
    };
    expect(moduleLoadOrder(deps, ['loop', 'virtio_blk', 'not_a_module'])).toEqual([
      'kernel/drivers/block/loop.ko', 'kernel/drivers/virtio/virtio.ko', 'kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/block/virtio_blk.ko',
    ]);
  });
});

describe('systemd-boot-efi from trixie', () => {
  it('reads systemd\'s major version from Debian versions', () => {
    expect(systemdMajor('257.13-1~deb13u1')).toBe(257);
    expect(systemdMajor('1:252.39-1~deb12u2')).toBe(252);
    expect(systemdMajor('garbage')).toBe(0);
    expect(MIN_SD_BOOT_SYSTEMD).toBe(257);
  });

  it('uses the newest cached .deb of systemd >= 257 without fetching (offline), ignoring bookworm\'s 252', async () => {
    const debDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdboot-cache-'));
    try {
      for (const f of ['systemd-boot-efi_252.39-1~deb12u2_amd64.deb', 'systemd-boot-efi_257.9-1~deb13u1_amd64.deb', 'systemd-boot-efi_257.13-1~deb13u1_amd64.deb', 'systemd-boot-efi_258.1-1_arm64.deb']) {
        fs.writeFileSync(path.join(debDir, f), f);
      }
      const logged: string[] = [];
      const pkg = await fetchTrixieSdBoot('amd64', debDir, (l) => logged.push(l));
      expect(pkg).toMatchObject({ name: 'systemd-boot-efi', arch: 'amd64', version: '257.13-1~deb13u1', file: path.join(debDir, 'systemd-boot-efi_257.13-1~deb13u1_amd64.deb') });
      expect(pkg.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(logged).toEqual([]); // nothing fetched
    } finally {
      fs.rmSync(debDir, { recursive: true, force: true });
    }
  });
});

describe('report parser', () => {
  it('parses a report', () => {
    const serial = [
      '[    1.0] noise',
      'FIXTURE begin',
      'FIXTURE talos-version v1.11.3',
      'FIXTURE extensions.yaml begin',
      'FIXTURE | layers:',
      'FIXTURE |     - image: 0.sqsh',
      'FIXTURE extensions.yaml end',
      'FIXTURE layer 0 0.sqsh abc',
      'FIXTURE extension hello 1.1.0',
      'FIXTURE layer-mount 0 ok',
      'FIXTURE marker hello hello 1.1.0',
      'FIXTURE meta-hex 0 5a4b3c2d',
      'FIXTURE meta-hex 32 00ff',
      'FIXTURE done\r',
    ].join('\r\n');
    const r = parseFixtureReport(serial);
    expect(r.done).toBe(true);
    expect(r.extensionsYaml).toBe('layers:\n    - image: 0.sqsh\n');
    expect(r.extensions).toEqual([{ name: 'hello', version: '1.1.0' }]);
    expect(r.layers[0]).toMatchObject({ index: 0, image: '0.sqsh', sha256: 'abc', mounted: true, markers: { hello: 'hello 1.1.0' } });
    expect(r.metaBytes!.length).toBe(34);
    expect(r.metaBytes!.readUInt32BE(0)).toBe(0x5a4b3c2d);
  });
});
