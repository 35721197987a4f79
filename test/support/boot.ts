/**
 * QEMU boot helpers for proofs (always TCG: KVM hangs on these hosts). The demo init prints a `FIXTURE` report on
 * the serial console and powers off; a boot is judged by that report, never by QEMU's exit code.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootQemu, BootResult, FixtureReport } from '../../tools/demo-releases/src';

export { bootQemu };
export type { BootResult };

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

let varStores = 0;

/** pflash arguments for OVMF with a private copy of the variable store (in `dir`, default a new temp dir). */
export function ovmfArgs(dir = mkdtempSync(path.join(os.tmpdir(), 'ovmf-'))): string[] {
  const vars = path.join(dir, `OVMF_VARS-${process.pid}-${++varStores}.fd`);
  copyFileSync(OVMF_VARS, vars);
  return ['-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`];
}

/** The argument only a Talos reset boot (GRUB reset entry, UKI reset profile) puts on the kernel command line. */
export const WIPE_ARG = 'talos.experimental.wipe=';

/**
 * A UEFI boot of a multi-profile UKI (Talos >= 1.10) must come up with the MAIN profile's command line: the base
 * `.cmdline`, never the reset profile's (`talos.experimental.wipe=...`, which wipes the disk on a real node). A stub
 * that ignores `.profile` sections (systemd < 257) boots the last `.cmdline`, the reset one; this catches it.
 * `expected`, when given, is the exact main command line.
 */
export function expectMainProfileBooted(report: FixtureReport, expected?: string): void {
  expect(report.firmwareMode).toBe('uefi');
  expect(report.cmdline).toBeDefined();
  expect(report.cmdline).not.toContain(WIPE_ARG);
  if (expected !== undefined) expect(report.cmdline).toBe(expected);
}

/**
 * `input` for bootQemu/bootAndReport that picks entry `index` (0 = the highlighted default) of the systemd-boot menu
 * as soon as its countdown is on the serial console, instead of waiting out loader.conf's `timeout 10`: `index`
 * times Down (the ANSI sequence OVMF's serial terminal turns into a cursor key), then Enter. With a multi-profile
 * UKI the menu lists the main profile (0, the default) and the reset profile (1) as separate entries.
 */
export function sdBootEntry(index: number): { when: RegExp; keys: string } {
  return { when: /Boot in \d+ s/, keys: '\x1b[B'.repeat(index) + '\r' };
}

/** Boots and fails with the serial tail when the report did not finish. */
export async function bootAndReport(opts: Parameters<typeof bootQemu>[0], label: string): Promise<BootResult> {
  const result = await bootQemu({ timeoutMs: 120_000, memoryMb: 1024, ...opts });
  if (!result.report.done) throw new Error(`${label}: no complete FIXTURE report after ${result.ms} ms (timedOut=${result.timedOut})\n${result.serial.slice(-3000)}`);
  process.stdout.write(`[boot] ${label}: report complete after ${(result.ms / 1000).toFixed(1)} s\n`);
  return result;
}

/** OVMF with Secure Boot support (Debian's secboot build: needs SMM and a secure pflash). */
export const OVMF_SECBOOT_CODE = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';

/**
 * QEMU arguments for OVMF with Secure Boot: secboot CODE, SMM, secure pflash and the given variable store (a copy
 * of the blank OVMF_VARS is in setup mode: systemd-boot may enroll keys into it).
 */
export function secureBootFirmwareArgs(varsFile: string): string[] {
  return [
    '-machine', 'smm=on',
    '-global', 'driver=cfi.pflash01,property=secure,value=on',
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_SECBOOT_CODE}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${varsFile}`,
  ];
}

/** The serial console lines matching `re`, indented, for a test's log. */
export function serialLines(serial: string, re: RegExp): string {
  return serial.split(/\r?\n/).filter((l) => re.test(l)).map((l) => `  | ${l.trim()}\n`).join('');
}

/**
 * A boot in setup mode in which systemd-boot enrolls PK/KEK/db from `loader/keys/auto` (`secure-boot-enroll force`)
 * and resets: the enrollment is on the console, nothing failed, and the reset ended QEMU (-no-reboot) before any
 * kernel started.
 */
export async function expectKeysEnrolled(args: string[]): Promise<BootResult> {
  const r = await bootQemu({ args, timeoutMs: 120_000, until: 'FIXTURE begin' });
  process.stdout.write(`[boot] enrollment run: ${(r.ms / 1000).toFixed(1)} s\n${serialLines(r.serial, /[Ee]nroll|[Ss]ecure ?[Bb]oot|reset/)}`);
  expect(r.serial).toContain('Enrolling secure boot keys');
  expect(r.serial).not.toMatch(/Failed to write|Access Denied|Security Violation/);
  expect(r.timedOut).toBe(false);
  expect(r.report.begun).toBe(false);
  return r;
}

/**
 * A boot on enrolled firmware (after expectKeysEnrolled, same variable store): systemd-boot's default entry starts the
 * signed UKI, and the demo init reports Secure Boot enabled, the main profile's command line with
 * `lockdown=confidentiality` (no reset argument) and `version`. Returns the result for further checks.
 */
export async function expectSecureBootMainBoot(args: string[], label: string, version: string): Promise<BootResult> {
  const r = await bootQemu({ args, timeoutMs: 150_000, memoryMb: 1024, input: sdBootEntry(0) });
  process.stdout.write(`[boot] ${label}, enrolled firmware: ${(r.ms / 1000).toFixed(1)} s\n${serialLines(r.serial, /[Ss]ecure boot|locked down|FIXTURE (secureboot|cmdline|schematic|extension)/)}`);
  if (!r.report.done) throw new Error(`no complete FIXTURE report; serial tail:\n${r.serial.slice(-3000)}`);
  expect(r.report.secureBoot).toBe(true);
  expect(r.serial).toContain('Secure boot enabled');
  expectMainProfileBooted(r.report);
  expect(r.report.cmdline).toContain('lockdown=confidentiality');
  expect(r.report.talosVersion).toBe(version);
  return r;
}
