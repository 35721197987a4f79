/**
 * Progress on a terminal, without a dependency: a block of lines on stderr redrawn in place (carriage return, cursor
 * up, clear line), at most every 100 ms, each line fitted to the terminal's width so nothing wraps (a line is a label
 * and its figures: a long label is shortened first, so the figures stay). When stderr is not a terminal nothing is
 * drawn at all (logs and pipes get only the results).
 */
import type { Build } from '@factory/client';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const REDRAW_MS = 100;

/** A progress line: what it is about, and where it stands. */
export interface ProgressLine {
  label: string;
  status: string;
}

export class ProgressLines {
  private drawn = 0;
  private lastDraw = 0;
  private latest: ProgressLine[] = [];

  constructor(
    private readonly stream: ProgressStream,
    readonly enabled: boolean,
  ) {}

  /** Shows these lines (throttled unless `force`). */
  update(lines: ProgressLine[], force = false): void {
    if (!this.enabled) return;
    this.latest = lines;
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.draw();
  }

  /** Draws the last lines once more and leaves them on screen. */
  finish(): void {
    if (!this.enabled || this.drawn === 0) return;
    this.draw();
    this.stream.write('\n');
    this.drawn = 0;
  }

  private draw(): void {
    // a pseudo-terminal without a size reports 0 columns
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    let out = '\r';
    if (this.drawn > 1) out += `\x1b[${this.drawn - 1}A`;
    out += this.latest.map((l) => `\x1b[2K${fitToWidth(l, width)}`).join('\n');
    // lines drawn before but not now are cleared
    for (let i = this.latest.length; i < this.drawn; i++) out += '\n\x1b[2K';
    if (this.drawn > this.latest.length) out += `\x1b[${this.drawn - this.latest.length}A`;
    this.stream.write(out);
    this.drawn = Math.max(this.latest.length, 1);
  }
}

/** `label  status` in at most `width` characters: the label shortened (…) down to 8 characters, then the end cut. */
export function fitToWidth(line: ProgressLine, width: number): string {
  const whole = `${line.label}  ${line.status}`;
  if (whole.length <= width) return whole;
  const room = width - line.status.length - 2;
  const label = room >= 8 ? `${line.label.slice(0, room - 1)}…` : line.label.slice(0, 8);
  return `${label}  ${line.status}`.slice(0, width);
}

export function bar(fraction: number | undefined, width = 16): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return `[${'?'.repeat(width)}]`;
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** `27.4/55.3 MiB`, or `900.0 KiB/1.2 MiB` when the units differ. */
function amountOf(received: number, total: number): string {
  const [r, t] = [formatBytes(received), formatBytes(total)];
  const unit = / \S+$/.exec(t)![0];
  return r.endsWith(unit) ? `${r.slice(0, -unit.length)}/${t}` : `${r}/${t}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Transfer speed over the last few seconds (bytes/s), for a rate and an ETA that follow changes. Times come from a
 * monotonic clock with sub-millisecond resolution: a small asset can arrive within one millisecond of its first byte,
 * and a whole-millisecond clock would then have no speed to show for it.
 */
export class SpeedMeter {
  private readonly samples: { t: number; bytes: number }[] = [];
  private start: { t: number; bytes: number } | undefined;

  constructor(private readonly windowMs = 5000) {}

  record(bytes: number, now = performance.now()): void {
    this.start ??= { t: now, bytes };
    this.samples.push({ t: now, bytes });
    while (this.samples.length > 2 && now - this.samples[1].t > this.windowMs) this.samples.shift();
  }

  bytesPerSecond(): number | undefined {
    if (this.samples.length < 2) return undefined;
    return rate(this.samples[0], this.samples[this.samples.length - 1]);
  }

  /** The speed over the whole transfer, for its final line (what curl and wget print when they are done). */
  averageBytesPerSecond(): number | undefined {
    const last = this.samples[this.samples.length - 1];
    return this.start && last ? rate(this.start, last) : undefined;
  }
}

function rate(first: { t: number; bytes: number }, last: { t: number; bytes: number }): number | undefined {
  const ms = last.t - first.t;
  return ms > 0 ? ((last.bytes - first.bytes) * 1000) / ms : undefined;
}

/** One line for a build: where it is now. */
export function buildLine(label: string, build: Build): ProgressLine {
  const pct = build.state === 'done' ? 100 : build.percent;
  const head = `${bar(pct === undefined ? (build.state === 'queued' ? 0 : undefined) : pct / 100)} ${String(pct ?? 0).padStart(3)}%`;
  return { label, status: `${head}  ${buildStatus(build)}` };
}

function buildStatus(build: Build): string {
  switch (build.state) {
    case 'queued':
      return `queued${build.queuePosition !== undefined ? ` (position ${build.queuePosition + 1})` : ''}`;
    case 'running':
      return `${build.stage ?? 'running'}${build.bytes !== undefined ? `  ${formatBytes(build.bytes)}` : ''}`;
    case 'done':
      return `done${build.size !== undefined ? `  ${formatBytes(build.size)}` : ''}`;
    case 'failed':
      return `failed: ${build.error?.message ?? 'unknown error'}`;
  }
}

/** One line for a download: bytes so far, speed and time left. */
export function downloadLine(label: string, received: number, total: number | undefined, bytesPerSecond: number | undefined): ProgressLine {
  const fraction = total ? received / total : undefined;
  const pct = fraction === undefined ? '   ?' : `${String(Math.floor(fraction * 100)).padStart(3)}%`;
  const amount = total !== undefined ? amountOf(received, total) : formatBytes(received);
  const speed = bytesPerSecond !== undefined ? `${formatBytes(bytesPerSecond)}/s` : '-- /s';
  const eta = total !== undefined && bytesPerSecond ? `ETA ${formatDuration((total - received) / bytesPerSecond)}` : 'ETA --';
  return { label, status: `${bar(fraction)} ${pct}  ${amount}  ${speed}  ${eta}` };
}
