/** Boot helper: run qemu-system-x86_64 under TCG and collect the serial console until the report is complete. */
import { spawn } from 'node:child_process';
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
export function bootQemu(opts: BootOptions): Promise<BootResult> {
  const args = ['-machine', 'q35,accel=tcg', '-m', String(opts.memoryMb ?? 512), '-nographic', '-no-reboot'];
  if (opts.kernel) args.push('-kernel', opts.kernel);
  if (opts.initrd) args.push('-initrd', opts.initrd);
  if (opts.append !== undefined) args.push('-append', opts.append);
  args.push(...(opts.args ?? []));
  const until = opts.until ?? 'FIXTURE done';
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const proc = spawn('qemu-system-x86_64', args, { stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let serial = '';
    let timedOut = false;
    let finished = false;
    let keySentAtMs: number | undefined;
    proc.stdin?.on('error', () => undefined);
    const onData = (d: Buffer) => {
      serial += d.toString('latin1');
      if (opts.input && keySentAtMs === undefined && opts.input.when.test(serial)) {
        keySentAtMs = Date.now() - t0;
        proc.stdin!.write(opts.input.keys);
      }
      // give the guest a moment to power off by itself after the marker
      if (!finished && serial.includes(until)) {
        finished = true;
        setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL'); }, opts.timeoutMs ?? 120000);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ serial, report: parseFixtureReport(serial), timedOut: timedOut && !finished, exitCode: code, ms: Date.now() - t0, keySentAtMs });
    });
  });
}
