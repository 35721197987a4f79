/** Small helpers to run the external tools (qemu-img, xz, zstd) with streamed stdin/stdout and useful errors. */
import { ChildProcess, spawn } from 'node:child_process';
import { Writable } from 'node:stream';

const STDERR_TAIL = 8192;

export interface Tool {
  child: ChildProcess;
  /** Resolves when the process exited with status 0; rejects with the command and its stderr tail otherwise. */
  done: Promise<void>;
}

/** Start `cmd args`; stderr is kept (tail only) for the error message. */
export function startTool(cmd: string, args: string[], opts: { stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' } = {}): Tool {
  const child = spawn(cmd, args, { stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
  // stdin errors (EPIPE when the tool dies early) are reported through `done`.
  child.stdin?.on('error', () => undefined);
  return { child, done };
}

/** Run a tool to completion (no stdin/stdout). */
export async function runTool(cmd: string, args: string[]): Promise<void> {
  await startTool(cmd, args).done;
}

/** Write with backpressure: resolves once `w` accepted the data (waits for 'drain' when its buffer is full). */
export function writeTo(w: Writable, b: Buffer): Promise<void> {
  if (w.write(b)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      w.off('error', onError);
      w.off('close', onClose);
      resolve();
    };
    const onError = (e: Error) => {
      w.off('drain', onDrain);
      w.off('close', onClose);
      reject(e);
    };
    const onClose = () => {
      w.off('drain', onDrain);
      w.off('error', onError);
      reject(new Error('stream closed before drain'));
    };
    w.once('drain', onDrain);
    w.once('error', onError);
    w.once('close', onClose);
  });
}

/** End a writable and wait until it has flushed. */
export function endWritable(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (w.writableFinished || w.destroyed) return resolve();
    w.once('finish', () => resolve());
    w.once('close', () => resolve());
    w.end();
  });
}
