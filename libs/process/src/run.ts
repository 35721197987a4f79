/**
 * The one way to run a host tool. Every tool runs
 *   - without a shell, in its own process group (spawned detached), so a timeout, an output overflow or an abandon
 *     stops the tool together with everything it started; leftovers of the group are killed when the tool exits,
 *     and live groups are killed when this process exits;
 *   - in a clean environment (see env.ts) unless told otherwise;
 *   - with bounded output capture: the last `maxOutputBytes` of each stream are kept and the result says when
 *     more was written (or, with `onOverflow: 'fail'`, the tool is stopped and the run fails);
 * and a failure is a ProcessError naming the command line, the exit code or signal and the tail of stderr.
 *
 * `run` runs a tool to completion; `start` is the streaming form for pipelines (stdin/stdout as streams, `done`
 * for the exit) with the same rules.
 */
import { ChildProcess, spawn, StdioOptions } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvOptions, toolEnv } from './env';

export type FailureReason = 'exit' | 'signal' | 'timeout' | 'output' | 'spawn';

/** Default bound of each captured stream. */
export const DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024;
/** Default time between SIGTERM and SIGKILL when a timeout stops a tool. */
export const DEFAULT_KILL_GRACE_MS = 2000;
/** How much of stderr (or stdout, when stderr is empty) an error message quotes. */
const MESSAGE_TAIL = 4000;
/** After the tool exited, how long its output streams may stay open (a descriptor leaked to a process outside
 * the group) before they are closed. */
const CLOSE_GUARD_MS = 2000;

export interface ProcessOptions extends EnvOptions {
  cwd?: string;
  /** Wall-clock limit; when it expires the whole process group gets SIGTERM, then SIGKILL after `killGraceMs`. */
  timeoutMs?: number;
  /** Default 2000 ms; 0 sends SIGKILL at once. */
  killGraceMs?: number;
  /** Run as this user/group (needs root to switch). */
  uid?: number;
  gid?: number;
  /** Bound of each captured stream (default 4 MiB): the tail is kept. */
  maxOutputBytes?: number;
  /** 'keep-tail' (default): keep the last bytes and say so; 'fail': stop the tool and fail with reason 'output'. */
  onOverflow?: 'keep-tail' | 'fail';
}

export class ProcessError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly reason: FailureReason,
    /** exit status; null when killed by a signal or never started */
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    /** tail of stderr */
    readonly stderr: string,
    /** tail of stdout, when it was captured */
    readonly stdout: string,
    /** what happened, e.g. "failed (exit code 3)", "timed out after 500 ms", "stdout exceeded 1024 bytes" */
    readonly detail: string,
  ) {
    const tail = (stderr.trim() || stdout.trim()).slice(-MESSAGE_TAIL);
    super(`${[command, ...args].join(' ')} ${detail}${tail ? `: ${tail}` : ''}`);
    this.name = 'ProcessError';
  }
}

/** Keeps the last `limit` bytes of a stream and counts everything. */
class Tail {
  private chunks: Buffer[] = [];
  private held = 0;
  total = 0;
  constructor(readonly limit: number) {}
  push(d: Buffer): void {
    this.total += d.length;
    this.chunks.push(d);
    this.held += d.length;
    while (this.chunks.length > 1 && this.held - this.chunks[0].length >= this.limit) this.held -= this.chunks.shift()!.length;
  }
  get truncated(): boolean {
    return this.total > this.limit;
  }
  bytes(): Buffer {
    const b = Buffer.concat(this.chunks);
    return b.length > this.limit ? b.subarray(b.length - this.limit) : b;
  }
  text(): string {
    return this.bytes().toString('utf8');
  }
}

// ---------------------------------------------------------------------------------------------- process groups

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone
  }
}

function trackGroup(pgid: number): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // detached tools do not get the terminal's signals: take them down when we go
    process.once('exit', () => {
      for (const g of liveGroups) signalGroup(g, 'SIGKILL');
    });
  }
  liveGroups.add(pgid);
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  failure?: { reason: FailureReason; what: string };
  abandoned: boolean;
}

interface Supervision {
  child: ChildProcess;
  outcome: Promise<Outcome>;
  fail(reason: FailureReason, what: string, graceMs?: number): void;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM to the group, SIGKILL after `graceMs`; the tool counts as stopped on purpose, not as failed. */
  terminate(graceMs: number): void;
  abandon(): void;
  /** Keep the tail of `stream` in a new Tail of `o.maxOutputBytes`, failing the run on overflow when asked to. */
  capture(stream: Readable, name: string): Tail;
}

