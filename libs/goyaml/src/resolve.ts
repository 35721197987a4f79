/**
 * Implicit tag resolution of plain scalars, following go-yaml v4 semantics:
 * YAML 1.2-ish core types plus YAML 1.1 integer syntaxes (0x.., 0o.., 0b.., leading-0 octal, `_` separators),
 * `<<` merge keys and date/time timestamps. `yes`/`no`/`on`/`off` are *not* booleans when decoding.
 */
import { GoTime } from './values';

export const STR_TAG = '!!str';
export const INT_TAG = '!!int';
export const FLOAT_TAG = '!!float';
export const BOOL_TAG = '!!bool';
export const NULL_TAG = '!!null';
export const TIMESTAMP_TAG = '!!timestamp';
export const MERGE_TAG = '!!merge';
export const BINARY_TAG = '!!binary';
export const SEQ_TAG = '!!seq';
export const MAP_TAG = '!!map';

const LONG_PREFIX = 'tag:yaml.org,2002:';

/** `tag:yaml.org,2002:int` -> `!!int`; other tags unchanged. */
export function shortTag(tag: string): string {
  if (tag.startsWith(LONG_PREFIX)) return '!!' + tag.slice(LONG_PREFIX.length);
  return tag;
}

/** Resolved value of a scalar: string, int (bigint), float (number), bool, null, GoTime; `<<` for merge. */
export type ResolvedValue = string | bigint | number | boolean | null | GoTime;

export interface Resolved {
  tag: string;
  value: ResolvedValue;
}

/** Thrown when an explicitly tagged scalar does not match its tag (e.g. `!!int foo`). */
export class ResolveError extends Error {}

const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

const RESOLVE_MAP: Record<string, Resolved> = Object.create(null);
for (const s of ['true', 'True', 'TRUE']) RESOLVE_MAP[s] = { tag: BOOL_TAG, value: true };
for (const s of ['false', 'False', 'FALSE']) RESOLVE_MAP[s] = { tag: BOOL_TAG, value: false };
for (const s of ['', '~', 'null', 'Null', 'NULL']) RESOLVE_MAP[s] = { tag: NULL_TAG, value: null };
for (const s of ['.nan', '.NaN', '.NAN']) RESOLVE_MAP[s] = { tag: FLOAT_TAG, value: NaN };
for (const s of ['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF']) RESOLVE_MAP[s] = { tag: FLOAT_TAG, value: Infinity };
for (const s of ['-.inf', '-.Inf', '-.INF']) RESOLVE_MAP[s] = { tag: FLOAT_TAG, value: -Infinity };
for (const s of ['-0', '-0.0']) RESOLVE_MAP[s] = { tag: FLOAT_TAG, value: -0 };
RESOLVE_MAP['<<'] = { tag: MERGE_TAG, value: '<<' };

/** First-character hint: S(ign), D(igit), M(ap lookup only), '.' (float), or none. */
function hintOf(s: string): string {
  if (s === '') return 'N';
  const c = s[0];
  if (c === '+' || c === '-') return 'S';
  if (c >= '0' && c <= '9') return 'D';
  if ('yYnNtTfFoO~<'.includes(c)) return 'M';
  if (c === '.') return '.';
  return '';
}

const YAML_STYLE_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const DOT_FLOAT = /^\.[0-9]+(?:[eE][-+]?[0-9]+)?$/;

/** Go strconv.ParseUint(s, 0, 64) (no sign, no underscores). Returns null on any error. */
export function parseGoUint(s: string): bigint | null {
  if (s === '') return null;
  let base = 10;
  if (s[0] === '0') {
    const p = s.length >= 3 ? s[1].toLowerCase() : '';
    if (p === 'b') {
      base = 2;
      s = s.slice(2);
    } else if (p === 'o') {
      base = 8;
      s = s.slice(2);
    } else if (p === 'x') {
      base = 16;
      s = s.slice(2);
    } else {
      base = 8;
      s = s.slice(1);
    }
  }
  let n = 0n;
  const b = BigInt(base);
  for (const ch of s) {
    const d = parseInt(ch, 36);
    if (Number.isNaN(d) || d >= base || !/[0-9a-zA-Z]/.test(ch)) return null;
    n = n * b + BigInt(d);
    if (n > UINT64_MAX) return null;
  }
  return n;
}

/** Go strconv.ParseInt(s, 0, 64). Returns null on any error. */
export function parseGoInt(s: string): bigint | null {
  if (s === '') return null;
  let neg = false;
  if (s[0] === '+' || s[0] === '-') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  const u = parseGoUint(s);
  if (u === null) return null;
  if (!neg && u > INT64_MAX) return null;
  if (neg && u > INT64_MAX + 1n) return null;
  return neg ? -u : u;
}

