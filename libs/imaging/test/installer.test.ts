/**
 * Installer image assembly (libs/imaging/src/installer), talos-formats §1.4 / anchor-api §5.3, checked with real
 * tools: GNU tar/gzip read the layers, skopeo reads the docker-save tarball and the manifest + blobs (dir:
 * transport) and copies both to an OCI layout.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import zlib from 'node:zlib';
import type { SemVer } from '@factory/talos';
import {
  buildInstallerImage,
  DOCKER_CONFIG_MEDIA_TYPE,
  DOCKER_LAYER_GZIP_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  InstallerImage,
  InstallerImageError,
  InstallerImageInput,
  installerArtifactPaths,
  writeDockerArchive,
} from '../src/installer';

const SKOPEO = '/usr/bin/skopeo';
const CREATED = '2025-01-02T03:04:05Z';
const REPO_TAG = 'ghcr.io/siderolabs/installer-base:v1.11.0';
const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const sha256File = (f: string) => sha256(fs.readFileSync(f));

let tmp: string;

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function write(file: string, content: string | Buffer, mode = 0o644): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  fs.chmodSync(file, mode);
  return file;
}

/** A base layer made by GNU tar + gzip -n from the given files. */
function baseLayer(name: string, files: Record<string, { content: string; mode: number }>): { digest: string; size: number; file: string; diffId: string } {
  const root = path.join(tmp, `${name}-root`);
  for (const [p, f] of Object.entries(files)) write(path.join(root, p), f.content, f.mode);
  const tarFile = path.join(tmp, `${name}.tar`);
  run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', tarFile, '-C', root, '.']);
  const gz = path.join(tmp, `${name}.tar.gz`);
  fs.writeFileSync(gz, execFileSync('gzip', ['-n', '-c', tarFile]));
  return { digest: sha256File(gz), size: fs.statSync(gz).size, file: gz, diffId: sha256File(tarFile) };
}

function baseConfig(arch: string, diffIds: string[], history: unknown[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: 'linux',
      created: '2024-06-01T00:00:00Z',
      config: {
        Entrypoint: ['/bin/installer'],
        Env: ['PATH=/usr/bin', 'VERSION=v1.11.0', `TARGETARCH=${arch}`],
        Labels: { 'org.opencontainers.image.source': 'https://github.com/siderolabs/talos', 'a&b': '<x>' },
      },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history,
      container_config: { Cmd: ['dropped'] },
    }),
  );
}

/** Tar listing as `mode owner size date time name` lines. */
function listing(file: string, z = true): string[] {
  return run('tar', [z ? '-tvzf' : '-tvf', file, '--numeric-owner'])
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).join(' '));
}

function gunzip(file: string): Buffer {
  return zlib.gunzipSync(fs.readFileSync(file));
}