/** Spawns `command` in its own process group and watches it. Throws a ProcessError when spawn refuses outright. */
function supervise(command: string, args: readonly string[], o: ProcessOptions, stdio: StdioOptions, owned: (c: ChildProcess) => Array<Readable | null>): Supervision {
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: o.cwd,
      env: toolEnv(o),
      stdio,
      detached: true, // new session and process group: the whole tree can be signalled at once
      ...(o.uid !== undefined ? { uid: o.uid } : {}),
      ...(o.gid !== undefined ? { gid: o.gid } : {}),
    });
  } catch (e) {
    throw new ProcessError(command, args, 'spawn', null, null, '', '', `could not be started: ${(e as Error).message}`);
  }
  const pgid = child.pid;
  if (pgid) trackGroup(pgid);
  let failure: Outcome['failure'];
  let abandoned = false;
  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;

  const stop = (graceMs: number) => {
    if (!pgid || exited) return; // once the leader is reaped, its group was killed and the id may be reused
    if (graceMs <= 0) return signalGroup(pgid, 'SIGKILL');
    signalGroup(pgid, 'SIGTERM');
    killTimer ??= setTimeout(() => exited || signalGroup(pgid, 'SIGKILL'), graceMs);
  };
  const fail = (reason: FailureReason, what: string, graceMs = 0) => {
    if (failure || abandoned) return;
    failure = { reason, what };
    stop(graceMs);
  };
  const timeoutTimer = o.timeoutMs
    ? setTimeout(() => fail('timeout', `timed out after ${o.timeoutMs} ms`, o.killGraceMs ?? DEFAULT_KILL_GRACE_MS), o.timeoutMs)
    : undefined;

  const outcome = new Promise<Outcome>((resolve) => {
    let code: number | null = null;
    let signal: NodeJS.Signals | null = null;
    let closeGuard: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      for (const t of [timeoutTimer, killTimer, closeGuard]) if (t) clearTimeout(t);
      if (pgid) liveGroups.delete(pgid);
      resolve({ code, signal, failure, abandoned });
    };
    child.on('error', (e) => {
      if (!failure && !abandoned) failure = { reason: 'spawn', what: `could not be started: ${e.message}` };
      if (child.pid === undefined) finish();
    });
    child.on('exit', (c, s) => {
      exited = true;
      code = c;
      signal = s;
      // leftovers of the group (background children) die with the leader
      if (pgid) signalGroup(pgid, 'SIGKILL');
      closeGuard = setTimeout(() => {
        for (const stream of owned(child)) stream?.destroy();
      }, CLOSE_GUARD_MS);
    });
    child.on('close', finish);
  });

  return {
    child,
    outcome,
    fail,
    kill: (signal) => {
      if (pgid && !exited) signalGroup(pgid, signal);
    },
    terminate: (graceMs) => {
      if (failure || abandoned) return;
      abandoned = true;
      stop(graceMs);
    },
    capture: (stream, name) => {
      const limit = o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
      const t = new Tail(limit);
      stream.on('data', (d: Buffer) => {
        t.push(d);
        if (t.truncated && o.onOverflow === 'fail') fail('output', `${name} exceeded ${limit} bytes`);
      });
      return t;
    },
    abandon: () => {
      if (failure) return;
      abandoned = true;
      child.stdin?.destroy();
      child.stdout?.destroy();
      stop(0);
    },
  };
}

function verdict(command: string, args: readonly string[], r: Outcome, allowFailure: boolean, stderr: Tail, stdout?: Tail): ProcessError | undefined {
  if (r.abandoned) return undefined;
  const err = (reason: FailureReason, what: string) =>
    new ProcessError(command, args, reason, r.code, r.signal, stderr.text(), stdout?.text() ?? '', what);
  if (r.failure) return err(r.failure.reason, r.failure.what);
  if (r.code === 0 || allowFailure) return undefined;
  return r.signal ? err('signal', `failed (killed by ${r.signal})`) : err('exit', `failed (exit code ${r.code})`);
}

// ------------------------------------------------------------------------------------------------------ run

