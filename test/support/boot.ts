/**
 * QEMU boot helpers for proofs (always TCG: KVM hangs on these hosts). The demo init prints a `FIXTURE` report on
 * the serial console and powers off; a boot is judged by that report, never by QEMU's exit code.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootQemu, BootResult, parseFixtureReport } from '../../tools/demo-releases/src';

export { bootQemu };
export type { BootResult };

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** pflash arguments for OVMF with a private copy of the variable store. */
export function ovmfArgs(): string[] {
  const vars = path.join(mkdtempSync(path.join(os.tmpdir(), 'ovmf-')), 'vars.fd');
  copyFileSync(OVMF_VARS, vars);
  return ['-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`];
}

/** Boots and fails with the serial tail when the report did not finish. */
export async function bootAndReport(opts: Parameters<typeof bootQemu>[0], label: string): Promise<BootResult> {
  const result = await bootQemu({ timeoutMs: 120_000, memoryMb: 1024, ...opts });
  if (!result.report.done) throw new Error(`${label}: no complete FIXTURE report after ${result.ms} ms (timedOut=${result.timedOut})\n${result.serial.slice(-3000)}`);
  process.stdout.write(`[boot] ${label}: report complete after ${(result.ms / 1000).toFixed(1)} s\n`);
  return result;
}

/**
 * Like bootQemu, but with the serial console's input connected: when `waitFor` shows up in the output, `keys` is
 * typed once (used to press Enter in the systemd-boot menu instead of waiting out loader.conf's `timeout 10`).
 */
export function bootQemuWithKeys(args: string[], waitFor: RegExp, keys: string, timeoutMs: number): Promise<BootResult & { keySentAtMs?: number }> {
  const argv = ['-machine', 'q35,accel=tcg', '-m', '512', '-nographic', '-no-reboot', ...args];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn('qemu-system-x86_64', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let serial = '';
    let finished = false;
    let timedOut = false;
    let keySentAtMs: number | undefined;
    const onData = (d: Buffer) => {
      serial += d.toString('latin1');
      if (keySentAtMs === undefined && waitFor.test(serial)) {
        keySentAtMs = Date.now() - t0;
        p.stdin!.write(keys);
      }
      if (!finished && serial.includes('FIXTURE done')) {
        finished = true;
        setTimeout(() => p.kill('SIGKILL'), 3000).unref();
      }
    };
    p.stdin!.on('error', () => undefined);
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ serial, report: parseFixtureReport(serial), timedOut: timedOut && !finished, exitCode: code, ms: Date.now() - t0, keySentAtMs });
    });
  });
}
