/** Boot helper: run qemu-system-x86_64 under TCG and collect the serial console until the report is complete. */
import { ProcessError, start } from '@factory/process';
import { FixtureReport, parseFixtureReport } from './report';

export interface BootOptions {
  /** -kernel / -initrd / -append for a direct kernel boot */
  kernel?: string;
  initrd?: string;
  append?: string;
  /** extra qemu arguments (drives, pflash, cdrom, ...) */
  args?: string[];
  memoryMb?: number;
  timeoutMs?: number;
  /** stop as soon as this appears on the console (default: "FIXTURE done") */
  until?: string;
  /**
   * Type `keys` on the serial console once `when` matches the output so far (e.g. pick a systemd-boot menu entry
   * instead of waiting out loader.conf's timeout). Without it the guest's stdin is closed.
   */
  input?: { when: RegExp; keys: string };
}

export interface BootResult {
  serial: string;
  report: FixtureReport;
  timedOut: boolean;
  exitCode: number | null;
  ms: number;
  /** when `input.keys` was typed (ms after start), if it was */
  keySentAtMs?: number;
}

/** Boot and parse. Always TCG (KVM is not usable on these hosts). Judge by result.report.done, not exitCode. */
export async function bootQemu(opts: BootOptions): Promise<BootResult> {
  const args = ['-machine', 'q35,accel=tcg', '-m', String(opts.memoryMb ?? 512), '-nographic', '-no-reboot'];
  if (opts.kernel) args.push('-kernel', opts.kernel);
  if (opts.initrd) args.push('-initrd', opts.initrd);
  if (opts.append !== undefined) args.push('-append', opts.append);
  args.push(...(opts.args ?? []));
  const until = opts.until ?? 'FIXTURE done';
  const t0 = Date.now();
  // a timeout is a result (timedOut), not an error: SIGKILL at once, as a hung guest will not shut down anyway
  const qemu = start('qemu-system-x86_64', args, { stdin: opts.input ? 'pipe' : 'ignore', stdout: 'pipe', timeoutMs: opts.timeoutMs ?? 120000, killGraceMs: 0 });
  let serial = '';
  let finished = false;
  let keySentAtMs: number | undefined;
  const onData = (d: Buffer) => {
    serial += d.toString('latin1');
    if (opts.input && keySentAtMs === undefined && opts.input.when.test(serial)) {
      keySentAtMs = Date.now() - t0;
      qemu.stdin!.write(opts.input.keys);
    }
    // give the guest a moment to power off by itself after the marker
    if (!finished && serial.includes(until)) {
      finished = true;
      setTimeout(() => qemu.kill(), 3000).unref();
    }
  };
  qemu.stdout!.on('data', onData);
  qemu.child.stderr!.on('data', onData);
  let timedOut = false;
  try {
    await qemu.done;
  } catch (e) {
    // a killed or failing guest is judged by its report; only a qemu that never ran is an error
    if (!(e instanceof ProcessError) || e.reason === 'spawn') throw e;
    timedOut = e.reason === 'timeout';
  }
  return { serial, report: parseFixtureReport(serial), timedOut: timedOut && !finished, exitCode: qemu.child.exitCode, ms: Date.now() - t0, keySentAtMs };
}
