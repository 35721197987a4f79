/**
 * Secure Boot disk images below the edge (talos-formats §8): buildAsset with a `-secureboot` image profile, the demo
 * imager and the signing service's real handlers behind the queue adapter. The image has the sd-boot layout (EFI
 * 2101 MiB + META, no BIOS or BOOT partition); its ESP, read with mtools at the EFI partition's offset, holds the
 * signed systemd-boot and the signed UKI with the reset-maintenance profile, loader.conf's `secure-boot-enroll` from
 * the schematic (default if-safe) and the enrollment files, which `enrollKeys: off` leaves out.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AssetProfile } from '@factory/asset';
import { parsePe, peSectionData } from '@factory/authenticode';
import { secureBootHandlers } from '../../signing/src/secureboot-handlers';
import type { SecureBootKeys } from '../../signing/src/secureboot-keys';
import { DEMO_DIR } from '../../../test/support/demo-imager';
import type { TestKeyPair } from '../../../test/support/secureboot-keys';
import { describeIf } from '../../../test/support/skip';
import { parseAssetPath } from '@factory/talos';
import { buildAsset } from '../src/recipes';
import { testProfile } from './profiles';
import { expectSignedBy, makeSecureBootTestKeys, secureBootBuildContext } from './secureboot-signer';

jest.setTimeout(300_000);

const VERSION = 'v1.12.2';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const READY = ['sbverify', 'osslsigncode', 'openssl', 'sgdisk', 'mkfs.vfat', 'mcopy', 'mdir', 'qemu-img', 'zstd', 'xz', 'tar'].every(have) && fs.existsSync(path.join(DEMO_DIR, 'releases.json'));
const UKI = `EFI/Linux/Talos-${VERSION}.efi`;
const SD_BOOT = 'EFI/boot/BOOTX64.efi';

let tmp: string;
let signing: TestKeyPair;
let keys: SecureBootKeys;

/** A metal amd64 Secure Boot disk image of the demo version (base 1246 MiB as the edge resolves metal) unless `over` says otherwise. */
const diskProfile = (over: Partial<AssetProfile>): AssetProfile =>
  testProfile({ version: VERSION, kind: 'image', secureboot: true, path: 'metal-amd64-secureboot.raw', outFormat: 'raw', disk: { format: 'raw', sizeMiB: 1246, formatOptions: '' }, ...over });

async function build(name: string, over: Partial<AssetProfile>): Promise<string> {
  const t0 = Date.now();
  const built = await buildAsset(secureBootBuildContext(tmp, VERSION, keys), diskProfile(over), fs.mkdtempSync(path.join(tmp, `${name}-`)));
  process.stdout.write(`[secureboot-disk] ${name}: built in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return built.file;
}

interface GptEntry {
  num: number;
  first: number;
  last: number;
  code: string;
  name: string;
}

function gpt(raw: string): GptEntry[] {
  return execFileSync('sgdisk', ['-p', raw], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /^\s+\d+\s+\d+\s+\d+/.test(l))
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { num: Number(f[0]), first: Number(f[1]), last: Number(f[2]), code: f[f.length - 2], name: f[f.length - 1] };
    });
}

/** The ESP of a raw disk image as mtools sees it at the EFI partition's byte offset. */
function esp(raw: string): { files: string[]; read(file: string): Buffer; extract(file: string): string } {
  const efi = gpt(raw).find((p) => p.name === 'EFI');
  if (!efi) throw new Error(`${raw}: no EFI partition`);
  const image = `${raw}@@${efi.first * 512}`;
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
  const files = execFileSync('mdir', ['-i', image, '-/', '-b', '::/'], { encoding: 'utf8', env })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^::\//, ''))
    .filter((f) => !f.endsWith('/'))
    .sort();
  const extract = (file: string) => {
    const out = path.join(tmp, `esp-${path.basename(raw)}-${file.replace(/\//g, '_')}`);
    execFileSync('mcopy', ['-n', '-o', '-i', image, `::/${file}`, out], { env });
    return out;
  };
  return { files, extract, read: (file) => fs.readFileSync(extract(file)) };
}

/** The raw disk inside a built disk image of any §8.1 format and compression (sparse, in a fresh directory). */
function toRaw(file: string, outFormat: string, format: string): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'unpacked-'));
  let disk = path.join(dir, `disk.${format}`);
  switch (outFormat) {
    case 'raw':
      fs.copyFileSync(file, disk);
      break;
    case '.zst':
      execFileSync('zstd', ['-q', '-d', '--sparse', file, '-o', disk]);
      break;
    case '.xz':
      execFileSync('sh', ['-c', 'xz -d -c "$1" | cp --sparse=always /dev/stdin "$2"', 'sh', file, disk]);
      break;
    case '.tar.gz':
      execFileSync('tar', ['-xzf', file, '-C', dir]);
      disk = path.join(dir, 'disk.raw'); // the tar member is called disk.raw whatever the format
      break;
    default:
      throw new Error(`unpack ${outFormat}`);
  }
  if (format === 'raw') return disk;
  if (format === 'ova') {
    execFileSync('tar', ['-xf', disk, '-C', dir, 'disk.vmdk']);
    disk = path.join(dir, 'disk.vmdk');
  }
  const raw = path.join(dir, 'unpacked.raw');
  // a fixed VHD has no header for qemu-img to recognise (only the footer): named, not probed
  const qemuFormat = ({ qcow2: 'qcow2', vhd: 'vpc', ova: 'vmdk' } as Record<string, string>)[format];
  execFileSync('qemu-img', ['convert', '-f', qemuFormat, '-O', 'raw', disk, raw]);
  return raw;
}

