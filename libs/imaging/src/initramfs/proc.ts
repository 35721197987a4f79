/** Child-process helpers: run a tool to completion, or stream bytes through one, with bounded output capture. */
import { ChildProcess, spawn, StdioOptions } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const TAIL = 16 * 1024;

/** Keeps only the last TAIL bytes of a stream (for error messages). */
class Tail {
  private buf = Buffer.alloc(0);
  push(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    if (this.buf.length > TAIL) this.buf = this.buf.subarray(this.buf.length - TAIL);
  }
  text(): string {
    return this.buf.toString('utf8').trim();
  }
}

export class ToolError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (${signal ? `signal ${signal}` : `exit code ${code}`})${stderr ? `: ${stderr}` : ''}`);
    this.name = 'ToolError';
  }
}

export interface Tool {
  child: ChildProcess;
  /** resolves when the process exited with status 0, rejects with ToolError otherwise */
  wait(): Promise<void>;
  /** stdout captured (when stdout was not given as a stream/fd), at most the last 16 KiB */
  stdout(): string;
  /** kill the process; wait() then resolves instead of failing */
  abandon(): void;
}

export function startTool(cmd: string, args: string[], stdio: { stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'capture' | number } = {}): Tool {
  const stdoutOpt = stdio.stdout ?? 'capture';
  const opts: StdioOptions = [stdio.stdin ?? 'ignore', typeof stdoutOpt === 'number' ? stdoutOpt : 'pipe', 'pipe'];
  // SOURCE_DATE_EPOCH is passed explicitly where it matters; mksquashfs refuses it next to -mkfs-time/-all-time
  const { SOURCE_DATE_EPOCH: _ignored, ...env } = process.env;
  const child = spawn(cmd, args, { stdio: opts, env: { ...env, LC_ALL: 'C' } });
  const err = new Tail();
  const out = new Tail();
  let abandoned = false;
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  if (stdoutOpt === 'capture') child.stdout!.on('data', (d: Buffer) => out.push(d));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => (abandoned ? resolve() : reject(e)));
    child.on('close', (code, signal) => {
      if (code === 0 || abandoned) resolve();
      else reject(new ToolError(`${cmd} ${args.join(' ')}`, code, signal, err.text()));
    });
  });
  // keep an unobserved rejection from crashing the process; callers observe it through wait()
  done.catch(() => undefined);
  return {
    child,
    wait: () => done,
    stdout: () => out.text(),
    abandon: () => {
      abandoned = true;
      child.stdin?.destroy();
      child.stdout?.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Run a tool to completion; returns its (tail of) stdout. */
export async function runTool(cmd: string, args: string[]): Promise<string> {
  const t = startTool(cmd, args);
  await t.wait();
  return t.stdout();
}

/**
 * Feed `input` into the tool's stdin (backpressure respected) and wait for it to exit.
 * If the tool fails, its error wins over the resulting EPIPE.
 */
export async function feedTool(tool: Tool, input: AsyncIterable<Buffer>): Promise<void> {
  const src = Readable.from(input, { objectMode: false, highWaterMark: 1 << 20 });
  const [fed, exited] = await Promise.allSettled([pipeline(src, tool.child.stdin!), tool.wait()]);
  if (exited.status === 'rejected') throw exited.reason;
  if (fed.status === 'rejected') throw fed.reason;
}