let base1: ReturnType<typeof baseLayer>;
let legacy1: ReturnType<typeof baseLayer>;
let legacy2: ReturnType<typeof baseLayer>;
let overlayRoot: string;
let uki: string;
let sdboot: string;
const LONG = `${'very-long-directory-name-'.repeat(5)}/${'x'.repeat(90)}/${'deeper-'.repeat(12)}/blob.dtb`;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'installer-test-'));
  base1 = baseLayer('base', {
    'usr/bin/installer': { content: '#!/bin/sh\necho installer\n', mode: 0o755 },
    'etc/os-release': { content: 'NAME=Talos\n', mode: 0o644 },
  });
  legacy1 = baseLayer('legacy1', { 'bin/installer': { content: '#!/bin/sh\necho legacy\n', mode: 0o755 } });
  legacy2 = baseLayer('legacy2', {
    'usr/install/amd64/vmlinuz': { content: 'old kernel', mode: 0o644 },
    'usr/install/amd64/initramfs.xz': { content: 'old initramfs', mode: 0o644 },
  });
  // 3 MiB of pseudo-random bytes: several read chunks and deflate blocks
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  let x = 12345;
  for (let i = 0; i < big.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    big[i] = x >>> 24;
  }
  uki = write(path.join(tmp, 'assets/uki.efi'), big);
  sdboot = write(path.join(tmp, 'assets/sd-boot.efi'), 'systemd-boot', 0o600);

  overlayRoot = path.join(tmp, 'overlay');
  write(path.join(overlayRoot, 'artifacts/amd64/fixture/blob.bin'), 'blob\n', 0o644);
  write(path.join(overlayRoot, 'artifacts/amd64/fixture/secret.bin'), 'secret\n', 0o600);
  write(path.join(overlayRoot, 'artifacts/amd64', LONG), 'dtb\n', 0o644);
  write(path.join(overlayRoot, 'artifacts/README'), 'readme\n', 0o444);
  write(path.join(overlayRoot, 'artifacts/amd64/\u00fcber.bin'), 'utf8 name\n', 0o640); // non-ASCII: PAX path record
  fs.symlinkSync('amd64/fixture/blob.bin', path.join(overlayRoot, 'artifacts/blob-link.bin'));
  write(path.join(overlayRoot, 'installers/fixture_board'), '#!/bin/sh\necho overlay\n', 0o755);
  write(path.join(overlayRoot, 'installers/other_board'), '#!/bin/sh\n', 0o755);
  write(path.join(overlayRoot, 'profiles/fixture_board.yaml'), 'arch: amd64\n');
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function input(workDir: string, over: Partial<InstallerImageInput> = {}): InstallerImageInput {
  return {
    arch: 'amd64',
    base: {
      config: baseConfig('amd64', [base1.diffId], [{ created: '2024-06-01T00:00:00Z', created_by: 'installer-base' }]),
      layers: [{ digest: base1.digest, size: base1.size, file: base1.file }],
    },
    artifacts: [
      { path: 'usr/install/amd64/vmlinuz.efi', file: uki },
      { path: 'usr/install/amd64/systemd-boot.efi', file: sdboot },
    ],
    overlay: { root: overlayRoot, installerName: 'fixture_board', options: { configTxtAppend: 'dtoverlay=x', board: 'rev2', nested: { b: 1, a: [true, 'y'] } } },
    created: CREATED,
    workDir: path.join(tmp, workDir),
    ...over,
  };
}

describe('installerArtifactPaths', () => {
  it('follows the version / secureboot rules', () => {
    const paths = (maj: number, min: number, arch: 'amd64' | 'arm64', sb: boolean) => installerArtifactPaths({ major: maj, minor: min, patch: 0, prerelease: [], build: [] } as SemVer, arch, sb).map((p) => `${p.role}:${p.path}`);
    expect(paths(1, 10, 'amd64', false)).toEqual(['systemd-boot:usr/install/amd64/systemd-boot.efi', 'uki:usr/install/amd64/vmlinuz.efi']);
    expect(paths(1, 11, 'arm64', true)).toEqual(['systemd-boot:usr/install/arm64/systemd-boot.efi', 'uki:usr/install/arm64/vmlinuz.efi']);
    expect(paths(2, 0, 'amd64', false)).toEqual(['systemd-boot:usr/install/amd64/systemd-boot.efi', 'uki:usr/install/amd64/vmlinuz.efi']);
    expect(paths(1, 9, 'amd64', true)).toEqual(['systemd-boot:usr/install/amd64/systemd-boot.efi', 'uki:usr/install/amd64/vmlinuz.efi.signed']);
    expect(paths(1, 9, 'arm64', false)).toEqual(['initramfs:usr/install/arm64/initramfs.xz', 'kernel:usr/install/arm64/vmlinuz']);
  });
});

