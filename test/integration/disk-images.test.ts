/**
 * Issue 4 proofs through the factory: disk images built by build-workers (layouts read back with sgdisk, formats
 * with qemu-img and tar, META decoded from the booted disk) and booted under QEMU: dual-boot via SeaBIOS and OVMF,
 * GRUB (< 1.10) via SeaBIOS, sd-boot via OVMF, and the demo overlay board image.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import os from 'node:os';
import path from 'node:path';
import { decodeAdv } from '@factory/imaging';
import { freePort, startRedis, startRegistry, ProcHandle } from '../support/procs';
import { ensureDemoReleases, RunningFactory, startServices } from '../support/factory';
import { bootAndReport, expectMainProfileBooted, ovmfArgs, sdBootEntry } from '../support/boot';

jest.setTimeout(900_000);

let redis: ProcHandle & { url: string };
let registry: ProcHandle & { host: string };
let factory: RunningFactory;
let tmp: string;
const META = [{ key: 10, value: 'network: fixture' }, { key: 12, value: 'hello' }];

beforeAll(async () => {
  const demoDir = ensureDemoReleases();
  [redis, registry] = await Promise.all([startRedis(), startRegistry(path.join(demoDir, 'registry'))]);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'disk-images-'));
  const port = await freePort();
  factory = await startServices(
    {
      REDIS_URL: redis.url,
      FACTORY_DATA_DIR: path.join(tmp, 'data'),
      FACTORY_UPSTREAM_REGISTRY: registry.host,
      FACTORY_UPSTREAM_INSECURE: 'true',
      FACTORY_UPSTREAM_PUBLIC_KEY: path.join(demoDir, 'cosign.pub'),
      FACTORY_EXTERNAL_URL: `http://127.0.0.1:${port}/`,
    },
    { port },
  );
}, 300_000);

afterAll(async () => {
  await factory?.stop();
  await Promise.all([redis?.stop(), registry?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function schematic(body: object): Promise<string> {
  const res = await fetch(`${factory.url}/schematics`, { method: 'POST', body: JSON.stringify(body) });
  return ((await res.json()) as { id: string }).id;
}

async function download(id: string, version: string, p: string): Promise<string> {
  const res = await fetch(`${factory.url}/image/${id}/${version}/${p}`);
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}\n${factory.logs.get('build-worker')?.slice(-3000)}`);
  const file = path.join(tmp, `${id.slice(0, 8)}-${version}-${p}`);
  // Disk images are large: stream to the file.
  await pipeline(Readable.fromWeb(res.body as never), createWriteStream(file));
  return file;
}

/** Downloads a `.raw.zst` disk image and decompresses it (sparse) for reading and booting. */
async function rawDisk(id: string, version: string, p: string): Promise<string> {
  const zst = await download(id, version, p);
  const raw = zst.replace(/\.zst$/, '');
  execFileSync('zstd', ['-q', '-d', '-f', '--sparse', zst, '-o', raw]);
  rmSync(zst);
  return raw;
}

function partitions(raw: string): Array<{ num: number; name: string; sizeMiB: number }> {
  const out = execFileSync('sgdisk', ['-p', raw], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => /^\s+\d+\s+\d+\s+\d+/.test(l))
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { num: Number(f[0]), name: f[f.length - 1], sizeMiB: (Number(f[2]) - Number(f[1]) + 1) / 2048 };
    });
}

const metaOf = (bytes: Buffer | undefined) => Object.fromEntries([...decodeAdv(bytes!, { partial: true })].map(([k, v]) => [k, v]));

