/**
 * Secure Boot end to end with our own keys (test-environment §3 "own PK/KEK/db"), all signatures made by
 * @factory/authenticode through the signing service's Secure Boot handlers: OVMF with Secure Boot (secboot CODE,
 * SMM) and a blank variable store in setup mode. Run 1: our signed systemd-boot with `secure-boot-enroll force`
 * enrolls our PK/KEK/db `.auth` files and resets. Run 2, same variable store: our signed demo UKI boots with Secure
 * Boot enabled. Then the firmware refuses an unsigned UKI, one signed with another key, and one with a byte of
 * `.cmdline` changed after signing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePe, signPeFile, AuthenticodeSigner } from '@factory/authenticode';
import { buildUki, talosOsRelease, talosUkiProfiles } from '@factory/imaging';
import { enrollmentFiles, secureBootHandlers } from '../../services/signing/src/secureboot-handlers';
import { bootQemu, expectKeysEnrolled, expectMainProfileBooted, OVMF_SECBOOT_CODE, OVMF_VARS, secureBootFirmwareArgs, serialLines } from '../support/boot';
import { DEMO_DIR, extractDemoImager } from '../support/demo-imager';
import { makeTestKeyPair, TestKeyPair } from '../support/secureboot-keys';
import { describeIf } from '../support/skip';

jest.setTimeout(300_000);

const VERSION = 'v1.12.2';
const CMDLINE = 'console=ttyS0 panic=-1 talos.platform=metal lockdown=confidentiality fixture.secureboot=1';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const READY =
  have('qemu-system-x86_64') && have('openssl') && fs.existsSync(OVMF_SECBOOT_CODE) && fs.existsSync(OVMF_VARS) && fs.existsSync(path.join(DEMO_DIR, 'releases.json'));

let tmp: string;
let esp: string;
let vars: string;
const pairs: Record<string, TestKeyPair> = {};

/** OVMF with Secure Boot and the given variable store, our ESP as a read-only vvfat. */
function secureBootArgs(varsFile: string, espDir: string): string[] {
  return [...secureBootFirmwareArgs(varsFile), '-drive', `file=fat:${espDir},format=raw,if=virtio,readonly=on`];
}

function espWith(dir: string, uki: string): string {
  fs.mkdirSync(path.join(dir, 'EFI', 'Linux'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'EFI', 'BOOT'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'loader', 'keys', 'auto'), { recursive: true });
  fs.copyFileSync(path.join(esp, 'EFI', 'BOOT', 'BOOTX64.EFI'), path.join(dir, 'EFI', 'BOOT', 'BOOTX64.EFI'));
  fs.copyFileSync(path.join(esp, 'loader', 'loader.conf'), path.join(dir, 'loader', 'loader.conf'));
  fs.copyFileSync(uki, path.join(dir, 'EFI', 'Linux', 'talos.efi'));
  return dir;
}

