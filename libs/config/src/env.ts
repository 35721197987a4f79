/**
 * Configuration is read from the environment once, at start-up, and validated as a whole: every problem is
 * collected and reported in one readable error, so an operator fixes them all in one go.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** A small reader that records problems instead of throwing, then throws them all from done(). */
export class EnvReader {
  private readonly problems: string[] = [];
  constructor(private readonly env: Env = process.env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, def: string): string;
  string(name: string): string | undefined;
  string(name: string, def?: string): string | undefined {
    return this.raw(name) ?? def;
  }

  required(name: string, why = ''): string {
    const v = this.raw(name);
    if (v === undefined) {
      this.problems.push(`${name} is required${why ? ` (${why})` : ''}`);
      return '';
    }
    return v;
  }

  int(name: string, def: number, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?\d+$/.test(v)) {
      this.problems.push(`${name} must be an integer, got ${JSON.stringify(v)}`);
      return def;
    }
    const n = Number(v);
    if (n < min || n > max) this.problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  port(name: string, def: number): number {
    return this.int(name, def, 0, 65535);
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    this.problems.push(`${name} must be true or false, got ${JSON.stringify(v)}`);
    return def;
  }

  /** Durations like 30s, 15m, 1h, 500ms, or a plain number of seconds. Returns milliseconds. */
  duration(name: string, defMs: number): number {
    const v = this.raw(name);
    if (v === undefined) return defMs;
    const ms = parseDuration(v);
    if (ms === undefined) {
      this.problems.push(`${name} must be a duration such as 30s, 15m or 1h, got ${JSON.stringify(v)}`);
      return defMs;
    }
    return ms;
  }

  /**
   * Byte sizes like 50GiB, 8 GiB, 500MB, 1.5TiB or a plain number of bytes (units: B, KB/MB/GB/TB = powers of 1000,
   * KiB/MiB/GiB/TiB = powers of 1024, case-insensitive). `def` is returned when unset.
   */
  bytes(name: string, def: number): number;
  bytes(name: string, def: number | undefined): number | undefined;
  bytes(name: string, def: number | undefined): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return def;
    const n = parseByteSize(v);
    if (n === undefined) {
      this.problems.push(`${name} must be a byte size such as 8GiB, 500MB or 1048576, got ${JSON.stringify(v)}`);
      return def;
    }
    return n;
  }

  /**
   * A rate such as `60/min`, `10/s`, `1000/hour` (count per period); `0` or `off` disables it (undefined).
   * The count is also the burst: a client may spend it at once, then one more per period/count.
   */
  rate(name: string, def: Rate | undefined): Rate | undefined {
    const v = this.raw(name);
    if (v === undefined) return def;
    const parsed = parseRate(v);
    if (parsed === null) {
      this.problems.push(`${name} must be a rate such as 60/min, 10/s or 1000/hour (0 or off disables it), got ${JSON.stringify(v)}`);
      return def;
    }
    return parsed;
  }

  list(name: string, def: string[] = []): string[] {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (v.startsWith('[')) {
      try {
        const parsed = JSON.parse(v);
        if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return parsed;
      } catch {
        /* reported below */
      }
      this.problems.push(`${name} must be a comma-separated list or a JSON array of strings`);
      return def;
    }
    return v.split(',').map((s) => s.trim()).filter(Boolean);
  }

  url(name: string, def?: string): string | undefined {
    const v = this.raw(name) ?? def;
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      if (!u.host) throw new Error('host');
      return v;
    } catch {
      this.problems.push(`${name} must be an http(s) URL with a host, got ${JSON.stringify(v)}`);
      return def;
    }
  }

  oneOf<T extends string>(name: string, values: readonly T[], def: T): T {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!(values as readonly string[]).includes(v)) {
      this.problems.push(`${name} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v as T;
  }

  problem(message: string): void {
    this.problems.push(message);
  }

  done(): void {
    if (this.problems.length) throw new ConfigError(this.problems);
  }
}

export function parseDuration(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!;
  return Math.round(n * mult);
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** `50GiB`, `8 GiB`, `500MB`, `1048576` → bytes (whole); undefined when malformed or beyond a safe integer. */
export function parseByteSize(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
  if (!m) return undefined;
  const mult = BYTE_UNITS[m[2].toLowerCase()];
  if (mult === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * mult);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `count` events per `periodMs`. */
export interface Rate {
  count: number;
  periodMs: number;
}

const RATE_PERIODS: Record<string, number> = { s: 1000, sec: 1000, second: 1000, m: 60_000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000, d: 86_400_000, day: 86_400_000 };

/** `60/min` → {count: 60, periodMs: 60000}; `0`/`off` → undefined (no limit); anything else → null. */
export function parseRate(v: string): Rate | undefined | null {
  const text = v.trim().toLowerCase();
  if (text === '0' || text === 'off') return undefined;
  const m = /^(\d+)\s*\/\s*([a-z]+)$/.exec(text);
  if (!m) return null;
  const count = Number(m[1]);
  const periodMs = RATE_PERIODS[m[2]];
  if (!periodMs || !Number.isSafeInteger(count)) return null;
  return count === 0 ? undefined : { count, periodMs };
}
