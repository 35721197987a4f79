import { goQuote } from '../src';

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('goQuote: strconv.Quote over a string', () => {
  test.each([
    ['', '""'],
    ['abc', '"abc"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['\x07\b\f\n\r\t\v', '"\\a\\b\\f\\n\\r\\t\\v"'],
    // other ASCII controls and DEL: \xNN
    ['\x00\x04\x1f\x7f', '"\\x00\\x04\\x1f\\x7f"'],
    // printable (L, M, N, P, S, ASCII space) stays literal
    ['é日本 ☺', '"é日本 ☺"'],
    ['e\u0301', '"e\u0301"'],
    ['\u{1F600}', '"\u{1F600}"'],
    // C1 controls, no-break and other spaces, soft hyphen, BOM: not printable in Go
    ['\u0085', '"\\u0085"'],
    ['!\u00a0!\u2000!\u3000!', '"!\\u00a0!\\u2000!\\u3000!"'],
    ['\u00ad', '"\\u00ad"'],
    ['\ufeff', '"\\ufeff"'],
    // line and paragraph separators (Zl, Zp) are not printable
    ['\u2028\u2029', '"\\u2028\\u2029"'],
    // noncharacters, private use and unassigned runes
    ['\ufffe\uffff', '"\\ufffe\\uffff"'],
    ['\ue000', '"\\ue000"'],
    ['\u0378', '"\\u0378"'],
    // above the BMP: \U with 8 digits
    ['\u{E0001}', '"\\U000e0001"'],
    ['\u{10FFFF}', '"\\U0010ffff"'],
    // U+FFFD itself is printable (category So)
    ['\ufffd', '"\ufffd"'],
  ])('%j', (input, expected) => {
    expect(goQuote(input)).toBe(expected);
  });

  test('a lone surrogate is the U+FFFD Node encodes it as, which Go prints literally', () => {
    expect(Buffer.from('\ud800', 'utf8')).toEqual(Buffer.from([0xef, 0xbf, 0xbd]));
    expect(goQuote('a\ud800b')).toBe('"a\ufffdb"');
    expect(goQuote('\udc00')).toBe('"\ufffd"');
    // a well-formed pair is one rune
    expect(goQuote('\ud83d\ude00')).toBe('"\u{1F600}"');
    // the string and its UTF-8 bytes quote the same
    for (const s of ['a\ud800b', '\u2028', '\x01é\u{E0001}']) expect(goQuote(s)).toBe(goQuote(Buffer.from(s, 'utf8')));
  });
});

describe('goQuote: strconv.Quote over bytes (invalid UTF-8 as \\xNN, one byte at a time)', () => {
  test.each([
    [bytes(0x61, 0x62, 0x63, 0xff, 0x64, 0x65, 0x66), '"abc\\xffdef"'],
    // encoded surrogate half
    [bytes(0xed, 0xa0, 0x80), '"\\xed\\xa0\\x80"'],
    // overlong encodings
    [bytes(0xc0, 0x80), '"\\xc0\\x80"'],
    [bytes(0xe0, 0x80, 0xaf), '"\\xe0\\x80\\xaf"'],
    [bytes(0xf0, 0x8f, 0xbf, 0xbf), '"\\xf0\\x8f\\xbf\\xbf"'],
    // above U+10FFFF
    [bytes(0xf4, 0x90, 0x80, 0x80), '"\\xf4\\x90\\x80\\x80"'],
    // truncated sequence, then a valid rune
    [bytes(0xe2, 0x82, 0x41), '"\\xe2\\x82A"'],
    // lone continuation byte
    [bytes(0x80), '"\\x80"'],
    // valid multi-byte runes decode
    [bytes(0xe2, 0x82, 0xac), '"€"'],
    [bytes(0xef, 0xbf, 0xbd), '"\ufffd"'],
    [bytes(0xef, 0xbf, 0xbe), '"\\ufffe"'],
    [bytes(0xf0, 0x9f, 0x98, 0x80), '"\u{1F600}"'],
    [bytes(0xf3, 0xa0, 0x80, 0x81), '"\\U000e0001"'],
  ])('%j', (input, expected) => {
    expect(goQuote(input)).toBe(expected);
  });
});