describeIf(READY, 'needs sbsigntool, osslsigncode, openssl, gdisk, dosfstools, mtools, qemu-utils, zstd, xz-utils and the demo releases')('Secure Boot disk images (signing service handlers behind the queue adapter)', () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-disk-'));
    ({ signing, keys } = makeSecureBootTestKeys(tmp));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('metal-amd64-secureboot.raw (enrollKeys unset)', () => {
    let raw: string;
    beforeAll(async () => {
      raw = await build('raw', {});
    });

    test('§8.2 sd-boot layout: EFI 2101 MiB and META 1 MiB, no BIOS or BOOT partition, 2246 MiB in all', () => {
      expect(gpt(raw).map(({ num, code, name, first, last }) => ({ num, code, name, sizeMiB: (last - first + 1) / 2048 }))).toEqual([
        { num: 1, code: 'EF00', name: 'EFI', sizeMiB: 2101 },
        { num: 2, code: '8300', name: 'META', sizeMiB: 1 },
      ]);
      expect(fs.statSync(raw).size).toBe(2246 * 2 ** 20);
    });

    test('the ESP: signed systemd-boot and UKI, secure-boot-enroll if-safe, the signing service\'s PK/KEK/db', async () => {
      const e = esp(raw);
      expect(e.files).toEqual([UKI, SD_BOOT, 'loader/keys/auto/KEK.auth', 'loader/keys/auto/PK.auth', 'loader/keys/auto/db.auth', 'loader/loader.conf'].sort());
      expect(e.read('loader/loader.conf').toString('utf8')).toBe('# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll if-safe\n');
      const enrollment = await secureBootHandlers(keys)['signing.secureBootEnrollment']({});
      for (const name of ['PK', 'KEK', 'db'] as const) expect(e.read(`loader/keys/auto/${name}.auth`)).toEqual(Buffer.from(enrollment[name], 'base64'));
      expectSignedBy(e.extract(SD_BOOT), signing.certPath);
      expectSignedBy(e.extract(UKI), signing.certPath);
    });

    test('the UKI: main profile with lockdown=confidentiality, then the reset-maintenance profile, each with its .pcrsig', () => {
      const uki = esp(raw).read(UKI);
      const info = parsePe(uki);
      const names = info.sections.map((s) => s.name);
      expect(names.slice(names.indexOf('.initrd'))).toEqual(['.initrd', '.profile', '.pcrsig', '.profile', '.cmdline', '.pcrsig']);
      const data = info.sections.map((s) => peSectionData(uki, s).toString('utf8'));
      const profiles = data.filter((_, i) => names[i] === '.profile');
      expect(profiles).toEqual(['ID=main', 'ID=reset-maintenance\nTITLE=Reset to maintenance mode']);
      const [main, reset] = data.filter((_, i) => names[i] === '.cmdline');
      expect(main).toContain('lockdown=confidentiality');
      expect(reset).toBe(`${main} talos.experimental.wipe=system:EPHEMERAL,STATE`);
    });
  });

  test('enrollKeys off: no secure-boot-enroll line and no key files (§7.5)', async () => {
    const e = esp(await build('off', { enrollKeys: 'off' }));
    expect(e.files).toEqual([UKI, SD_BOOT, 'loader/loader.conf'].sort());
    expect(e.read('loader/loader.conf').toString('utf8')).toBe('# systemd-boot configuration\n\ntimeout 10\n');
  });

  /**
   * Every disk format and compression, by the platform paths the edge resolves (parseAssetPath: base size, format
   * options): unpacked back to a raw disk, each has the Secure Boot ESP. Enrollment from the schematic as it varies.
   */
  test.each([
    ['metal-amd64-secureboot.raw.zst', {}],
    ['aws-amd64-secureboot.qcow2.tar.gz', { enrollKeys: 'force', includeWellKnownCertificates: true }],
    ['vmware-amd64-secureboot.ova', { enrollKeys: 'manual' }],
    ['metal-amd64-secureboot.vhd.xz', {}],
  ] as Array<[string, Partial<AssetProfile>]>)('%s: the Secure Boot ESP in the converted, compressed image', async (assetPath, schematic) => {
    const request = parseAssetPath(assetPath);
    const file = await build(assetPath, { ...schematic, path: assetPath, platform: request.platform, outFormat: request.outFormat, disk: request.disk });
    const raw = toRaw(file, request.outFormat, request.disk!.format);
    const size = (request.disk!.sizeMiB + 1000) * 2 ** 20;
    // a VHD without force_size is rounded up to its CHS geometry (as the non-Secure Boot ones)
    if (request.disk!.format === 'vhd') expect(fs.statSync(raw).size).toBeGreaterThanOrEqual(size);
    else expect(fs.statSync(raw).size).toBe(size);
    expect(gpt(raw).map((p) => p.name)).toEqual(['EFI', 'META']);
    const e = esp(raw);
    const enroll = schematic.enrollKeys ?? 'if-safe';
    expect(e.read('loader/loader.conf').toString('utf8')).toContain(`\nsecure-boot-enroll ${enroll}\n`);
    const enrollment = await secureBootHandlers(keys)['signing.secureBootEnrollment'](schematic.includeWellKnownCertificates ? { includeWellKnownCertificates: true } : {});
    for (const name of ['PK', 'KEK', 'db'] as const) expect(e.read(`loader/keys/auto/${name}.auth`)).toEqual(Buffer.from(enrollment[name], 'base64'));
    expectSignedBy(e.extract(SD_BOOT), signing.certPath);
    expectSignedBy(e.extract(UKI), signing.certPath);
    fs.rmSync(path.dirname(raw), { recursive: true, force: true });
  });
});
