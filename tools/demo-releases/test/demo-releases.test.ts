/**
 * Proof test: build (or reuse) the demo releases, publish them into a registry, check what the registry serves,
 * and boot the v1.11.3 amd64 kernel + initramfs (with one extension appended the way the imager does it) in QEMU.
 *
 * The build directory defaults to $DEMO_CACHE_DIR/test-out (reused when up to date); override with
 * DEMO_RELEASES_TEST_OUT.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildDemoReleases,
  buildExtensionImage,
  buildImagerImage,
  bootQemu,
  compressInitramfs,
  createCpio,
  DEMO_TALOS_VERSIONS,
  defaultCacheDir,
  ensureSigningKey,
  EXTRA_IMAGER_TAGS,
  mksquashfs,
  MT,
  prepareKernelKit,
  publishDemoReleases,
  pushRepository,
  readCpio,
  readImageFiles,
  readLayoutTags,
  Releases,
  Repository,
  resolveImage,
  resolvePackages,
  sha256hex,
  signatureTag,
  startDemoRegistry,
  DemoRegistry,
  verifyPayload,
  buildInitramfs,
  MIN_SD_BOOT_SYSTEMD,
  systemdMajor,
} from '../src';
import { cosignMissingReason, cosignVerify } from '../../../test/support/cosign';

jest.setTimeout(15 * 60 * 1000);

const OUT = process.env.DEMO_RELEASES_TEST_OUT ?? path.join(defaultCacheDir(), 'test-out');
const layout = (name: string) => path.join(OUT, 'oci', 'siderolabs', name);
const ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ');

let releases: Releases;
let reg: DemoRegistry;
let work: string;

function skopeoRaw(ref: string): { mediaType: string; manifests?: Array<{ digest: string; platform: { architecture: string } }>; layers?: unknown[] } {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/${ref}`]).toString());
}

async function registryDigest(repo: string, ref: string): Promise<string> {
  const res = await fetch(`http://${reg.host}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
  expect(res.status).toBe(200);
  return res.headers.get('docker-content-digest') ?? '';
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-releases-test-'));
  const log = (l: string) => process.stderr.write(l + '\n');
  releases = await buildDemoReleases({ outDir: OUT, log });
  await publishDemoReleases(OUT, { log });
  reg = await startDemoRegistry(OUT);
});

afterAll(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('published demo releases', () => {
  it('records versions, kernels and extensions in releases.json', () => {
    expect(releases.versions.map((v) => v.version)).toEqual([...DEMO_TALOS_VERSIONS]);
    expect(releases.kernel.amd64?.version).toMatch(/^\d+\.\d+\.\d+-\d+-amd64$/);
    if (!releases.arm64Missing) expect(releases.kernel.arm64?.version).toMatch(/-arm64$/);
    const names = (v: string) => releases.versions.find((x) => x.version === v)!.extensions.map((e) => e.name);
    expect(names('v1.7.7')).toEqual(['hello', 'intel-ucode', 'dummy-module']);
    expect(names('v1.12.2')).toEqual(['hello', 'intel-ucode', 'dummy-module', 'gasket-driver']);
    expect(fs.statSync(path.join(OUT, 'cosign.key')).mode & 0o777).toBe(0o600);
    // systemd-boot and systemd-stub from trixie: a stub that honours UKI .profile sections (systemd >= 257)
    for (const a of releases.arches) {
      const sd = releases.packages.find((p) => p.name === 'systemd-boot-efi' && p.arch === a);
      expect(systemdMajor(sd?.version ?? '')).toBeGreaterThanOrEqual(MIN_SD_BOOT_SYSTEMD);
    }
  });

  it('serves a multi-arch imager index and every tag', async () => {
    const idx = skopeoRaw('siderolabs/imager:v1.11.3');
    expect(idx.mediaType).toBe(MT.ociIndex);
    const arches = idx.manifests!.map((m) => m.platform.architecture);
    expect(arches).toEqual(releases.arm64Missing ? ['amd64'] : ['amd64', 'arm64']);
    const tags = JSON.parse(execFileSync('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/siderolabs/imager`]).toString()).Tags as string[];
    for (const t of [...DEMO_TALOS_VERSIONS, ...Object.keys(EXTRA_IMAGER_TAGS)]) expect(tags).toContain(t);
    // digests preserved: every tag of every layout is served with the digest it has in the layout
    for (const img of releases.images) {
      expect(await registryDigest(img.repository, img.tag)).toBe(img.digest);
    }
    expect(await registryDigest('siderolabs/imager', 'latest')).toBe(releases.versions[2].images.imager.digest);
  });

  it('signs every tag with cosign simple signing (verifiable with cosign.pub)', async () => {
    const pub = fs.readFileSync(path.join(OUT, 'cosign.pub'), 'utf8');
    const tagged = releases.images.filter((i) => !i.tag.endsWith('.sig'));
    for (const img of tagged) {
      const sigTag = signatureTag(img.digest);
      const res = await fetch(`http://${reg.host}/v2/${img.repository}/manifests/${sigTag}`, { headers: { Accept: MT.ociManifest } });
      expect(res.status).toBe(200);
      const man = (await res.json()) as { layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }> };
      expect(man.layers).toHaveLength(1);
      expect(man.layers[0].mediaType).toBe(MT.cosignSimpleSigning);
      const payload = Buffer.from(await (await fetch(`http://${reg.host}/v2/${img.repository}/blobs/${man.layers[0].digest}`)).arrayBuffer());
      const p = JSON.parse(payload.toString());
      expect(p.critical.image['docker-manifest-digest']).toBe(img.digest);
      expect(p.critical.type).toBe('cosign container image signature');
      expect(p.critical.identity['docker-reference']).toBe(`ghcr.io/${img.repository}`);
      expect(verifyPayload(pub, payload, man.layers[0].annotations['dev.cosignproject.cosign/signature'])).toBe(true);
    }
  });

  // The real cosign binary (trixie's cosign 2.x from scripts/setup.sh, or FACTORY_COSIGN_BIN / DEMO_COSIGN_BIN).
  const cosignSkip = cosignMissingReason();
  if (cosignSkip) process.stderr.write(`[demo-releases test] skipping the real-cosign check: ${cosignSkip}\n`);
  (cosignSkip ? it.skip : it)(cosignSkip ? `verifies with the real cosign binary (skipped: ${cosignSkip})` : 'verifies with the real cosign binary', () => {
    const digest = releases.versions[1].images.imager.digest;
    const pub = path.join(OUT, 'cosign.pub');
    const byDigest = cosignVerify(`${reg.host}/siderolabs/imager@${digest}`, pub);
    expect(byDigest).toMatchObject({ code: 0 });
    expect(JSON.parse(byDigest.stdout)[0].critical.image['docker-manifest-digest']).toBe(digest);
    const byTag = cosignVerify(`${reg.host}/siderolabs/imager:${releases.versions[1].version}`, pub);
    expect(byTag).toMatchObject({ code: 0 });
    // and it does check: another key is rejected
    const other = path.join(work, 'other.pub');
    fs.writeFileSync(other, crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
    const wrong = cosignVerify(`${reg.host}/siderolabs/imager@${digest}`, other);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/no matching signatures/);
  });

  it('has faithful imager, installer, catalog, overlay and talosctl images', async () => {
    // imager v1.11.3: boot assets for both arches, config, labels
    const files = readImageFiles(layout('imager'), 'v1.11.3', 'amd64');
    for (const a of releases.arches) {
      for (const f of ['vmlinuz', 'initramfs.xz', 'systemd-stub.efi', 'systemd-boot.efi', 'talos.spdx.json']) expect(files.has(`usr/install/${a}/${f}`)).toBe(true);
    }
    expect(files.get('etc/modules.d/10-extra-modules.conf')!.data.toString()).toBe('search extras built-in\n');
    expect(files.get('usr/bin/imager')!.linkname).toBe('installer');
    const img = resolveImage(layout('imager'), 'v1.11.3', 'amd64');
    expect(img.manifest.layers).toHaveLength(1);
    expect(img.manifest.layers[0].mediaType).toBe(MT.ociLayerGzip);
    expect(img.config.config).toMatchObject({
      Entrypoint: ['/bin/imager'],
      Labels: { 'alpha.talos.dev/version': 'v1.11.3', 'org.opencontainers.image.source': 'https://github.com/siderolabs/talos' },
    });
    expect(img.config.config.Env).toEqual(expect.arrayContaining(['VERSION=v1.11.3', 'TARGETARCH=amd64']));
    expect(readImageFiles(layout('imager'), 'v1.7.7').has('usr/install/amd64/talos.spdx.json')).toBe(false);
    if (!releases.arm64Missing) {
      // arm64 kernel is the plain (gunzipped) Image: "ARMd" magic at offset 56
      const arm = files.get('usr/install/arm64/vmlinuz')!.data;
      expect(arm.subarray(56, 60).toString('latin1')).toBe('ARM\x64');
    }

    // installers
    expect(resolveImage(layout('installer'), 'v1.7.7').manifest.layers).toHaveLength(2);
    const legacy = readImageFiles(layout('installer'), 'v1.7.7');
    expect(legacy.has('usr/install/amd64/initramfs.xz')).toBe(true);
    expect(legacy.has('bin/installer')).toBe(true);
    expect(resolveImage(layout('installer-base'), 'v1.11.3').manifest.layers).toHaveLength(1);
    expect(readImageFiles(layout('installer-base'), 'v1.12.2').has('usr/bin/installer')).toBe(true);
    expect(readLayoutTags(layout('installer-base')).has('v1.7.7')).toBe(false);

    // extensions catalog: lines point at the real published digests
    const cat = readImageFiles(layout('extensions'), 'v1.12.2');
    const lines = cat.get('image-digests')!.data.toString().trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      const m = /^ghcr\.io\/(siderolabs\/[a-z-]+):([^@]+)@(sha256:[0-9a-f]{64})$/.exec(line)!;
      expect(m).not.toBeNull();
      expect(await registryDigest(m[1], m[2])).toBe(m[3]);
    }
    const desc = cat.get('descriptions.yaml')!.data.toString();
    expect(desc).toContain(`"${lines.find((l) => l.includes('/intel-ucode:'))}":`);
    expect(desc).not.toContain('dummy-module');

    // extension image: docker v2s2 list, two layers, manifest.yaml name = last path segment
    const ext = skopeoRaw('siderolabs/hello:1.1.0');
    expect(ext.mediaType).toBe(MT.dockerList);
    const hello = readImageFiles(layout('hello'), '1.1.0');
    expect(hello.get('rootfs/usr/local/etc/fixture-ext/hello')!.data.toString()).toBe('hello 1.1.0\n');
    expect(hello.get('manifest.yaml')!.data.toString()).toContain('  name: hello\n  version: "1.1.0"\n');
    const dm = readImageFiles(layout('dummy-module'), '1.0.0-v1.7.7');
    expect(dm.has(`rootfs/lib/modules/${releases.kernel.amd64!.version}/extras/dummy.ko`)).toBe(true);
    expect(readImageFiles(layout('intel-ucode'), '20250211').has('rootfs/usr/lib/firmware/intel-ucode/06-55-04')).toBe(true);

    // overlays catalog + overlay image
    const ov = readImageFiles(layout('overlays'), 'v1.11.3').get('overlays.yaml')!.data.toString();
    const sbcDigest = await registryDigest('siderolabs/sbc-fixture', 'v0.1.0');
    expect(ov).toBe(`overlays:\n  - name: fixture_board\n    image: ghcr.io/siderolabs/sbc-fixture:v0.1.0\n    digest: ${sbcDigest}\n`);
    const sbc = readImageFiles(layout('sbc-fixture'), 'v0.1.0');
    expect(sbc.get('profiles/fixture_board.yaml')!.data.toString()).toContain('arch: amd64');
    expect(sbc.get('installers/fixture_board')!.mode & 0o111).toBeTruthy();
    expect(sbc.has('artifacts/amd64/fixture/blob.bin')).toBe(true);

    // talosctl-all
    const tc = readImageFiles(layout('talosctl-all'), 'v1.12.2');
    expect([...tc.keys()].sort()).toEqual(['talosctl-darwin-arm64', 'talosctl-linux-amd64', 'talosctl-linux-arm64', 'talosctl-windows-amd64.exe']);
    expect(readLayoutTags(layout('talosctl-all')).has('v1.7.7')).toBe(false);
  });

  it('initramfs.xz: xz -C crc32 + /lib/modules for v1.7.7, zstd + /usr/lib/modules for v1.11.3', () => {
    const kver = releases.kernel.amd64!.version;
    for (const [v, xz] of [['v1.7.7', true], ['v1.11.3', false]] as const) {
      const data = readImageFiles(layout('imager'), v).get('usr/install/amd64/initramfs.xz')!.data;
      const file = path.join(work, `initramfs-${v}.xz`);
      fs.writeFileSync(file, data);
      let cpio: Buffer;
      if (xz) {
        expect(data.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe(true);
        expect(data[7] & 0x0f).toBe(0x01); // stream flags: check type CRC32 (the kernel's xz decoder needs it)
        execFileSync('xz', ['-t', file]);
        cpio = execFileSync('xz', ['-dc', file], { maxBuffer: 1 << 30 });
      } else {
        expect(data.readUInt32LE(0)).toBe(0xfd2fb528);
        cpio = execFileSync('zstd', ['-dc', file], { maxBuffer: 1 << 30 });
      }
      const entries = readCpio(cpio);
      const names = entries.map((e) => e.path);
      expect(names).toEqual(expect.arrayContaining(['init', 'bin/busybox', 'rootfs.sqsh', 'lib/fixture-modules/loop.ko', 'lib/fixture-modules/squashfs.ko', 'lib/fixture-modules/overlay.ko', 'lib/fixture-modules/virtio_blk.ko']));
      expect(entries.find((e) => e.path === 'init')!.data.toString()).toContain(`talos-version ${v}`);
      const sq = path.join(work, `rootfs-${v}.sqsh`);
      fs.writeFileSync(sq, entries.find((e) => e.path === 'rootfs.sqsh')!.data);
      const listing = execFileSync('unsquashfs', ['-l', sq]).toString();
      const mod = xz ? 'lib/modules' : 'usr/lib/modules';
      expect(listing).toContain(`squashfs-root/${mod}/${kver}/modules.dep`);
      expect(listing).toContain(`squashfs-root/${mod}/${kver}/kernel/fs/squashfs/squashfs.ko`);
      expect(listing.split('\n').filter((l) => new RegExp(`^squashfs-root/${mod}/[^/]+$`).test(l))).toEqual([`squashfs-root/${mod}/${kver}`]);
    }
  });

  it('builds deterministically (same imager index digest when rebuilt)', async () => {
    const cacheDir = defaultCacheDir();
    const pkgs = await resolvePackages(releases.arches, cacheDir, () => undefined);
    const assets = [];
    for (const a of releases.arches) {
      const kit = await prepareKernelKit(a, pkgs.get(a)!, cacheDir);
      assets.push({ kit, initramfs: (await buildInitramfs(kit, 'v1.11.3', path.join(work, `det-${a}`))).data });
    }
    const desc = await buildImagerImage(new Repository('siderolabs/imager'), 'v1.11.3', assets);
    expect(desc.digest).toBe(releases.versions.find((v) => v.version === 'v1.11.3')!.images.imager.digest);
  });

  it('can publish a purpose-built incompatible extension', async () => {
    const repo = new Repository('siderolabs/too-new');
    const d = await buildExtensionImage(repo, { name: 'too-new', version: '1.0.0', constraint: '>= v9.0.0', files: [{ path: 'usr/local/etc/fixture-ext/too-new', data: 'too-new 1.0.0\n' }] });
    repo.tag('1.0.0', d);
    repo.sign(ensureSigningKey(OUT), 'ghcr.io/siderolabs/too-new');
    // a scratch registry, so the shared build's registry storage stays exactly as published
    const scratch = await startDemoRegistry(path.join(work, 'scratch'));
    try {
      await pushRepository(repo, scratch.host);
      const head = async (ref: string) =>
        (await fetch(`http://${scratch.host}/v2/siderolabs/too-new/manifests/${ref}`, { method: 'HEAD', headers: { Accept: ACCEPT } })).headers.get('docker-content-digest');
      expect(await head('1.0.0')).toBe(d.digest);
      expect(await head(signatureTag(d.digest))).toBe(repo.tags.get(signatureTag(d.digest))!.digest);
    } finally {
      await scratch.stop();
    }
  });
});

describe('boot', () => {
  it('boots the v1.11.3 amd64 kernel + initramfs with an appended extension and prints the report', async () => {
    const v = 'v1.11.3';
    const files = readImageFiles(layout('imager'), v);
    const kernel = path.join(work, 'vmlinuz');
    fs.writeFileSync(kernel, files.get('usr/install/amd64/vmlinuz')!.data);
    const base = files.get('usr/install/amd64/initramfs.xz')!.data;

    // the extension, processed like talos-formats 4.2-4.4: rootfs -> 0.sqsh, extensions.yaml, compressed cpio appended
    const ext = readImageFiles(layout('hello'), '1.1.0');
    const rootfs = path.join(work, 'ext0');
    for (const [p, e] of ext) {
      if (e.type !== '0' || !p.startsWith('rootfs/')) continue;
      fs.mkdirSync(path.dirname(path.join(rootfs, p.slice(7))), { recursive: true });
      fs.writeFileSync(path.join(rootfs, p.slice(7)), e.data);
    }
    const sqsh = path.join(work, '0.sqsh');
    await mksquashfs(rootfs, sqsh, v);
    const sqshData = fs.readFileSync(sqsh);
    const extensionsYaml = [
      'layers:',
      '    - image: 0.sqsh',
      '      metadata:',
      '        name: hello',
      '        version: 1.1.0',
      '        author: Sidero Labs (demo)',
      '        description: |',
      '            [demo] Plain extension that drops a marker file into /usr/local/etc/fixture-ext.',
      '        compatibility:',
      '            talos:',
      "                version: '>= v1.7.0'",
      '',
    ].join('\n');
    const appended = await compressInitramfs(
      createCpio([
        { type: 'file', path: '0.sqsh', data: sqshData },
        { type: 'file', path: 'extensions.yaml', data: extensionsYaml },
      ], { keepOrder: true }),
      v,
    );
    const initrd = path.join(work, 'initrd.img');
    fs.writeFileSync(initrd, Buffer.concat([base, appended]));

    const res = await bootQemu({ kernel, initrd, append: 'console=ttyS0 panic=-1 talos.platform=metal', timeoutMs: 180000 });
    const r = res.report;
    if (!r.done) process.stderr.write(res.serial.slice(-4000));
    expect(r.done).toBe(true);
    expect(r.talosVersion).toBe(v);
    expect(r.kernel).toBe(releases.kernel.amd64!.version);
    expect(r.cmdline).toBe('console=ttyS0 panic=-1 talos.platform=metal');
    expect(r.firmwareMode).toBe('bios');
    expect(r.kmods).toMatchObject({ loop: 'loaded', squashfs: 'loaded', overlay: 'loaded' });
    expect(r.extensionsYaml).toBe(extensionsYaml);
    expect(r.layers).toHaveLength(1);
    expect(r.layers[0]).toMatchObject({ index: 0, image: '0.sqsh', sha256: sha256hex(sqshData), name: 'hello', version: '1.1.0', mounted: true });
    expect(r.extensions).toEqual([{ name: 'hello', version: '1.1.0' }]);
    expect(r.markers).toEqual({ hello: 'hello 1.1.0' });
    expect(r.rootfs).toBe('ok');
    expect(r.overlay).toBe('ok');
    process.stderr.write(`[demo-releases test] boot to "FIXTURE done": ${(res.ms / 1000).toFixed(1)} s\n`);
  });
});
