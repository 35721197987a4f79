/**
 * The factory's Secure Boot disk image end to end: the embedded factory (`npm start`, which generates its Secure Boot
 * keys in the signing service) serves `metal-amd64-secureboot.raw.xz` through the gateway for a schematic with
 * `secureboot.enrollKeys: force`. Decompressed, the disk has the sd-boot layout (EFI + META) and its ESP's systemd-boot
 * and UKI verify with the certificate `/secureboot/signing-cert.pem` serves. Under OVMF with Secure Boot (secboot CODE,
 * SMM, a blank variable store in setup mode): run 1, systemd-boot enrolls the factory's PK/KEK/db from the disk's ESP
 * and resets; run 2, same variable store, the signed UKI boots with Secure Boot enabled, its main profile's command
 * line with `lockdown=confidentiality`, and the schematic ID.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs, { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expectKeysEnrolled, expectSecureBootMainBoot, OVMF_SECBOOT_CODE, OVMF_VARS, secureBootFirmwareArgs } from '../support/boot';
import { DEMO_DIR } from '../support/demo-imager';
import { LaunchedFactory, stopProcess } from '../support/launcher';
import { launchSecureBootFactory } from '../support/secureboot-factory';
import { describeIf } from '../support/skip';

jest.setTimeout(600_000);

const VERSION = 'v1.12.2';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const READY =
  ['qemu-system-x86_64', 'xz', 'sgdisk', 'mcopy', 'sbverify'].every(have) && fs.existsSync(OVMF_SECBOOT_CODE) && fs.existsSync(OVMF_VARS) && fs.existsSync(path.join(DEMO_DIR, 'releases.json'));

describeIf(READY, 'needs qemu-system-x86, ovmf, xz-utils, gdisk, mtools, sbsigntool and the demo releases')('the factory\'s metal-amd64-secureboot.raw.xz under OVMF with Secure Boot', () => {
  let tmp: string;
  let factory: LaunchedFactory | undefined;
  let id: string;
  let raw: string;
  let certFile: string;
  let vars: string;
  // the disk is not written by the boots: the enrollment lives in the variable store
  const drive = () => ['-drive', `file=${raw},format=raw,if=virtio,snapshot=on`];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'secureboot-disk-'));
    ({ factory, id, certFile } = await launchSecureBootFactory(tmp, 'secureboot-disk', { extraKernelArgs: ['console=ttyS0', 'panic=-1'], secureboot: { enrollKeys: 'force' } }));
    const t0 = Date.now();
    const res = await fetch(`${factory.url}/image/${id}/${VERSION}/metal-amd64-secureboot.raw.xz`);
    if (res.status !== 200) throw new Error(`metal-amd64-secureboot.raw.xz: ${res.status} ${await res.text()}\n${factory.output().slice(-4000)}`);
    const xz = path.join(tmp, 'metal-amd64-secureboot.raw.xz');
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(xz));
    process.stdout.write(`[secureboot-disk] built and downloaded the disk image in ${((Date.now() - t0) / 1000).toFixed(1)} s (${(fs.statSync(xz).size / 2 ** 20).toFixed(1)} MiB)\n`);
    // xz writes the decompressed zero runs as holes
    execFileSync('xz', ['-d', '-q', xz]);
    raw = xz.replace(/\.xz$/, '');
    vars = path.join(tmp, 'OVMF_VARS.fd');
    fs.copyFileSync(OVMF_VARS, vars);
  }, 400_000);

  afterAll(async () => {
    if (factory) await stopProcess(factory.proc);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('sd-boot layout; the ESP\'s systemd-boot and UKI are signed with the certificate /secureboot/signing-cert.pem serves', () => {
    const parts = execFileSync('sgdisk', ['-p', raw], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /^\s+\d+\s+\d+\s+\d+/.test(l))
      .map((l) => l.trim().split(/\s+/));
    expect(parts.map((f) => f[f.length - 1])).toEqual(['EFI', 'META']);
    const image = `${raw}@@${Number(parts[0][1]) * 512}`;
    const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
    const extract = (file: string) => {
      const out = path.join(tmp, path.basename(file));
      execFileSync('mcopy', ['-n', '-o', '-i', image, `::/${file}`, out], { env });
      return out;
    };
    for (const efi of ['EFI/boot/BOOTX64.efi', `EFI/Linux/Talos-${VERSION}.efi`]) {
      const r = spawnSync('sbverify', ['--cert', certFile, extract(efi)], { encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`).toContain('Signature verification OK');
    }
    expect(fs.readFileSync(extract('loader/loader.conf'), 'utf8')).toContain('\nsecure-boot-enroll force\n');
    for (const auth of ['PK', 'KEK', 'db']) expect(fs.statSync(extract(`loader/keys/auto/${auth}.auth`)).size).toBeGreaterThan(0);
  });

  test('run 1 (setup mode): systemd-boot enrolls the factory\'s keys from the disk\'s ESP and resets', async () => {
    await expectKeysEnrolled([...secureBootFirmwareArgs(vars), ...drive()]);
  });

  test('run 2, same variable store: the signed UKI boots from the disk under enforced Secure Boot with the schematic and lockdown', async () => {
    const r = await expectSecureBootMainBoot([...secureBootFirmwareArgs(vars), ...drive()], 'Secure Boot disk image', VERSION);
    expect(r.report.schematics).toContain(id);
  });
});
