/**
 * JSON as Go's `encoding/json` writes it (the anchor's API answers, installer image config/manifest blobs, cosign
 * signing payloads), where bytes matter because they are hashed or compared.
 *
 * Go (≥ 1.22) and `JSON.stringify` agree on everything but the escaping of a few characters inside strings:
 * - HTML-safe escaping (`SetEscapeHTML(true)`, the default): `<`, `>`, `&` → `\u003c`, `\u003e`, `\u0026`;
 * - U+2028 and U+2029 → `\u2028`, `\u2029` (JavaScript line terminators);
 * - invalid UTF-8 → `\ufffd`. A JS string has no invalid UTF-8, only lone surrogates (which `JSON.stringify` writes
 *   as `\udXXX`). As in `goQuote`, a lone surrogate is taken as what Node sends Go for it: U+FFFD (EF BF BD), a valid
 *   rune that Go writes literally, so it comes out as a literal `�`.
 * Both write `\b \f \n \r \t` short and other control characters as lowercase `\u00XX`, and leave DEL and every
 * other non-ASCII rune literal.
 *
 * What stays the caller's job: member order (Go writes struct fields in declaration order and sorts map keys; build
 * the object in that order) and non-integer numbers (Go's float formatting differs for exponents).
 */

/** The five characters Go escapes that `JSON.stringify` leaves literal. They only ever occur inside strings. */
const GO_EXTRA_ESCAPES = /[<>&\u2028\u2029]/g;
/**
 * A `\uD800`–`\uDFFF` escape (only `JSON.stringify`'s rendering of a lone surrogate), preceded by an even run of
 * backslashes so that an escaped backslash followed by the text "ud800" is left alone.
 */
const LONE_SURROGATE_ESCAPE = /(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g;

function goEscape(json: string): string {
  return json
    .replace(GO_EXTRA_ESCAPES, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(LONE_SURROGATE_ESCAPE, (_m, backslashes: string) => `${backslashes}\ufffd`);
}

/** Go's `json.Marshal(value)`: compact, no trailing newline. */
export function goJsonMarshal(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`goJsonMarshal: ${typeof value} has no JSON form`);
  return goEscape(json);
}

/** Go's `json.NewEncoder(w).Encode(value)`, what the anchor's handlers write: `json.Marshal` plus one newline. */
export function goJsonEncode(value: unknown): string {
  return `${goJsonMarshal(value)}\n`;
}

/** One JSON string literal, quoted and escaped as Go writes it. */
export function goJsonString(s: string): string {
  return goJsonMarshal(s);
}
