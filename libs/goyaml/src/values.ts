/**
 * Value wrappers for Go types that plain JavaScript values cannot express unambiguously.
 *
 * The emitter maps JS values to Go-like values as follows (see index.ts for the full table):
 *   string -> string, integer number / bigint -> int, non-integer number (and NaN, ±Infinity, -0) -> float64,
 *   boolean -> bool, null -> nil, Array -> slice, plain object -> struct (insertion order),
 *   Map -> Go map (keys sorted like go-yaml sorts map keys).
 * The classes below cover the remaining cases.
 */

/** A Go float64. Use it for integral floats (e.g. 1e6 is emitted `1e+06`, not `1000000`). */
export class GoFloat {
  constructor(public readonly value: number) {}
}

export function goFloat(value: number): GoFloat {
  return new GoFloat(value);
}

/**
 * A Go time.Time. Holds broken-down wall-clock fields plus a zone offset in seconds
 * (0 = UTC). Marshals as RFC 3339 with nanoseconds (Go's time.RFC3339Nano layout).
 */
export class GoTime {
  constructor(
    public readonly year: number,
    public readonly month: number,
    public readonly day: number,
    public readonly hour: number,
    public readonly minute: number,
    public readonly second: number,
    public readonly nanosecond: number,
    public readonly offsetSeconds: number,
  ) {}

  static fromDate(d: Date): GoTime {
    return new GoTime(
      d.getUTCFullYear(),
      d.getUTCMonth() + 1,
      d.getUTCDate(),
      d.getUTCHours(),
      d.getUTCMinutes(),
      d.getUTCSeconds(),
      d.getUTCMilliseconds() * 1e6,
      0,
    );
  }

  /** Go `t.Format(time.RFC3339Nano)`. */
  toString(): string {
    const p = (n: number, w: number) => String(n).padStart(w, '0');
    let s = `${p(this.year, 4)}-${p(this.month, 2)}-${p(this.day, 2)}T${p(this.hour, 2)}:${p(this.minute, 2)}:${p(this.second, 2)}`;
    if (this.nanosecond !== 0) {
      s += '.' + p(this.nanosecond, 9).replace(/0+$/, '');
    }
    if (this.offsetSeconds === 0) {
      s += 'Z';
    } else {
      const off = Math.abs(this.offsetSeconds);
      s += (this.offsetSeconds < 0 ? '-' : '+') + p(Math.floor(off / 3600), 2) + ':' + p(Math.floor((off % 3600) / 60), 2);
    }
    return s;
  }
}

/**
 * A Go string holding arbitrary bytes. Valid UTF-8 marshals as an ordinary string; anything else is
 * emitted the way go-yaml does it: `!!binary` + base64.
 */
export class GoBytesString {
  constructor(public readonly bytes: Uint8Array) {}
}

/**
 * Go `strconv.FormatFloat(f, 'g', -1, 64)` followed by go-yaml's special-value mapping
 * (+Inf -> .inf, -Inf -> -.inf, NaN -> .nan).
 */
export function formatGoFloat(f: number): string {
  if (Number.isNaN(f)) return '.nan';
  if (f === Infinity) return '.inf';
  if (f === -Infinity) return '-.inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const neg = f < 0;
  // toExponential() without an argument yields the shortest round-trip digits, like Go's shortest mode.
  const [mant, expStr] = Math.abs(f).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = parseInt(expStr, 10);
  let out: string;
  // %g in shortest mode switches to %e when exp < -4 || exp >= 6 (eprec is forced to 6).
  if (exp < -4 || exp >= 6) {
    out = digits[0];
    if (digits.length > 1) out += '.' + digits.slice(1);
    const ae = Math.abs(exp);
    out += 'e' + (exp < 0 ? '-' : '+') + (ae < 10 ? '0' + ae : String(ae));
  } else if (exp < 0) {
    out = '0.' + '0'.repeat(-exp - 1) + digits;
  } else if (digits.length <= exp + 1) {
    out = digits + '0'.repeat(exp + 1 - digits.length);
  } else {
    out = digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1);
  }
  return neg ? '-' + out : out;
}
