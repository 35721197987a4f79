/**
 * Issue 3 proofs: boot assets built by build-workers from BullMQ jobs, stored in a real S3 protocol server
 * (s3rver), served by 302 to presigned URLs (and streamed on the PXE host), and booted under QEMU: kernel +
 * initramfs + cmdline directly, ISO under SeaBIOS and OVMF (systemd-boot's default entry boots the UKI's main
 * profile, its "Reset system disk" entry the reset profile), UKI under OVMF, and an iPXE chain through /pxe.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { readCpio, S_IFMT, S_IFREG } from '@factory/archive';
import { validatorOf } from '@factory/asset';
import { createS3Store } from '@factory/storage';
import { freePort } from '../support/procs';
import { RunningFactory, S3Factory, startFactoryOnS3 } from '../support/factory';
import { bootAndReport, expectMainProfileBooted, ovmfArgs, sdBootEntry, WIPE_ARG } from '../support/boot';
import { readReleases } from '../../tools/demo-releases/src';

jest.setTimeout(600_000);

let env: S3Factory;
let s3: S3Factory['s3'];
let factory: RunningFactory;
let workerMetrics: number;
let tmp: string;

const EXTENSIONS = ['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module'];
const META_VALUE = 'fixture-meta';
let id: string; // schematic with extensions, META and extra args
let plainId: string; // schematic with only console args
let kernelRelease: string; // the demo kernel's release (the modules.dep layer's version), e.g. 6.1.0-57-amd64

beforeAll(async () => {
  workerMetrics = await freePort();
  env = await startFactoryOnS3({
    tmpPrefix: 'boot-assets-',
    env: (port) => ({
      // QEMU's user network reaches the host as 10.0.2.2: PXE scripts point there, and that host is never redirected.
      FACTORY_EXTERNAL_PXE_URL: `http://10.0.2.2:${port}/`,
      // The determinism test deletes a published object; no in-memory redirect may outlive it.
      FACTORY_REDIRECT_CACHE_TTL: '0',
    }),
    perService: { 'build-worker': { METRICS_PORT: String(workerMetrics) } },
  });
  ({ factory, s3, tmp } = env);
  kernelRelease = readReleases(env.demoDir)!.kernel.amd64!.version;
  const create = async (body: object) => ((await (await fetch(`${factory.url}/schematics`, { method: 'POST', body: JSON.stringify(body) })).json()) as { id: string }).id;
  id = await create({
    customization: {
      extraKernelArgs: ['console=ttyS0', 'panic=-1', 'fixture.extra=yes'],
      meta: [{ key: 10, value: META_VALUE }],
      systemExtensions: { officialExtensions: EXTENSIONS },
    },
  });
  plainId = await create({ customization: { extraKernelArgs: ['console=ttyS0', 'panic=-1'] } });
}, 300_000);

afterAll(() => env?.stop());

const image = (schematic: string, version: string, p: string, init?: RequestInit) => fetch(`${factory.url}/image/${schematic}/${version}/${p}`, init);

/** Downloads an asset (following the redirect to S3) into a file and returns its path. */
async function download(schematic: string, version: string, p: string): Promise<string> {
  const res = await image(schematic, version, p);
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}\n${factory.logs.get('build-worker')?.slice(-3000)}`);
  const file = path.join(tmp, `${schematic.slice(0, 8)}-${version}-${p}`);
  writeFileSync(file, Buffer.from(await res.arrayBuffer()));
  return file;
}

async function text(res: Response): Promise<[number, string]> {
  return [res.status, await res.text()];
}

describe('errors in the anchor order and texts', () => {
  test('schematic, version, path, extension, availability, secure boot', async () => {
    expect(await text(await image('0'.repeat(64), 'v1.11.3', 'kernel-amd64'))).toEqual([404, `schematic ID "${'0'.repeat(64)}" not found\n`]);
    expect((await image(plainId, 'abc', 'kernel-amd64')).status).toBe(400);
    expect(await text(await image(plainId, 'v1.11.3', 'metal-amd64.ssd'))).toEqual([400, 'error parsing profile from path: invalid profile path: "metal-amd64.ssd"\n']);
    expect(await text(await image(plainId, 'v1.11.3', 'kernel-foo'))).toEqual([400, 'error parsing profile from path: invalid architecture: "foo"\n']);
    expect(await text(await image(plainId, '1.4.0', 'kernel-amd64'))).toEqual([404, 'failed to get kernel: version 1.4.0 is not available\n']);
    expect(await text(await image(id, 'v1.4.0', 'initramfs-amd64.xz'))).toEqual([404, 'error enhancing profile from schematic: error getting official extensions: version 1.4.0 is not available\n']);
    expect(await text(await image(plainId, 'v1.11.3', 'metal-amd64-secureboot.iso'))).toEqual([400, 'error enhancing profile from schematic: secure boot is disabled\n']);
    expect(await text(await image(plainId, 'v1.11.3', 'metal-amd64.iso.sigstore.json'))).toEqual([402, 'enterprise signing is not enabled: signature endpoint is not available\n']);
    const gasket = ((await (await fetch(`${factory.url}/schematics`, { method: 'POST', body: '{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/gasket"]}}}' })).json()) as { id: string }).id;
    expect(await text(await image(gasket, 'v1.11.3', 'initramfs-amd64.xz'))).toEqual([400, 'error enhancing profile from schematic: official extension "siderolabs/gasket" is not available for Talos version v1.11.3\n']);
  });

  test('embedded machine configuration: 400 before Talos 1.12, an embedded-config extension from 1.12', async () => {
    const config = 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: worker-33\n';
    const embedded = ((await (await fetch(`${factory.url}/schematics`, { method: 'POST', body: JSON.stringify({ customization: { embeddedMachineConfiguration: config } }) })).json()) as { id: string }).id;
    expect(await text(await image(embedded, 'v1.11.3', 'metal-amd64.iso'))).toEqual([400, 'error enhancing profile from schematic: embedding configuration is not supported for Talos version v1.11.3\n']);
    // kernel and cmdline do not carry extensions, so they are not gated
    expect((await image(embedded, 'v1.11.3', 'cmdline-metal-amd64', { method: 'HEAD' })).status).toBe(200);
    const initramfs = await download(embedded, 'v1.12.2', 'initramfs-amd64.xz');
    const files = await cpioFiles(require('node:child_process').execFileSync('zstd', ['-dc', initramfs], { maxBuffer: 256 * 1024 * 1024 }));
    const yaml = files.get('extensions.yaml')!.toString('utf8');
    expect(yaml).toContain('name: schematic');
    expect(yaml).toContain('name: embedded-config');
    expect(yaml.indexOf('name: schematic')).toBeLessThan(yaml.indexOf('name: embedded-config'));
  });
});

describe('cmdline and PXE texts', () => {
  const metaB64 = Buffer.from(`0xa=${META_VALUE}`).toString('base64');
  const expected = `talos.platform=metal console=ttyS0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 talos.environment=INSTALLER_META_BASE64=${metaB64} panic=-1 fixture.extra=yes`;

  test('cmdline asset: exact string, no trailing newline, octet-stream', async () => {
    const res = await image(id, 'v1.11.3', 'cmdline-metal-amd64', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="cmdline-metal-amd64"');
    const got = await fetch(res.url.replace(/^http:\/\/127/, 'http://127'), { redirect: 'follow' });
    expect(await got.text()).toBe(expected);
  });

  test('PXE script: exact bytes, arch alias, base URL', async () => {
    const base = factory.env.FACTORY_EXTERNAL_PXE_URL!.replace(/\/$/, '');
    const [status, body] = await text(await fetch(`${factory.url}/pxe/${id}/1.11.3/metal-x86_64`));
    expect(status).toBe(200);
    expect(body).toBe(
      `#!ipxe\n\nimgfree\nkernel ${base}/image/${id}/v1.11.3/kernel-amd64 ${expected}\ninitrd ${base}/image/${id}/v1.11.3/initramfs-amd64.xz\nboot\n`,
    );
    expect(await text(await fetch(`${factory.url}/pxe/${id}/v1.11.3/metal`))).toEqual([400, 'error parsing profile from path: invalid platform-arch: "metal"\n']);
  });
});