export interface RunOptions extends ProcessOptions {
  /** Written to stdin, which is then closed (default: stdin is /dev/null). */
  input?: Buffer | string;
  /** Resolve on a non-zero exit or a fatal signal instead of rejecting (timeouts, overflow under 'fail' and
   * spawn failures still reject). */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout, at most `maxOutputBytes` (the tail) */
  stdout: Buffer;
  /** tail of stderr, decoded as UTF-8 */
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** Run `command args` to completion. */
export function run(command: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    const s = supervise(command, args, o, [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], (c) => [c.stdout, c.stderr]);
    const out = s.capture(s.child.stdout!, 'stdout');
    const err = s.capture(s.child.stderr!, 'stderr');
    if (o.input !== undefined) {
      s.child.stdin!.on('error', () => undefined); // EPIPE when the tool does not read all of it
      s.child.stdin!.end(o.input);
    }
    void s.outcome.then((r) => {
      const e = verdict(command, args, r, o.allowFailure ?? false, err, out);
      if (e) return reject(e);
      resolve({ code: r.code, signal: r.signal, stdout: out.bytes(), stderr: err.text(), stdoutTruncated: out.truncated, stderrTruncated: err.truncated });
    });
  });
}

// ---------------------------------------------------------------------------------------------------- start

export interface StartOptions extends ProcessOptions {
  /** 'pipe': `stdin` is a stream to write to; default 'ignore' (/dev/null). */
  stdin?: 'pipe' | 'ignore';
  /** 'pipe': `stdout` is a stream to read; 'capture': kept (bounded) for `capturedStdout()`; a number: that file
   * descriptor; default 'ignore'. */
  stdout?: 'pipe' | 'capture' | 'ignore' | number;
}

export interface StartedProcess {
  readonly child: ChildProcess;
  /** the tool's stdin, when started with stdin 'pipe' (write errors such as EPIPE are reported through `done`) */
  readonly stdin: Writable | null;
  /** the tool's stdout, when started with stdout 'pipe' */
  readonly stdout: Readable | null;
  /** Resolves when the tool exited with status 0 (or was stopped or abandoned); rejects with a ProcessError otherwise. */
  readonly done: Promise<void>;
  /** stdout kept so far (stdout 'capture'), at most `maxOutputBytes` */
  capturedStdout(): string;
  /** stderr kept so far, at most `maxOutputBytes` */
  stderrTail(): string;
  /** Signal the tool's whole process group (default SIGKILL); `done` settles by the exit as usual. */
  kill(signal?: NodeJS.Signals): void;
  /** End a tool that runs until told (a server): SIGTERM to its group, SIGKILL after `graceMs` (default 2000);
   * resolves once it exited. `done` then resolves: a stopped tool did not fail. */
  stop(graceMs?: number): Promise<void>;
  /** Stop the tool and its group now (SIGKILL) and close its stdin/stdout; `done` then resolves instead of failing. */
  abandon(): void;
}

/** Start `command args` with streamed stdin/stdout. */
export function start(command: string, args: readonly string[], o: StartOptions = {}): StartedProcess {
  const stdoutMode = o.stdout ?? 'ignore';
  const capture = stdoutMode === 'capture';
  const s = supervise(
    command,
    args,
    o,
    [o.stdin ?? 'ignore', stdoutMode === 'capture' ? 'pipe' : stdoutMode, 'pipe'],
    (c) => [c.stderr, capture ? c.stdout : null],
  );
  const err = s.capture(s.child.stderr!, 'stderr');
  const out = capture ? s.capture(s.child.stdout!, 'stdout') : undefined;
  s.child.stdin?.on('error', () => undefined);
  const done = s.outcome.then((r) => {
    const e = verdict(command, args, r, false, err, out);
    if (e) throw e;
  });
  // callers observe failures through `done`; an unobserved one must not crash the process
  done.catch(() => undefined);
  return {
    child: s.child,
    stdin: s.child.stdin,
    stdout: capture ? null : s.child.stdout,
    done,
    capturedStdout: () => out?.text() ?? '',
    stderrTail: () => err.text(),
    kill: (signal = 'SIGKILL') => s.kill(signal),
    stop: async (graceMs = DEFAULT_KILL_GRACE_MS) => {
      s.terminate(graceMs);
      await done.catch(() => undefined);
    },
    abandon: s.abandon,
  };
}

/**
 * Feed `input` into a started tool's stdin (backpressure respected) and wait for the tool to exit. When the tool
 * fails, its error wins over the EPIPE that its stdin then reports.
 */
export async function feed(p: StartedProcess, input: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
  if (!p.stdin) throw new Error('feed: the process was not started with stdin "pipe"');
  const src = Readable.from(input, { objectMode: false, highWaterMark: 1 << 20 });
  const [fed, exited] = await Promise.allSettled([pipeline(src, p.stdin), p.done]);
  if (exited.status === 'rejected') throw exited.reason;
  if (fed.status === 'rejected') throw fed.reason;
}
