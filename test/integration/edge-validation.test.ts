/**
 * Every permanent 4xx of anchor-api §1.3 (and §4 PXE, §5.3 installers) is answered at the edge, from the request and
 * the schematic, before anything is queued for a build: these run with the build-worker stopped, so an answer that
 * needed a build slot would never come (the gateway would wait for the build until its deadline).
 */
import { S3Factory, startFactoryOnS3, RunningFactory } from '../support/factory';

jest.setTimeout(120_000);

let env: S3Factory;
let factory: RunningFactory;
const ids: Record<string, string> = {};

async function create(body: object): Promise<string> {
  const res = await fetch(`${factory.url}/schematics`, { method: 'POST', body: JSON.stringify(body) });
  return ((await res.json()) as { id: string }).id;
}

beforeAll(async () => {
  env = await startFactoryOnS3({ tmpPrefix: 'edge-validation-' });
  factory = env.factory;
  ids.plain = await create({ customization: { extraKernelArgs: ['vga=791'] } });
  ids.unknownExtension = await create({ customization: { systemExtensions: { officialExtensions: ['siderolabs/hello', 'siderolabs/nope'] } } });
  ids.extensions = await create({ customization: { systemExtensions: { officialExtensions: ['siderolabs/hello'] } } });
  ids.embedded = await create({ customization: { embeddedMachineConfiguration: 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: w\n' } });
  ids.overlay = await create({ overlay: { image: 'siderolabs/sbc-raspberrypi', name: 'rpi_generic' } });
  ids.unknownOverlay = await create({ overlay: { image: 'siderolabs/sbc-raspberrypi', name: 'no-such-board' } });
  ids.sector = await create({ customization: { diskImage: { sectorSize: 1024 } } });
  const worker = factory.procs.get('build-worker')!;
  await new Promise<void>((resolve) => {
    worker.once('exit', () => resolve());
    worker.kill('SIGTERM');
  });
}, 120_000);

afterAll(() => env?.stop());

const timings: string[] = [];
afterAll(() => process.stdout.write(`[edge] answers with no build-worker running:\n${timings.join('\n')}\n`));

async function answer(path: string, init?: RequestInit): Promise<[number, string]> {
  const started = Date.now();
  // Far below the gateway's build wait: a request that reached the build queue would be cut off here and fail.
  const res = await fetch(`${factory.url}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
  const body = await res.text();
  timings.push(`  ${res.status} ${Date.now() - started} ms ${init?.method ?? 'GET'} ${path.replace(/[0-9a-f]{64}/, (m) => m.slice(0, 8))}`);
  return [res.status, body];
}

test('the factory is not ready without a build-worker, and says why', async () => {
  // Readiness is cached for 2 s: ask until the answer reflects the stopped worker.
  let last: [number, string] = [0, ''];
  for (let i = 0; i < 20 && last[0] !== 503; i++) {
    const res = await fetch(`${factory.url}/readyz`);
    last = [res.status, await res.text()];
    if (last[0] !== 503) await new Promise((r) => setTimeout(r, 500));
  }
  expect(last[0]).toBe(503);
  expect(last[1]).toContain('no worker is serving the build queue');
});

test('/image: schematic, version, path, then enhancement — each in the anchor text', async () => {
  const v = 'v1.11.3';
  expect(await answer(`/image/${'0'.repeat(64)}/${v}/kernel-amd64`)).toEqual([404, `schematic ID "${'0'.repeat(64)}" not found\n`]);
  expect((await answer(`/image/${ids.plain}/abc/kernel-amd64`))[0]).toBe(400);
  expect(await answer(`/image/${ids.plain}/${v}/metal-amd64.ssd`)).toEqual([400, 'error parsing profile from path: invalid profile path: "metal-amd64.ssd"\n']);
  expect(await answer(`/image/${ids.plain}/${v}/kernel-foo`)).toEqual([400, 'error parsing profile from path: invalid architecture: "foo"\n']);
  expect(await answer(`/image/${ids.plain}/${v}/metal.iso`)).toEqual([400, 'error parsing profile from path: invalid platform-arch: "metal"\n']);
  expect(await answer(`/image/${ids.plain}/${v}/metal-amd64-secureboot.iso`)).toEqual([400, 'error enhancing profile from schematic: secure boot is disabled\n']);
  expect(await answer(`/image/${ids.plain}/${v}/metal-amd64-secureboot-uki.efi`, { method: 'HEAD' })).toEqual([400, '']);
  expect(await answer(`/image/${ids.overlay}/v1.6.7/metal-arm64.raw.xz`)).toEqual([400, 'error enhancing profile from schematic: overlay is not supported for Talos version v1.6.7\n']);
  expect(await answer(`/image/${ids.embedded}/${v}/metal-amd64.iso`)).toEqual([400, `error enhancing profile from schematic: embedding configuration is not supported for Talos version ${v}\n`]);
  expect(await answer(`/image/${ids.unknownExtension}/${v}/initramfs-amd64.xz`)).toEqual([400, `error enhancing profile from schematic: official extension "siderolabs/nope" is not available for Talos version ${v}\n`]);
  expect(await answer(`/image/${ids.unknownOverlay}/${v}/metal-arm64.raw.xz`)).toEqual([400, `error enhancing profile from schematic: overlay "no-such-board" is not available for Talos version ${v}\n`]);
  expect(await answer(`/image/${ids.sector}/${v}/metal-amd64.raw.xz`)).toEqual([400, 'error enhancing profile from schematic: unsupported disk sector size 1024: use 512 or 4096\n']);
  expect(await answer(`/image/${ids.extensions}/v1.4.0/initramfs-amd64.xz`)).toEqual([404, 'error enhancing profile from schematic: error getting official extensions: version 1.4.0 is not available\n']);
  expect(await answer(`/image/${ids.plain}/v1.4.0/installer-amd64.tar`)).toEqual([404, 'error enhancing profile from schematic: failed to get base installer: version 1.4.0 is not available\n']);
  expect(await answer(`/image/${ids.plain}/1.4.0/kernel-amd64`)).toEqual([404, 'failed to get kernel: version 1.4.0 is not available\n']);
  expect(await answer(`/image/${ids.plain}/v1.4.0/metal-amd64.iso.sha256`)).toEqual([404, 'failed to get kernel: version 1.4.0 is not available\n']);
});

test('/pxe: the same checks on the cmdline profile', async () => {
  expect(await answer(`/pxe/${'0'.repeat(64)}/v1.11.3/metal-amd64`)).toEqual([404, `schematic ID "${'0'.repeat(64)}" not found\n`]);
  expect(await answer(`/pxe/${ids.plain}/v1.11.3/metal`)).toEqual([400, 'error parsing profile from path: invalid platform-arch: "metal"\n']);
  expect(await answer(`/pxe/${ids.plain}/v1.11.3/metal-amd64-secureboot`)).toEqual([400, 'error enhancing profile from schematic: secure boot is disabled\n']);
  expect(await answer(`/pxe/${ids.plain}/v1.4.0/metal-amd64`)).toEqual([404, 'failed to get kernel: version 1.4.0 is not available\n']);
});

test('/v2 installers: the installer profile is checked before the installer job is queued', async () => {
  expect(await answer(`/v2/installer-secureboot/${ids.plain}/manifests/v1.11.3`)).toEqual([400, 'error enhancing profile from schematic: secure boot is disabled\n']);
  expect(await answer(`/v2/installer/${ids.unknownExtension}/manifests/v1.11.3`)).toEqual([400, 'error enhancing profile from schematic: official extension "siderolabs/nope" is not available for Talos version v1.11.3\n']);
  expect(await answer(`/v2/installer/${ids.embedded}/manifests/v1.11.3`)).toEqual([400, 'error enhancing profile from schematic: embedding configuration is not supported for Talos version v1.11.3\n']);
  expect((await answer(`/v2/installer/${ids.plain}/manifests/v1.4.0`))[0]).toBe(404);
});