describe('buildInstallerImage + writeDockerArchive', () => {
  let a: InstallerImage;
  let b: InstallerImage;
  let tarA: string;
  let tarB: string;
  let sumA: { sha256: string; size: number };

  beforeAll(async () => {
    a = await buildInstallerImage(input('work-a'));
    b = await buildInstallerImage(input('work-b'));
    tarA = path.join(tmp, 'installer-amd64-a.tar');
    tarB = path.join(tmp, 'installer-amd64-b.tar');
    sumA = await writeDockerArchive(a, REPO_TAG, tarA);
    await writeDockerArchive(b, REPO_TAG, tarB);
  });

  it('is deterministic', () => {
    expect(b.manifest.digest).toBe(a.manifest.digest);
    expect(b.config.bytes.equals(a.config.bytes)).toBe(true);
    expect(b.layers.map((l) => [l.digest, l.size, l.diffId])).toEqual(a.layers.map((l) => [l.digest, l.size, l.diffId]));
    expect(fs.readFileSync(tarB).equals(fs.readFileSync(tarA))).toBe(true);
    expect(sumA).toEqual({ sha256: sha256File(tarA).slice(7), size: fs.statSync(tarA).size });
  });

  it('writes a Docker schema2 manifest and a Docker config derived from the base', () => {
    expect(a.layers).toHaveLength(3);
    expect(a.layers[0]).toEqual({ digest: base1.digest, size: base1.size, diffId: base1.diffId, file: base1.file });
    const manifest = JSON.parse(a.manifest.bytes.toString());
    expect(a.manifest.mediaType).toBe(DOCKER_MANIFEST_MEDIA_TYPE);
    expect(a.manifest.digest).toBe(sha256(a.manifest.bytes));
    expect(a.manifest.size).toBe(a.manifest.bytes.length);
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_MEDIA_TYPE,
      config: { mediaType: DOCKER_CONFIG_MEDIA_TYPE, size: a.config.size, digest: a.config.digest },
      layers: a.layers.map((l) => ({ mediaType: DOCKER_LAYER_GZIP_MEDIA_TYPE, size: l.size, digest: l.digest })),
    });
    expect(a.config.digest).toBe(sha256(a.config.bytes));
    const text = a.config.bytes.toString();
    expect(Object.keys(JSON.parse(text))).toEqual(['architecture', 'created', 'history', 'os', 'rootfs', 'config']);
    expect(text).toContain('"a\\u0026b":"\\u003cx\\u003e"'); // Go json escaping
    const cfg = JSON.parse(text);
    expect(cfg.architecture).toBe('amd64');
    expect(cfg.os).toBe('linux');
    expect(cfg.created).toBe(CREATED);
    expect(cfg.config.Entrypoint).toEqual(['/bin/installer']);
    expect(cfg.config.Env).toContain('VERSION=v1.11.0');
    expect(cfg.container_config).toBeUndefined();
    expect(cfg.rootfs).toEqual({ type: 'layers', diff_ids: a.layers.map((l) => l.diffId) });
    expect(cfg.history.map((h: { created_by: string }) => h.created_by)).toEqual(['installer-base', 'image-factory: installer artifacts', 'image-factory: overlay']);
  });

  it('layers: digests, sizes and diff_ids match the blobs; gzip header is fixed', () => {
    for (const l of a.layers) {
      expect(sha256File(l.file)).toBe(l.digest);
      expect(fs.statSync(l.file).size).toBe(l.size);
      expect(sha256(gunzip(l.file))).toBe(l.diffId);
      run('gzip', ['-t', l.file]);
    }
    for (const l of a.layers.slice(1)) {
      expect(path.basename(l.file)).toBe(`${l.digest.slice(7)}.tar.gz`);
      // magic, deflate, no flags, mtime 0, XFL 4 (level 1), OS 255
      expect([...fs.readFileSync(l.file).subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255]);
    }
    expect(fs.readdirSync(path.join(tmp, 'work-a')).sort()).toEqual(a.layers.slice(1).map((l) => path.basename(l.file)).sort());
  });

  it('artifacts layer: sorted, no directories, mode 0, owner 0/0, mtime 0', () => {
    expect(listing(a.layers[1].file)).toEqual([
      `---------- 0/0 12 1970-01-01 00:00 usr/install/amd64/systemd-boot.efi`,
      `---------- 0/0 ${fs.statSync(uki).size} 1970-01-01 00:00 usr/install/amd64/vmlinuz.efi`,
    ]);
    const out = path.join(tmp, 'extract-artifacts');
    fs.mkdirSync(out);
    run('tar', ['-xzf', a.layers[1].file, '-C', out]);
    expect(fs.readFileSync(path.join(out, 'usr/install/amd64/vmlinuz.efi')).equals(fs.readFileSync(uki))).toBe(true);
  });

  it('overlay layer: artifacts (modes kept, long names, symlink stored as file), default installer, extra-options', () => {
    // go-yaml Marshal of the options map: keys sorted, 4-space indent
    const extra = "board: rev2\nconfigTxtAppend: dtoverlay=x\nnested:\n    a:\n        - true\n        - 'y'\n    b: 1\n";
    const longName = `overlay/artifacts/amd64/${LONG}`;
    expect(Buffer.byteLength(longName)).toBeGreaterThan(255); // needs a PAX path record
    expect(listing(a.layers[2].file)).toEqual([
      '-r--r--r-- 0/0 7 1970-01-01 00:00 overlay/artifacts/README',
      '-rw-r--r-- 0/0 5 1970-01-01 00:00 overlay/artifacts/amd64/fixture/blob.bin',
      '-rw------- 0/0 7 1970-01-01 00:00 overlay/artifacts/amd64/fixture/secret.bin',
      `-rw-r--r-- 0/0 4 1970-01-01 00:00 ${longName}`,
      '-rw-r----- 0/0 10 1970-01-01 00:00 overlay/artifacts/amd64/\\303\\274ber.bin', // GNU tar escapes non-ASCII in the C locale
      '-rw-r--r-- 0/0 5 1970-01-01 00:00 overlay/artifacts/blob-link.bin',
      `-rw-r--r-- 0/0 ${extra.length} 1970-01-01 00:00 overlay/extra-options`,
      '-rwxr-xr-x 0/0 23 1970-01-01 00:00 overlay/installers/default',
    ]);
    const out = path.join(tmp, 'extract-overlay');
    fs.mkdirSync(out);
    run('tar', ['-xzf', a.layers[2].file, '-C', out]);
    expect(fs.readFileSync(path.join(out, 'overlay/installers/default'), 'utf8')).toBe('#!/bin/sh\necho overlay\n');
    expect(fs.readFileSync(path.join(out, longName), 'utf8')).toBe('dtb\n');
    expect(fs.readFileSync(path.join(out, 'overlay/artifacts/amd64/\u00fcber.bin'), 'utf8')).toBe('utf8 name\n');
    expect(fs.readFileSync(path.join(out, 'overlay/extra-options'), 'utf8')).toBe(extra);
  });

  it('docker archive: go-containerregistry tarball layout, fixed metadata', () => {
    const hex = (d: string) => d.slice(7);
    expect(listing(tarA, false)).toEqual([
      `-rw-r--r-- 0/0 ${a.config.size} 1970-01-01 00:00 sha256:${hex(a.config.digest)}`,
      ...a.layers.map((l) => `-rw-r--r-- 0/0 ${l.size} 1970-01-01 00:00 ${hex(l.digest)}.tar.gz`),
      expect.stringMatching(/^-rw-r--r-- 0\/0 \d+ 1970-01-01 00:00 manifest\.json$/),
    ]);
    const manifestJson = JSON.parse(run('tar', ['-xOf', tarA, 'manifest.json']));
    expect(manifestJson).toEqual([{ Config: a.config.digest, RepoTags: [REPO_TAG], Layers: a.layers.map((l) => `${hex(l.digest)}.tar.gz`) }]);
  });

  it('docker archive to a stream equals the file', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const r = await writeDockerArchive(a, REPO_TAG, sink);
    expect(Buffer.concat(chunks).equals(fs.readFileSync(tarA))).toBe(true);
    expect(r).toEqual(sumA);
  });

  it('skopeo reads the docker archive and copies it to an OCI layout', () => {
    const raw = JSON.parse(run(SKOPEO, ['inspect', '--raw', `docker-archive:${tarA}`]));
    // containers/image presents docker-archive layers uncompressed, by diff_id
    expect(raw.layers.map((l: { digest: string }) => l.digest)).toEqual(a.layers.map((l) => l.diffId));
    expect(raw.config.digest).toBe(a.config.digest);
    const cfg = JSON.parse(run(SKOPEO, ['inspect', '--config', `docker-archive:${tarA}`]));
    expect(cfg.architecture).toBe('amd64');
    expect(cfg.os).toBe('linux');
    expect(cfg.rootfs.diff_ids).toEqual(a.layers.map((l) => l.diffId));
    expect(cfg.config.Entrypoint).toEqual(['/bin/installer']);

    const oci = path.join(tmp, 'oci-from-archive');
    run(SKOPEO, ['copy', '-q', `docker-archive:${tarA}`, `oci:${oci}:x`]);
    const index = JSON.parse(fs.readFileSync(path.join(oci, 'index.json'), 'utf8'));
    const blob = (d: string) => path.join(oci, 'blobs/sha256', d.slice(7));
    const m = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8'));
    expect(m.layers).toHaveLength(3);
    // re-compressed by skopeo, so compare content: each layer decompresses to our diff_id
    expect(m.layers.map((l: { digest: string }) => sha256(gunzip(blob(l.digest))))).toEqual(a.layers.map((l) => l.diffId));
    expect(JSON.parse(fs.readFileSync(blob(m.config.digest), 'utf8')).rootfs.diff_ids).toEqual(a.layers.map((l) => l.diffId));
  });

  it('skopeo copies manifest + blobs (what gets pushed) to an OCI layout keeping the layer digests', () => {
    // containers/image "dir:" transport: manifest.json + blobs named by hex digest; skopeo verifies every digest
    const dir = path.join(tmp, 'dir-image');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'version'), 'Directory Transport Version: 1.1\n');
    fs.writeFileSync(path.join(dir, 'manifest.json'), a.manifest.bytes);
    fs.writeFileSync(path.join(dir, a.config.digest.slice(7)), a.config.bytes);
    for (const l of a.layers) fs.copyFileSync(l.file, path.join(dir, l.digest.slice(7)));
    const raw = JSON.parse(run(SKOPEO, ['inspect', '--raw', `dir:${dir}`]));
    expect(raw.layers.map((l: { digest: string }) => l.digest)).toEqual(a.layers.map((l) => l.digest));
    const oci = path.join(tmp, 'oci-from-dir');
    run(SKOPEO, ['copy', '-q', '--preserve-digests', `dir:${dir}`, `oci:${oci}:x`]);
    const index = JSON.parse(fs.readFileSync(path.join(oci, 'index.json'), 'utf8'));
    const blob = (d: string) => path.join(oci, 'blobs/sha256', d.slice(7));
    expect(index.manifests[0].digest).toBe(a.manifest.digest);
    const m = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8'));
    expect(m.layers.map((l: { digest: string }) => l.digest)).toEqual(a.layers.map((l) => l.digest));
    for (const l of a.layers) expect(sha256File(blob(l.digest))).toBe(l.digest);
  });
});

