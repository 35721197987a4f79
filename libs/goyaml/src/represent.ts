/**
 * Conversion of JS values into the emitter's node tree, mirroring go-yaml v4's representer + desolver
 * (which decide tags and the *requested* scalar style; the emitter may still downgrade it).
 */
import { codePoints, hasLoneSurrogate, isGoSpace } from './chars';
import type { ScalarStyle, YNode } from './emitter';
import { STR_TAG, TIMESTAMP_TAG, implicitTag } from './resolve';
import { GoBytesString, GoFloat, GoTime, formatGoFloat } from './values';

const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;

/** YAML 1.1 base-60 float syntax (e.g. `1:20`) — still quoted on output for compatibility. */
export function isBase60Float(s: string): boolean {
  if (s === '') return false;
  const c = s[0];
  if (!(c === '+' || c === '-' || (c >= '0' && c <= '9')) || !s.includes(':')) return false;
  return BASE60_FLOAT.test(s);
}

const OLD_BOOLS = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF']);

/** YAML 1.1 boolean spellings — quoted on output so YAML 1.1 parsers read them back as strings. */
export function isOldBool(s: string): boolean {
  return OLD_BOOLS.has(s);
}

function shouldUseLiteralStyle(s: string): boolean {
  if (!s.includes('\n') || Buffer.byteLength(s, 'utf8') < 2) return false;
  return codePoints(s).some((cp) => !isGoSpace(cp));
}

/**
 * The style go-yaml's representer and desolver request for a Go string (before the emitter's own
 * fallbacks): literal for multi-line text, single quotes for YAML 1.1 compatibility spellings,
 * double quotes when a plain scalar would resolve to a non-string type, plain otherwise.
 */
export function requestedStringStyle(s: string): ScalarStyle {
  let style: ScalarStyle;
  if (s.includes('\n')) {
    style = shouldUseLiteralStyle(s) ? 'literal' : 'double';
  } else if (isBase60Float(s) || isOldBool(s) || s === '<<') {
    style = 'single';
  } else {
    style = 'plain';
  }
  if (style === 'plain' && implicitTag(s) !== STR_TAG) style = 'double';
  return style;
}

// --- Go map key ordering -----------------------------------------------------------------------------------------

// reflect.Kind numbers, used for ordering keys of different types.
const KIND_BOOL = 1;
const KIND_INT = 2;
const KIND_UINT64 = 11;
const KIND_FLOAT64 = 14;
const KIND_INTERFACE = 20;
const KIND_STRING = 24;
const KIND_STRUCT = 25;
const INT64_MAX = (1n << 63n) - 1n;

function keyKind(k: unknown): number {
  if (typeof k === 'string') return KIND_STRING;
  if (typeof k === 'boolean') return KIND_BOOL;
  if (typeof k === 'bigint') return k > INT64_MAX ? KIND_UINT64 : KIND_INT;
  if (typeof k === 'number') return isGoInt(k) ? KIND_INT : KIND_FLOAT64;
  if (k instanceof GoFloat) return KIND_FLOAT64;
  if (k === null || k === undefined) return KIND_INTERFACE;
  if (k instanceof GoBytesString) return KIND_STRING;
  return KIND_STRUCT;
}

function keyFloat(k: unknown): number | undefined {
  if (typeof k === 'number') return k;
  if (typeof k === 'bigint') return Number(k);
  if (typeof k === 'boolean') return k ? 1 : 0;
  if (k instanceof GoFloat) return k.value;
  return undefined;
}

const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;
const isLetter = (cp: number) => LETTER.test(String.fromCodePoint(cp));
const isDigit = (cp: number) => DIGIT.test(String.fromCodePoint(cp));

function keyString(k: unknown): string {
  if (k instanceof GoBytesString) return Buffer.from(k.bytes).toString('latin1');
  return k as string;
}

