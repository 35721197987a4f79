/**
 * The factory's Secure Boot ISO end to end: the embedded factory (`npm start`, which generates its Secure Boot keys in
 * the signing service) serves `metal-amd64-secureboot.iso` through the gateway for a schematic with
 * `secureboot.enrollKeys: force` and an extension. Under OVMF with Secure Boot (secboot CODE, SMM, a blank variable
 * store in setup mode): run 1, systemd-boot enrolls the factory's PK/KEK/db from the ISO and resets; run 2, same
 * variable store, the signed UKI boots with Secure Boot enabled, its main profile's command line (with
 * `lockdown=confidentiality`), the schematic ID and the extension. Then the enrolled firmware refuses the ISO's UKI
 * with one `.cmdline` byte changed (Access Denied).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePe } from '@factory/authenticode';
import { bootQemu, expectKeysEnrolled, expectSecureBootMainBoot, OVMF_SECBOOT_CODE, OVMF_VARS, secureBootFirmwareArgs, serialLines } from '../support/boot';
import { DEMO_DIR } from '../support/demo-imager';
import { LaunchedFactory, stopProcess } from '../support/launcher';
import { launchSecureBootFactory } from '../support/secureboot-factory';
import { describeIf } from '../support/skip';

jest.setTimeout(600_000);

const VERSION = 'v1.12.2';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const READY =
  ['qemu-system-x86_64', 'xorriso', 'sbverify'].every(have) && fs.existsSync(OVMF_SECBOOT_CODE) && fs.existsSync(OVMF_VARS) && fs.existsSync(path.join(DEMO_DIR, 'releases.json'));


describeIf(READY, 'needs qemu-system-x86, ovmf, xorriso, sbsigntool and the demo releases')('the factory\'s metal-amd64-secureboot.iso under OVMF with Secure Boot', () => {
  let tmp: string;
  let factory: LaunchedFactory | undefined;
  let id: string;
  let iso: string;
  let certFile: string;
  let vars: string;
  const extracted = (isoPath: string) => {
    const out = path.join(tmp, 'extracted', isoPath);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', `/${isoPath}`, out], { stdio: 'ignore' });
    return out;
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'secureboot-iso-'));
    ({ factory, id, certFile } = await launchSecureBootFactory(tmp, 'secureboot-iso', {
      extraKernelArgs: ['console=ttyS0', 'panic=-1'],
      secureboot: { enrollKeys: 'force' },
      systemExtensions: { officialExtensions: ['siderolabs/hello'] },
    }));
    const t0 = Date.now();
    const res = await fetch(`${factory.url}/image/${id}/${VERSION}/metal-amd64-secureboot.iso`);
    if (res.status !== 200) throw new Error(`metal-amd64-secureboot.iso: ${res.status} ${await res.text()}\n${factory.output().slice(-4000)}`);
    iso = path.join(tmp, 'metal-amd64-secureboot.iso');
    fs.writeFileSync(iso, Buffer.from(await res.arrayBuffer()));
    process.stdout.write(`[secureboot-iso] built and downloaded the ISO in ${((Date.now() - t0) / 1000).toFixed(1)} s (${(fs.statSync(iso).size / 2 ** 20).toFixed(1)} MiB)\n`);
    vars = path.join(tmp, 'OVMF_VARS.fd');
    fs.copyFileSync(OVMF_VARS, vars);
  }, 400_000);

  afterAll(async () => {
    if (factory) await stopProcess(factory.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the ISO\'s systemd-boot and UKI are signed with the certificate /secureboot/signing-cert.pem serves', () => {
    for (const efi of ['EFI/BOOT/BOOTX64.EFI', `EFI/Linux/Talos-${VERSION}.efi`]) {
      const r = spawnSync('sbverify', ['--cert', certFile, extracted(efi)], { encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`).toContain('Signature verification OK');
    }
    expect(fs.readFileSync(extracted('loader/loader.conf'), 'utf8')).toContain('secure-boot-enroll force');
  });

  test('PXE secureboot: the script boots metal-amd64-secureboot-uki.efi, which the gateway serves signed, with the secureboot command line', async () => {
    const cmdline = await (await fetch(`${factory!.url}/image/${id}/${VERSION}/cmdline-metal-amd64-secureboot`)).text();
    expect(cmdline).toContain('lockdown=confidentiality');
    const pxe = await fetch(`${factory!.url}/pxe/${id}/${VERSION}/metal-amd64-secureboot`);
    const script = await pxe.text();
    expect(pxe.status).toBe(200);
    const base = /^kernel (\S+)\/image\//m.exec(script)?.[1];
    expect(script).toBe(`#!ipxe\n\nimgfree\nkernel ${base}/image/${id}/${VERSION}/metal-amd64-secureboot-uki.efi ${cmdline}\nboot\n`);
    const res = await fetch(`${factory!.url}/image/${id}/${VERSION}/metal-amd64-secureboot-uki.efi`);
    expect(res.status).toBe(200);
    const uki = path.join(tmp, 'metal-amd64-secureboot-uki.efi');
    fs.writeFileSync(uki, Buffer.from(await res.arrayBuffer()));
    const r = spawnSync('sbverify', ['--cert', certFile, uki], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toContain('Signature verification OK');
    expect(parsePe(fs.readFileSync(uki)).sections.map((s) => s.name)).toEqual(expect.arrayContaining(['.pcrpkey', '.pcrsig']));
  });

  test('run 1 (setup mode): systemd-boot enrolls the factory\'s keys from the ISO and resets', async () => {
    await expectKeysEnrolled([...secureBootFirmwareArgs(vars), '-cdrom', iso]);
  });

  test('run 2, same variable store: the signed UKI boots under enforced Secure Boot with the schematic, its extension and lockdown', async () => {
    const r = await expectSecureBootMainBoot([...secureBootFirmwareArgs(vars), '-cdrom', iso], 'Secure Boot ISO', VERSION);
    expect(r.report.schematics).toContain(id);
    expect(r.report.extensions.map((e) => e.name)).toContain('hello');
  });

  test('the enrolled firmware refuses the ISO\'s UKI with one .cmdline byte changed (Access Denied)', async () => {
    const esp = path.join(tmp, 'esp-tampered');
    fs.mkdirSync(path.join(esp, 'EFI', 'BOOT'), { recursive: true });
    fs.mkdirSync(path.join(esp, 'EFI', 'Linux'), { recursive: true });
    fs.mkdirSync(path.join(esp, 'loader'), { recursive: true });
    fs.copyFileSync(extracted('EFI/BOOT/BOOTX64.EFI'), path.join(esp, 'EFI', 'BOOT', 'BOOTX64.EFI'));
    fs.writeFileSync(path.join(esp, 'loader', 'loader.conf'), 'timeout 0\n');
    const uki = fs.readFileSync(extracted(`EFI/Linux/Talos-${VERSION}.efi`));
    const cmdline = parsePe(uki).sections.find((s) => s.name === '.cmdline')!;
    uki[cmdline.pointerToRawData] ^= 0x20;
    fs.writeFileSync(path.join(esp, 'EFI', 'Linux', 'talos.efi'), uki);
    const refusedVars = path.join(tmp, 'OVMF_VARS.tampered.fd');
    fs.copyFileSync(vars, refusedVars);
    // bootindex=0: the variable store remembers the DVD drive of runs 1 and 2 first; this disk must be tried first
    const disk = ['-drive', `file=fat:${esp},format=raw,if=none,id=esp,readonly=on`, '-device', 'virtio-blk-pci,drive=esp,bootindex=0'];
    const r = await bootQemu({ args: [...secureBootFirmwareArgs(refusedVars), ...disk], timeoutMs: 90_000, until: 'Access denied' });
    process.stdout.write(`[boot] tampered UKI refused after ${(r.ms / 1000).toFixed(1)} s\n${serialLines(r.serial, /Access [Dd]enied|Security Violation/)}`);
    // systemd-boot (signed by the factory, enrolled in db) started and the firmware's image check refused the UKI
    expect(r.serial).toContain('Error loading \\EFI\\Linux\\talos.efi: Access denied');
    expect(r.report.begun).toBe(false);
  });
});