describe('legacy (2-layer) installer base', () => {
  it('drops the second base layer, its diff_id and its history entry', async () => {
    const history = [
      { created: '2024-01-01T00:00:00Z', created_by: 'COPY tools' },
      { created: '2024-01-01T00:00:00Z', created_by: 'ENV X=1', empty_layer: true },
      { created: '2024-01-01T00:00:00Z', created_by: 'COPY artifacts' },
    ];
    const img = await buildInstallerImage(
      input('work-legacy', {
        base: {
          config: baseConfig('amd64', [legacy1.diffId, legacy2.diffId], history),
          layers: [
            { digest: legacy1.digest, size: legacy1.size, file: legacy1.file },
            { digest: legacy2.digest, size: legacy2.size, file: legacy2.file },
          ],
        },
        artifacts: [
          { path: 'usr/install/amd64/vmlinuz', file: sdboot },
          { path: 'usr/install/amd64/initramfs.xz', file: uki },
        ],
        overlay: undefined,
      }),
    );
    expect(img.layers).toHaveLength(2);
    expect(img.layers[0].digest).toBe(legacy1.digest);
    expect(img.layers.map((l) => l.digest)).not.toContain(legacy2.digest);
    const cfg = JSON.parse(img.config.bytes.toString());
    expect(cfg.rootfs.diff_ids).toEqual([legacy1.diffId, img.layers[1].diffId]);
    expect(cfg.history.map((h: { created_by: string }) => h.created_by)).toEqual(['COPY tools', 'ENV X=1', 'image-factory: installer artifacts']);
    expect(listing(img.layers[1].file).map((l) => l.split(' ').pop())).toEqual(['usr/install/amd64/initramfs.xz', 'usr/install/amd64/vmlinuz']);

    const tar = path.join(tmp, 'legacy.tar');
    await writeDockerArchive(img, 'ghcr.io/siderolabs/installer:v1.9.5', tar);
    const raw = JSON.parse(run(SKOPEO, ['inspect', '--raw', `docker-archive:${tar}`]));
    expect(raw.layers).toHaveLength(2);
    expect(JSON.parse(run(SKOPEO, ['inspect', '--config', `docker-archive:${tar}`])).rootfs.diff_ids).toEqual([legacy1.diffId, img.layers[1].diffId]);
  });

  it('omits history when the base has none (3+ layers are all kept)', async () => {
    const cfg = JSON.parse(baseConfig('arm64', [legacy1.diffId, legacy2.diffId, base1.diffId], []).toString());
    delete cfg.history;
    const img = await buildInstallerImage(
      input('work-3', {
        arch: 'arm64',
        base: {
          config: Buffer.from(JSON.stringify(cfg)),
          layers: [legacy1, legacy2, base1].map((l) => ({ digest: l.digest, size: l.size, file: l.file })),
        },
        overlay: undefined,
      }),
    );
    expect(img.layers.map((l) => l.diffId).slice(0, 3)).toEqual([legacy1.diffId, legacy2.diffId, base1.diffId]);
    const out = JSON.parse(img.config.bytes.toString());
    expect(out.history).toBeUndefined();
    expect(out.architecture).toBe('arm64');
  });
});