/** go-yaml's keyList.Less: numbers numerically, strings in "natural" order (digit runs compared as numbers). */
export function goKeyLess(a: unknown, b: unknown): boolean {
  const ak = keyKind(a);
  const bk = keyKind(b);
  const af = keyFloat(a);
  const bf = keyFloat(b);
  if (af !== undefined && bf !== undefined) {
    if (af !== bf) return af < bf;
    if (ak !== bk) return ak < bk;
    if (typeof a === 'bigint' && typeof b === 'bigint') return a < b;
    if (typeof a === 'boolean') return !a && b === true;
    return false;
  }
  if (ak !== KIND_STRING || bk !== KIND_STRING) return ak < bk;
  const ar = codePoints(keyString(a));
  const br = codePoints(keyString(b));
  let digits = false;
  for (let i = 0; i < ar.length && i < br.length; i++) {
    if (ar[i] === br[i]) {
      digits = isDigit(ar[i]);
      continue;
    }
    const al = isLetter(ar[i]);
    const bl = isLetter(br[i]);
    if (al && bl) return ar[i] < br[i];
    if (al || bl) return digits ? al : bl;
    let an = 0n;
    let bn = 0n;
    if (ar[i] === 0x30 || br[i] === 0x30) {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]); j--) {
        if (ar[j] !== 0x30) {
          an = 1n;
          bn = 1n;
          break;
        }
      }
    }
    let ai = i;
    for (; ai < ar.length && isDigit(ar[ai]); ai++) an = BigInt.asIntN(64, an * 10n + BigInt(ar[ai] - 0x30));
    let bi = i;
    for (; bi < br.length && isDigit(br[bi]); bi++) bn = BigInt.asIntN(64, bn * 10n + BigInt(br[bi] - 0x30));
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ar[i] < br[i];
  }
  return ar.length < br.length;
}

/** Sort keys the way go-yaml orders the keys of a Go map. */
export function sortGoMapKeys<K>(keys: K[]): K[] {
  return [...keys].sort((a, b) => (goKeyLess(a, b) ? -1 : goKeyLess(b, a) ? 1 : 0));
}

// --- representer -------------------------------------------------------------------------------------------------

function isGoInt(n: number): boolean {
  return Number.isInteger(n) && !Object.is(n, -0);
}

/** Go encodeBase64: 70-column lines, each followed by a newline when there is more than one line. */
function encodeBase64(bytes: Uint8Array): string {
  const enc = Buffer.from(bytes).toString('base64');
  const lines = Math.floor(enc.length / 70) + 1;
  if (lines <= 1) return enc;
  let out = '';
  for (let i = 0; i < enc.length; i += 70) out += enc.slice(i, i + 70) + '\n';
  return out;
}

/** Go's utf8.Valid. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function plain(value: string): YNode {
  return { kind: 'scalar', value, style: 'plain' };
}

export function representString(s: string): YNode {
  if (hasLoneSurrogate(s)) throw new TypeError('goyaml: string contains an unpaired surrogate');
  return { kind: 'scalar', value: s, style: requestedStringStyle(s) };
}

function representTime(t: GoTime): YNode {
  const s = t.toString();
  // A timestamp that would not read back as one keeps its tag.
  return implicitTag(s) === TIMESTAMP_TAG ? plain(s) : { kind: 'scalar', value: s, style: 'plain', tag: '!!timestamp' };
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Convert a JS value to the node tree go-yaml would build for the corresponding Go value. */
export function represent(value: unknown, seen: Set<object> = new Set()): YNode {
  if (value === null || value === undefined) return plain('null');
  switch (typeof value) {
    case 'string':
      return representString(value);
    case 'boolean':
      return plain(value ? 'true' : 'false');
    case 'bigint':
      return plain(value.toString());
    case 'number':
      return plain(isGoInt(value) ? BigInt(value).toString() : formatGoFloat(value));
    case 'object':
      break;
    default:
      throw new TypeError(`goyaml: cannot represent value of type ${typeof value}`);
  }
  if (value instanceof GoFloat) return plain(formatGoFloat(value.value));
  if (value instanceof GoTime) return representTime(value);
  if (value instanceof Date) return representTime(GoTime.fromDate(value));
  if (value instanceof GoBytesString) {
    if (isValidUtf8(value.bytes)) return representString(Buffer.from(value.bytes).toString('utf8'));
    const s = encodeBase64(value.bytes);
    return { kind: 'scalar', value: s, style: s.includes('\n') && shouldUseLiteralStyle(s) ? 'literal' : 'plain', tag: '!!binary' };
  }
  if (seen.has(value)) throw new TypeError('goyaml: cannot represent a cyclic structure');
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return { kind: 'seq', items: value.map((v) => represent(v, seen)) };
    }
    if (value instanceof Map) {
      const keys = sortGoMapKeys([...value.keys()]);
      return { kind: 'map', pairs: keys.map((k) => [represent(k, seen), represent(value.get(k), seen)] as [YNode, YNode]) };
    }
    if (isPlainObject(value)) {
      const pairs: Array<[YNode, YNode]> = [];
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) continue;
        pairs.push([representString(k), represent(v, seen)]);
      }
      return { kind: 'map', pairs };
    }
  } finally {
    seen.delete(value);
  }
  throw new TypeError(`goyaml: cannot represent ${Object.prototype.toString.call(value)}`);
}