/** Go strconv.ParseFloat for strings already known to be decimal floats; null on overflow. */
function parseFiniteFloat(s: string): number | null {
  const f = Number(s);
  if (!Number.isFinite(f)) return null;
  return f;
}

function daysIn(month: number, year: number): number {
  if (month === 2) return (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 29 : 28;
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

const TS_DATE = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$/;
const TS_FULL =
  /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})([Tt]| )([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,]([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?$/;

/**
 * go-yaml parseTimestamp: the formats accepted by Go's time.Parse with the layouts
 * `2006-1-2T15:4:5.999999999Z07:00`, `2006-1-2t15:4:5.999999999Z07:00`, `2006-1-2 15:4:5.999999999`, `2006-1-2`.
 */
export function parseTimestamp(s: string): GoTime | null {
  // Quick check: all date formats start with YYYY-.
  if (!/^[0-9]{4}-/.test(s)) return null;
  let m = TS_DATE.exec(s);
  if (m) {
    const [y, mo, d] = [+m[1], +m[2], +m[3]];
    if (mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y)) return null;
    return new GoTime(y, mo, d, 0, 0, 0, 0, 0);
  }
  m = TS_FULL.exec(s);
  if (!m) return null;
  const sep = m[4];
  const zone = m[9];
  // The space-separated layout has no zone; the T/t layouts require one.
  if (sep === ' ' ? zone !== undefined : zone === undefined) return null;
  const [y, mo, d, h, mi, se] = [+m[1], +m[2], +m[3], +m[5], +m[6], +m[7]];
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y)) return null;
  if (h > 23 || mi > 59 || se > 59) return null;
  let nsec = 0;
  if (m[8] !== undefined) nsec = parseInt((m[8].slice(0, 9)).padEnd(9, '0'), 10);
  let off = 0;
  if (zone !== undefined && zone !== 'Z') {
    const zh = +zone.slice(1, 3);
    const zm = +zone.slice(4, 6);
    if (zh > 24 || zm > 60) return null;
    off = (zh * 3600 + zm * 60) * (zone[0] === '-' ? -1 : 1);
  }
  return new GoTime(y, mo, d, h, mi, se, nsec, off);
}

function resolvableTag(tag: string): boolean {
  return tag === '' || tag === STR_TAG || tag === BOOL_TAG || tag === INT_TAG || tag === FLOAT_TAG || tag === NULL_TAG || tag === TIMESTAMP_TAG;
}

function resolveUntyped(tag: string, input: string): Resolved {
  const hint = hintOf(input);
  if (hint !== '' && tag !== STR_TAG && tag !== BINARY_TAG) {
    const item = RESOLVE_MAP[input];
    if (item !== undefined) return item;
    if (hint === '.') {
      if (DOT_FLOAT.test(input)) {
        const f = parseFiniteFloat(input);
        if (f !== null) return { tag: FLOAT_TAG, value: f };
      }
    } else if (hint === 'D' || hint === 'S') {
      if (tag === '' || tag === TIMESTAMP_TAG) {
        const t = parseTimestamp(input);
        if (t) return { tag: TIMESTAMP_TAG, value: t };
      }
      const plain = input.replace(/_/g, '');
      const i = parseGoInt(plain);
      if (i !== null) return { tag: INT_TAG, value: i };
      const u = parseGoUint(plain);
      if (u !== null) return { tag: INT_TAG, value: u };
      if (YAML_STYLE_FLOAT.test(plain)) {
        const f = parseFiniteFloat(plain);
        if (f !== null) return { tag: FLOAT_TAG, value: f };
      }
    }
  }
  return { tag: STR_TAG, value: input };
}

/**
 * go-yaml `resolve(tag, in)`: with tag "" (plain, untagged scalar) it returns the implicit type; with an explicit
 * standard tag it checks the value fits (throwing ResolveError like go-yaml's
 * "cannot construct !!str `foo` as a !!int"); non-standard tags are returned unchanged with the raw string.
 */
export function resolveScalar(value: string, tag = ''): Resolved {
  tag = shortTag(tag);
  if (!resolvableTag(tag)) return { tag, value };
  const r = resolveUntyped(tag, value);
  if (tag === '' || tag === r.tag || tag === STR_TAG || tag === BINARY_TAG) return r;
  if (tag === FLOAT_TAG && r.tag === INT_TAG) return { tag: FLOAT_TAG, value: Number(r.value as bigint) };
  throw new ResolveError(`cannot construct ${r.tag} \`${value}\` as a ${tag}`);
}

/** Tag a plain (unquoted, untagged) scalar with this text would get when read back. */
export function implicitTag(value: string): string {
  return resolveUntyped('', value).tag;
}