describe('bad inputs', () => {
  const code = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      expect(err).toBeInstanceOf(InstallerImageError);
      return `${(err as InstallerImageError).code}: ${(err as Error).message}`;
    }
    throw new Error('expected a rejection');
  };

  it('rejects an overlay symlink escaping the overlay root', async () => {
    const root = path.join(tmp, 'evil-overlay');
    write(path.join(root, 'installers/board'), '#!/bin/sh\n', 0o755);
    write(path.join(root, 'artifacts/ok.bin'), 'ok');
    fs.symlinkSync('/etc/passwd', path.join(root, 'artifacts/passwd'));
    const msg = await code(buildInstallerImage(input('work-evil', { overlay: { root, installerName: 'board', options: {} } })));
    expect(msg).toMatch(/^UNSAFE_OVERLAY: overlay: artifacts\/passwd resolves outside the overlay root/);
    expect(fs.existsSync(path.join(tmp, 'work-evil'))).toBe(false); // validated before anything was written
  });

  it('rejects an installer symlink escaping the root, and a missing installer', async () => {
    const root = path.join(tmp, 'evil-overlay2');
    fs.mkdirSync(path.join(root, 'installers'), { recursive: true });
    fs.symlinkSync('../../assets/sd-boot.efi', path.join(root, 'installers/board'));
    expect(await code(buildInstallerImage(input('work-evil2', { overlay: { root, installerName: 'board', options: {} } })))).toMatch(
      /^UNSAFE_OVERLAY: overlay: installers\/board resolves outside the overlay root/,
    );
    expect(await code(buildInstallerImage(input('work-evil2', { overlay: { root, installerName: 'nope', options: {} } })))).toMatch(
      /^MISSING_FILE: overlay installer installers\/nope not found/,
    );
    expect(await code(buildInstallerImage(input('work-evil2', { overlay: { root, installerName: '../x', options: {} } })))).toMatch(/^INVALID_INPUT/);
  });

  it('rejects a missing artifact file and bad artifact paths', async () => {
    const missing = path.join(tmp, 'assets/nope.efi');
    expect(await code(buildInstallerImage(input('work-bad', { artifacts: [{ path: 'usr/install/amd64/vmlinuz.efi', file: missing }] })))).toBe(
      `MISSING_FILE: installer artifact usr/install/amd64/vmlinuz.efi: cannot read ${missing}: no such file`,
    );
    expect(await code(buildInstallerImage(input('work-bad', { artifacts: [{ path: '../etc/x', file: uki }] })))).toMatch(/^INVALID_INPUT/);
    expect(await code(buildInstallerImage(input('work-bad', { artifacts: [{ path: 'usr/install/', file: uki }] })))).toMatch(/^INVALID_INPUT/);
  });

  it('rejects a base config that does not match the layers or the arch', async () => {
    expect(await code(buildInstallerImage(input('work-bad', { arch: 'arm64' })))).toMatch(/^INVALID_INPUT: base image config is for architecture "amd64", wanted arm64/);
    const two = baseConfig('amd64', [base1.diffId, base1.diffId], []);
    expect(await code(buildInstallerImage(input('work-bad', { base: { config: two, layers: [{ digest: base1.digest, size: base1.size, file: base1.file }] } })))).toMatch(
      /lists 2 diff_ids but 1 layers/,
    );
    const wrongSize = { digest: base1.digest, size: base1.size + 1, file: base1.file };
    expect(await code(buildInstallerImage(input('work-bad', { base: { config: baseConfig('amd64', [base1.diffId], []), layers: [wrongSize] } })))).toMatch(
      /descriptor says/,
    );
    expect(await code(buildInstallerImage(input('work-bad', { created: 'yesterday' })))).toMatch(/RFC 3339/);
  });
});
