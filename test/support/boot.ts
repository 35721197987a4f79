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

/** pflash arguments for OVMF with a private copy of the variable store (in `dir`, default a new temp dir). */
export function ovmfArgs(dir = mkdtempSync(path.join(os.tmpdir(), 'ovmf-'))): string[] {
  const vars = path.join(dir, `OVMF_VARS-${process.pid}-${Date.now()}.fd`);
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
 * Keys for the systemd-boot menu on the serial console: `n` times Down (the ANSI sequence OVMF's serial terminal
 * turns into a cursor key), then Enter. With a multi-profile UKI the menu lists the main profile (default, 0) and
 * the reset profile (1) as separate entries.
 */
export function sdBootMenuKeys(down = 0): string {
  return '\x1b[B'.repeat(down) + '\r';
}

/** Matches systemd-boot's countdown line: the menu is drawn and takes keys. */
export const SD_BOOT_MENU_SHOWN = /Boot in \d+ s/;

/** Boots and fails with the serial tail when the report did not finish. */
export async function bootAndReport(opts: Parameters<typeof bootQemu>[0], label: string): Promise<BootResult> {
  const result = await bootQemu({ timeoutMs: 120_000, memoryMb: 1024, ...opts });
  if (!result.report.done) throw new Error(`${label}: no complete FIXTURE report after ${result.ms} ms (timedOut=${result.timedOut})\n${result.serial.slice(-3000)}`);
  process.stdout.write(`[boot] ${label}: report complete after ${(result.ms / 1000).toFixed(1)} s\n`);
  return result;
}