describe('serving: redirect to S3, checksums, de-duplication, determinism', () => {
  test('GET redirects to a presigned S3 URL; HEAD answers directly', async () => {
    const res = await image(plainId, 'v1.11.3', 'kernel-amd64?filename=my-kernel', { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = res.headers.get('location')!;
    expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/assets/`)).toBe(true);
    expect(decodeURIComponent(location)).toContain('attachment; filename="my-kernel"');
    const body = Buffer.from(await (await fetch(location)).arrayBuffer());
    const head = await image(plainId, 'v1.11.3', 'kernel-amd64', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(body.length);
    const sum = await (await image(plainId, 'v1.11.3', 'kernel-amd64.sha256')).text();
    expect(sum).toBe(`${createHash('sha256').update(body).digest('hex')}  kernel-amd64\n`);
    const sum512 = await (await image(plainId, 'v1.11.3', 'kernel-amd64.sha512?filename=k')).text();
    expect(sum512).toBe(`${createHash('sha512').update(body).digest('hex')}  k\n`);
  });

  test('each signature names the stored S3 version the signing service checked (so the gateway need not re-read it)', async () => {
    const store = createS3Store({ endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    let checked = 0;
    for await (const o of store.list('assets/')) {
      if (!o.key.endsWith('.sig')) continue;
      const file = JSON.parse((await store.getBuffer(o.key, 16384))!.toString()) as { statement: { type: string; stored?: string } };
      const object = await store.head(o.key.slice(0, -'.sig'.length));
      expect(file.statement.type).toBe('talos-image-factory/asset-digest/v3');
      expect(file.statement.stored).toBe(validatorOf(object!));
      // the ETag is the S3 server's MD5 of the stored bytes (a single-part upload): what let signing skip the download
      expect(object!.serverDigests?.md5).toBe(object!.etag);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  test('an ISO is uploaded while xorriso writes it: the stored object is the finished image, its digests the signed ones', async () => {
    const store = createS3Store({ endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    const fresh = ((await (await fetch(`${factory.url}/schematics`, { method: 'POST', body: '{"customization":{"extraKernelArgs":["streamed-iso"]}}' })).json()) as { id: string }).id;
    const iso = require('node:fs').readFileSync(await download(fresh, 'v1.11.3', 'metal-amd64.iso')) as Buffer;
    const digest = (algo: string) => createHash(algo).update(iso).digest('hex');
    const location = (await image(fresh, 'v1.11.3', 'metal-amd64.iso', { redirect: 'manual' })).headers.get('location')!;
    const key = decodeURIComponent(new URL(location).pathname).slice(`/${s3.bucket}/`.length);
    const object = (await store.head(key))!;
    // streamed: no digest was known when the upload started (none in the metadata, no checksum); the server's ETag
    // is its MD5 of what it stored, equal to that of the finished image
    expect(object.sha256).toBeUndefined();
    expect(object.metadata).toEqual({});
    expect(object.serverDigests).toEqual({ md5: digest('md5') });
    const file = JSON.parse((await store.getBuffer(`${key}.sig`, 16384))!.toString()) as { statement: Record<string, unknown> };
    // signed: key, size, SHA-256 and the version checked (v3: no SHA-512 at build time) ...
    expect(file.statement).toEqual({ type: 'talos-image-factory/asset-digest/v3', key, size: iso.length, sha256: digest('sha256'), stored: validatorOf(object) });
    // ... which the gateway derives from stored bytes that hash to the signed SHA-256
    expect(await (await image(fresh, 'v1.11.3', 'metal-amd64.iso.sha512')).text()).toBe(`${digest('sha512')}  metal-amd64.iso\n`);
    // the bytes are a whole ISO: its backup GPT header sits in the last sector
    expect(iso.subarray(iso.length - 512, iso.length - 504).toString('latin1')).toBe('EFI PART');
  });

  test('50 concurrent cold requests make one build', async () => {
    const fresh = ((await (await fetch(`${factory.url}/schematics`, { method: 'POST', body: '{"customization":{"extraKernelArgs":["dedupe-test"],"systemExtensions":{"officialExtensions":["siderolabs/hello"]}}}' })).json()) as { id: string }).id;
    const before = await builtCount('initramfs');
    const sums = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const res = await image(fresh, 'v1.12.2', 'initramfs-amd64.xz');
        expect(res.status).toBe(200);
        return createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex');
      }),
    );
    expect(new Set(sums).size).toBe(1);
    expect((await builtCount('initramfs')) - before).toBe(1);
  });

  test('the same request built twice gives identical bytes', async () => {
    const first = await download(id, 'v1.11.3', 'metal-amd64-uki.efi');
    const a = createHash('sha256').update(require('node:fs').readFileSync(first)).digest('hex');
    // Remove the published object (s3rver does not check signatures) and build again.
    const location = (await image(id, 'v1.11.3', 'metal-amd64-uki.efi', { redirect: 'manual' })).headers.get('location')!;
    const objectUrl = location.split('?')[0];
    expect((await fetch(objectUrl, { method: 'DELETE' })).status).toBe(204);
    const second = await download(id, 'v1.11.3', 'metal-amd64-uki.efi');
    const b = createHash('sha256').update(require('node:fs').readFileSync(second)).digest('hex');
    expect(b).toBe(a);
  });
});

/** Regular files of concatenated newc cpio archives (the initramfs is several archives back to back). */
async function cpioFiles(buf: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const e of readCpio(Readable.from([buf]))) {
    if ((e.mode & S_IFMT) !== S_IFREG) continue;
    const chunks: Buffer[] = [];
    for await (const c of e.body()) chunks.push(c);
    out.set(e.path, Buffer.concat(chunks));
  }
  return out;
}

async function builtCount(kind: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${workerMetrics}/metrics`)).text();
  const m = new RegExp(`image_factory_assets_built_total\\{[^}]*kind="${kind}"[^}]*outcome="ok"[^}]*\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe('boots (QEMU, TCG, one at a time)', () => {
  function expectExtensions(report: Awaited<ReturnType<typeof bootAndReport>>['report'], versions: string[]) {
    expect(report.extensions.map((e) => e.name)).toEqual(['hello', 'intel-ucode', 'dummy-module', 'schematic', 'modules.dep'].slice(0, versions.length));
    expect(report.extensions.map((e) => e.version)).toEqual(versions);
    expect(report.schematics).toContain(id);
  }

  test('kernel + initramfs + cmdline, booted directly', async () => {
    const kernel = await download(id, 'v1.11.3', 'kernel-amd64');
    const initrd = await download(id, 'v1.11.3', 'initramfs-amd64.xz');
    const cmdline = await (await image(id, 'v1.11.3', 'cmdline-metal-amd64')).text();
    const { report } = await bootAndReport({ kernel, initrd, append: cmdline }, 'kernel+initramfs v1.11.3');
    expect(report.cmdline).toBe(cmdline);
    expectExtensions(report, ['1.1.0', '20250211', '1.0.0-v1.11.3', id, kernelRelease]);
    expect(report.firmware.some((f) => f.includes('fixture/fw.bin'))).toBe(true);
    expect(report.microcode['GenuineIntel.bin']).toBeGreaterThan(0);
    expect(report.metaEnv).toEqual([`INSTALLER_META_BASE64=${Buffer.from(`0xa=${META_VALUE}`).toString('base64')}`]);
    expect(report.cmdline).toContain('fixture.extra=yes');
  });

  test('GRUB ISO (v1.7.7) under SeaBIOS', async () => {
    const iso = await download(id, 'v1.7.7', 'metal-amd64.iso');
    const { report } = await bootAndReport({ args: ['-cdrom', iso, '-boot', 'd'] }, 'grub ISO v1.7.7 SeaBIOS');
    expect(report.firmwareMode).toBe('bios');
    expect(report.talosVersion).toBe('v1.7.7');
    expectExtensions(report, ['1.0.0', '20240312', '1.0.0-v1.7.7', id, kernelRelease]);
    // ISO-only halt argument exists from Talos 1.8; v1.7's metal console pair is replaced by the extra console arg.
    expect(report.cmdline).not.toContain('talos.halt_if_installed');
    expect(report.cmdline).toContain('talos.platform=metal console=ttyS0 init_on_alloc=1');
  });

  test('hybrid ISO (v1.11.3) under OVMF: sd-boot → UKI; the default entry boots the main profile, "Reset system disk" the reset one', async () => {
    const iso = await download(id, 'v1.11.3', 'metal-amd64.iso');
    // Enter on the highlighted (default) entry instead of waiting out loader.conf's `timeout 10`
    const main = await bootAndReport({ args: [...ovmfArgs(tmp), '-cdrom', iso], input: sdBootEntry(0) }, 'hybrid ISO v1.11.3 OVMF, default entry');
    expectMainProfileBooted(main.report);
    // systemd-boot (>= 257) lists each UKI profile: the main one (default) and the ISO's reset profile
    expect(main.serial).toContain('Talos (v1.11.3) (Reset system disk)');
    expectExtensions(main.report, ['1.1.0', '20250211', '1.0.0-v1.11.3', id, kernelRelease]);
    expect(main.report.metaEnv.length).toBe(1);
    expect(main.report.cmdline).toContain('talos.halt_if_installed=1');

    const reset = await bootAndReport({ args: [...ovmfArgs(tmp), '-cdrom', iso], input: sdBootEntry(1) }, 'hybrid ISO v1.11.3 OVMF, reset entry');
    expect(reset.report.firmwareMode).toBe('uefi');
    // the reset profile's own .cmdline: the main one plus the ISO wipe argument (talos-formats.md §6.2)
    expect(reset.report.cmdline).toBe(`${main.report.cmdline} ${WIPE_ARG}system`);
  });

  test('UKI (v1.12.2) under OVMF', async () => {
    const uki = await download(id, 'v1.12.2', 'metal-amd64-uki.efi');
    const esp = path.join(tmp, 'esp');
    mkdirSync(path.join(esp, 'EFI/BOOT'), { recursive: true });
    require('node:fs').copyFileSync(uki, path.join(esp, 'EFI/BOOT/BOOTX64.EFI'));
    const { report } = await bootAndReport({ args: [...ovmfArgs(tmp), '-drive', `file=fat:${esp},format=raw,if=virtio,readonly=on`] }, 'UKI v1.12.2 OVMF');
    expectMainProfileBooted(report); // the UKI output carries only the main profile
    expect(report.talosVersion).toBe('v1.12.2');
    expect(report.schematics).toContain(id);
    expect(report.cmdline).toContain('fixture.extra=yes');
    expect(report.cmdline).toContain('module.sig_enforce=1');
  });

  test('iPXE (QEMU ROM) follows /pxe and fetches kernel and initramfs from the gateway', async () => {
    const port = factory.port;
    const { report } = await bootAndReport(
      {
        args: ['-netdev', `user,id=n0,bootfile=http://10.0.2.2:${port}/pxe/${id}/v1.11.3/metal-amd64`, '-device', 'virtio-net-pci,netdev=n0', '-boot', 'n'],
      },
      'iPXE v1.11.3',
    );
    expect(report.schematics).toContain(id);
    expect(report.extensions.map((e) => e.name)).toEqual(['hello', 'intel-ucode', 'dummy-module', 'schematic', 'modules.dep']);
  });
});