describeIf(READY, 'needs qemu-system-x86, ovmf, openssl and the demo releases')('Secure Boot with the factory\'s own PK/KEK/db', () => {
  let signedUki: string;
  let unsignedUki: string;
  let foreignUki: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'secureboot-enroll-'));
    for (const name of ['PK', 'KEK', 'db']) pairs[name] = makeTestKeyPair(tmp, name);
    const handlers = secureBootHandlers({ signing: pairs.db, pk: pairs.PK, kek: pairs.KEK });
    const signer: AuthenticodeSigner = async (sha256) =>
      Buffer.from((await handlers['signing.authenticode']({ sha256: sha256.toString('hex') })).signedDataBase64, 'base64');

    const demo = extractDemoImager(VERSION, 'amd64', path.join(tmp, 'demo'));
    unsignedUki = path.join(tmp, 'uki.efi');
    await buildUki({ stub: demo.stub, kernel: demo.kernel, initrd: demo.initramfs, cmdline: CMDLINE, osRelease: talosOsRelease(VERSION), profiles: talosUkiProfiles(CMDLINE, 'iso'), out: unsignedUki });
    signedUki = path.join(tmp, 'uki.signed.efi');
    await signPeFile(unsignedUki, signedUki, signer);
    // the same UKI signed with a key the firmware never enrolled
    const otherHandlers = secureBootHandlers({ signing: makeTestKeyPair(tmp, 'other') });
    foreignUki = path.join(tmp, 'uki.foreign.efi');
    await signPeFile(unsignedUki, foreignUki, async (sha256) =>
      Buffer.from((await otherHandlers['signing.authenticode']({ sha256: sha256.toString('hex') })).signedDataBase64, 'base64'),
    );

    esp = path.join(tmp, 'esp');
    fs.mkdirSync(path.join(esp, 'EFI', 'BOOT'), { recursive: true });
    fs.mkdirSync(path.join(esp, 'EFI', 'Linux'), { recursive: true });
    fs.mkdirSync(path.join(esp, 'loader', 'keys', 'auto'), { recursive: true });
    await signPeFile(demo.sdBoot, path.join(esp, 'EFI', 'BOOT', 'BOOTX64.EFI'), signer);
    fs.copyFileSync(signedUki, path.join(esp, 'EFI', 'Linux', 'talos.efi'));
    fs.writeFileSync(path.join(esp, 'loader', 'loader.conf'), 'timeout 0\nsecure-boot-enroll force\n');
    const auth = await enrollmentFiles({ signing: pairs.db, pk: pairs.PK, kek: pairs.KEK });
    for (const name of ['PK', 'KEK', 'db'] as const) fs.writeFileSync(path.join(esp, 'loader', 'keys', 'auto', `${name}.auth`), Buffer.from(auth[name], 'base64'));

    vars = path.join(tmp, 'OVMF_VARS.fd');
    fs.copyFileSync(OVMF_VARS, vars);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('run 1: systemd-boot (signed by us) enrolls our PK/KEK/db from loader/keys/auto and resets', async () => {
    await expectKeysEnrolled(secureBootArgs(vars, esp));
  });

  test('run 2, same variable store: the signed UKI boots with Secure Boot enabled and its main profile', async () => {
    const r = await bootQemu({ args: secureBootArgs(vars, esp), timeoutMs: 150_000, memoryMb: 1024 });
    process.stdout.write(`[boot] signed UKI under enforced Secure Boot: ${(r.ms / 1000).toFixed(1)} s\n${serialLines(r.serial, /[Ss]ecure boot|locked down|FIXTURE (secureboot|cmdline)/)}`);
    if (!r.report.done) throw new Error(`no complete FIXTURE report; serial tail:\n${r.serial.slice(-3000)}`);
    expect(r.report.secureBoot).toBe(true);
    expect(r.serial).toContain('Secure boot enabled');
    expectMainProfileBooted(r.report, CMDLINE);
    expect(r.report.talosVersion).toBe(VERSION);
  });

  test('the enrolled firmware refuses an unsigned UKI, one signed with another key, and one with a .cmdline byte changed after signing', async () => {
    const tampered = path.join(tmp, 'uki.tampered.efi');
    const b = fs.readFileSync(signedUki);
    const cmdline = parsePe(b).sections.find((s) => s.name === '.cmdline')!;
    b[cmdline.pointerToRawData + CMDLINE.indexOf('panic')] ^= 0x20;
    fs.writeFileSync(tampered, b);
    for (const [label, uki] of [['unsigned', unsignedUki], ['foreign', foreignUki], ['tampered', tampered]] as const) {
      const refusedVars = path.join(tmp, `OVMF_VARS.${label}.fd`);
      fs.copyFileSync(vars, refusedVars);
      // stop at the firmware's report that systemd-boot gave up (after its own error line)
      const r = await bootQemu({ args: secureBootArgs(refusedVars, espWith(path.join(tmp, `esp-${label}`), uki)), timeoutMs: 120_000, until: 'failed to start Boot' });
      process.stdout.write(`[boot] ${label} UKI refused after ${(r.ms / 1000).toFixed(1)} s\n${serialLines(r.serial, /Access [Dd]enied|Security Violation/)}`);
      // systemd-boot started (it is signed by our db) and the firmware's image check refused the UKI it loads
      expect(r.serial).toContain('Error loading \\EFI\\Linux\\talos.efi: Access denied');
      expect(r.report.begun).toBe(false);
    }
  });
});