describe('layouts, sizes and formats', () => {
  let id: string;
  beforeAll(async () => {
    id = await schematic({ customization: { extraKernelArgs: ['console=ttyS0', 'panic=-1'], meta: META, systemExtensions: { officialExtensions: ['siderolabs/hello'] } } });
  });

  test('v1.11.3 metal amd64: dual-boot, 4247 MiB, META with the dual-boot key', async () => {
    const raw = await rawDisk(id, 'v1.11.3', 'metal-amd64.raw.zst');
    expect(statSync(raw).size).toBe(4453302272);
    expect(partitions(raw).map((p) => [p.name, p.sizeMiB])).toEqual([['EFI', 2101], ['BIOS', 1], ['BOOT', 2000], ['META', 1]]);
    const info = execFileSync('sgdisk', ['-i', '1', raw], { encoding: 'utf8' });
    expect(info).toContain('C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
    expect(info.toLowerCase()).toContain('bca5174b-0118-8a6a-af0b-2c6e1585acae');
  });

  test('v1.7.7 metal amd64: grub with empty STATE and EPHEMERAL', async () => {
    const raw = await rawDisk(id, 'v1.7.7', 'metal-amd64.raw.zst');
    expect(statSync(raw).size).toBe(1306525696);
    expect(partitions(raw).map((p) => p.name)).toEqual(['EFI', 'BIOS', 'BOOT', 'META', 'STATE', 'EPHEMERAL']);
  });

  // Fixed-size VHD (azure), .tar.gz and every compression are checked in libs/imaging/test/formats.test.ts; here the
  // compact formats go through the whole factory path.
  test('formats: qcow2 (8k clusters), vhd, ova members', async () => {
    const qcow2 = await download(id, 'v1.12.2', 'nocloud-amd64.qcow2');
    const q = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', qcow2], { encoding: 'utf8' }));
    expect([q.format, q['cluster-size'], q['virtual-size']]).toEqual(['qcow2', 8192, 4453302272]);
    const vhd = await download(id, 'v1.12.2', 'metal-amd64.vhd');
    const v = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-f', 'vpc', vhd], { encoding: 'utf8' }));
    expect(v.format).toBe('vpc');
    const ova = await download(id, 'v1.12.2', 'vmware-amd64.ova');
    expect(execFileSync('tar', ['-tf', ova], { encoding: 'utf8' }).trim().split('\n')).toEqual(['disk.ovf', 'disk.mf', 'disk.vmdk']);
  });

  test('4096-byte sectors', async () => {
    const id4k = await schematic({ customization: { diskImage: { sectorSize: 4096 } } });
    const raw = await rawDisk(id4k, 'v1.12.2', 'metal-amd64.raw.zst');
    const header = Buffer.alloc(8);
    const fd = require('node:fs').openSync(raw, 'r');
    require('node:fs').readSync(fd, header, 0, 8, 4096);
    require('node:fs').closeSync(fd);
    expect(header.toString('latin1')).toBe('EFI PART'); // the GPT header is at LBA 1 = byte 4096
  });
});

describe('boots (QEMU, TCG, one at a time)', () => {
  let id: string;
  beforeAll(async () => {
    id = await schematic({ customization: { extraKernelArgs: ['console=ttyS0', 'panic=-1'], meta: META, systemExtensions: { officialExtensions: ['siderolabs/hello'] } } });
  });
  const drive = (raw: string) => ['-drive', `file=${raw},format=raw,if=virtio,snapshot=on`];

  test('dual-boot v1.11.3 via SeaBIOS (GRUB) and via OVMF (sd-boot → UKI), META from the disk', async () => {
    const raw = path.join(tmp, `${id.slice(0, 8)}-v1.11.3-metal-amd64.raw`);
    if (!require('node:fs').existsSync(raw)) await rawDisk(id, 'v1.11.3', 'metal-amd64.raw.zst');
    const bios = (await bootAndReport({ args: drive(raw) }, 'dual-boot SeaBIOS')).report;
    expect(bios.firmwareMode).toBe('bios');
    expect(bios.schematics).toContain(id);
    expect(bios.extensions.map((e) => e.name)).toEqual(['hello', 'schematic']);
    expect(bios.metaEnv).toEqual([]); // disk images carry META in the partition, not on the cmdline
    expect(metaOf(bios.metaBytes)).toEqual({ 10: 'network: fixture', 12: 'hello', 17: 'dual-boot' });
    const uefi = await bootAndReport({ args: [...ovmfArgs(tmp), ...drive(raw)], input: sdBootEntry(0) }, 'dual-boot OVMF'); // Enter on the default entry
    expectMainProfileBooted(uefi.report);
    expect(uefi.serial).toContain('Talos (v1.11.3) (Reset to maintenance mode)'); // the disk image's reset profile, not booted
    expect(uefi.report.schematics).toContain(id);
  });

  test('grub v1.7.7 via SeaBIOS', async () => {
    const raw = path.join(tmp, `${id.slice(0, 8)}-v1.7.7-metal-amd64.raw`);
    await rawDisk(id, 'v1.7.7', 'metal-amd64.raw.zst');
    const r = (await bootAndReport({ args: drive(raw) }, 'grub v1.7.7 SeaBIOS')).report;
    expect(r.firmwareMode).toBe('bios');
    expect(r.talosVersion).toBe('v1.7.7');
    expect(metaOf(r.metaBytes)).toEqual({ 10: 'network: fixture', 12: 'hello' });
  });

  test('sd-boot v1.12.2 via OVMF (schematic bootloader)', async () => {
    const sd = await schematic({ customization: { bootloader: 'sd-boot', extraKernelArgs: ['console=ttyS0', 'panic=-1'], meta: [{ key: 10, value: 'sd' }] } });
    const raw = await rawDisk(sd, 'v1.12.2', 'metal-amd64.raw.zst');
    expect(partitions(raw).map((p) => p.name)).toEqual(['EFI', 'META']);
    const r = (await bootAndReport({ args: [...ovmfArgs(tmp), ...drive(raw)], input: sdBootEntry(0) }, 'sd-boot v1.12.2 OVMF')).report;
    expectMainProfileBooted(r);
    expect(r.schematics).toContain(sd);
    expect(metaOf(r.metaBytes)).toEqual({ 10: 'sd' });
  });

  test('overlay board image: installer options, kernel argument, boot blob', async () => {
    const board = await schematic({ overlay: { name: 'fixture_board', image: 'siderolabs/sbc-fixture', options: { fixtureValue: 'demo' } }, customization: { extraKernelArgs: ['panic=-1'] } });
    const raw = await rawDisk(board, 'v1.11.3', 'metal-amd64.raw.zst');
    // partitionOptions.offset 2048: entries start at LBA 2050, the installer's blob sits at LBA 64
    const blob = Buffer.alloc(16);
    const fd = require('node:fs').openSync(raw, 'r');
    require('node:fs').readSync(fd, blob, 0, 16, 64 * 512);
    require('node:fs').closeSync(fd);
    expect(blob.some((b) => b !== 0)).toBe(true);
    const r = (await bootAndReport({ args: drive(raw) }, 'overlay board SeaBIOS')).report;
    expect(r.overlayArgs).toEqual(['demo']);
    expect(r.schematics).toContain(board);
    expect(r.cmdline).toContain('console=ttyS0');
  });
});
