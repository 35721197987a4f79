/**
 * Go's `%q` / `strconv.Quote` for a JS string: double quotes; `"` and `\` backslash-escaped; printable runes kept
 * as-is; `\a \b \f \n \r \t \v` for those controls; other non-printable runes as `\xNN` (below 0x80), `\uNNNN` or
 * `\UNNNNNNNN`. Lone surrogates (invalid UTF-8 on the Go side) come out as U+FFFD.
 */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

const SHORT: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (SHORT[ch]) out += SHORT[ch];
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\ufffd';
    else if (PRINTABLE.test(ch)) out += ch;
    else if (cp < 0x80) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x10000) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return out + '"';
}
