/**
 * Go's `strconv.Quote` (what `%q` and `%#v` print for a string), used wherever the anchor puts a quoted string into an
 * answer or an error text (registry 404s, go-yaml "already defined" errors, profile path errors).
 *
 * Go's rules, applied rune by rune over the UTF-8 bytes:
 * - `"` and `\` are backslash-escaped; `\a \b \f \n \r \t \v` use their short forms;
 * - a rune that `unicode.IsPrint` accepts stays literal: categories L, M, N, P, S and the ASCII space (so U+00A0,
 *   U+00AD, U+2028, U+2029, U+FEFF, U+FFFE, and all other separators, format and private-use runes are escaped);
 * - any other rune is escaped as `\xNN` below 0x80, `\uNNNN` up to U+FFFF and `\UNNNNNNNN` above;
 * - a byte that does not start a valid UTF-8 sequence (overlong forms, surrogate halves, > U+10FFFF, truncated
 *   sequences) is printed as `\xNN`, one byte at a time.
 *
 * JS strings are UTF-16 and can hold lone surrogates, which have no UTF-8 form. They are quoted as the bytes Node would
 * send Go for that string: `Buffer.from(s, 'utf8')` turns each lone surrogate into U+FFFD (EF BF BD), a valid and
 * printable rune, so Go prints it literally as `�`. To quote raw bytes (where Go's `\xNN` for invalid UTF-8 applies),
 * pass a Uint8Array.
 *
 * Printability comes from the Unicode tables of Node's ICU; Go's tables may be one Unicode version apart, which only
 * matters for runes assigned in between.
 */

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

const SHORT_ESCAPES: Readonly<Record<number, string>> = {
  0x07: '\\a',
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x0b: '\\v',
  0x22: '\\"',
  0x5c: '\\\\',
};

/** One decoded unit: a rune, or a byte that is not part of valid UTF-8. */
type Unit = { rune: number } | { invalidByte: number };

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function* unitsOfString(s: string): Generator<Unit> {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    yield { rune: cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp };
  }
}

/**
 * The rune starting at `bytes[i]` and its width, with the acceptance ranges of Go's `utf8.DecodeRune` (which are
 * those of RFC 3629), or undefined when the byte there does not start a valid sequence.
 */
function decodeRune(bytes: Uint8Array, i: number): { rune: number; width: number } | undefined {
  const b0 = bytes[i];
  if (b0 < 0x80) return { rune: b0, width: 1 };
  let width: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) width = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    width = 3;
    if (b0 === 0xe0) lo = 0xa0; // overlong
    if (b0 === 0xed) hi = 0x9f; // surrogate halves
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    width = 4;
    if (b0 === 0xf0) lo = 0x90; // overlong
    if (b0 === 0xf4) hi = 0x8f; // above U+10FFFF
  } else return undefined;
  if (i + width > bytes.length) return undefined;
  const b1 = bytes[i + 1];
  if (b1 < lo || b1 > hi) return undefined;
  let rune = (b0 & (0xff >> (width + 1))) * 64 + (b1 & 0x3f);
  for (let k = 2; k < width; k++) {
    const b = bytes[i + k];
    if (b < 0x80 || b > 0xbf) return undefined;
    rune = rune * 64 + (b & 0x3f);
  }
  return { rune, width };
}

function* unitsOfBytes(bytes: Uint8Array): Generator<Unit> {
  for (let i = 0; i < bytes.length; ) {
    const d = decodeRune(bytes, i);
    if (d) {
      yield { rune: d.rune };
      i += d.width;
    } else {
      yield { invalidByte: bytes[i] };
      i += 1;
    }
  }
}

function escapeRune(cp: number): string {
  const short = SHORT_ESCAPES[cp];
  if (short) return short;
  if (PRINTABLE.test(String.fromCodePoint(cp))) return String.fromCodePoint(cp);
  if (cp < 0x80) return `\\x${hex(cp, 2)}`;
  if (cp < 0x10000) return `\\u${hex(cp, 4)}`;
  return `\\U${hex(cp, 8)}`;
}

/** Go's `strconv.Quote` of a string (lone surrogates as U+FFFD, see above) or of raw bytes. */
export function goQuote(input: string | Uint8Array): string {
  const units = typeof input === 'string' ? unitsOfString(input) : unitsOfBytes(input);
  let out = '"';
  for (const u of units) out += 'rune' in u ? escapeRune(u.rune) : `\\x${hex(u.invalidByte, 2)}`;
  return out + '"';
}
