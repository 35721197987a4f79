import { goJsonEncode, goJsonMarshal, goJsonString } from '../src';

describe('Go encoding/json escaping', () => {
  test('HTML characters are escaped, Encode adds one newline', () => {
    expect(goJsonEncode({ a: '<b>&</b>' })).toBe('{"a":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e"}\n');
    expect(goJsonEncode(['v1.7.7'])).toBe('["v1.7.7"]\n');
    expect(goJsonMarshal({ 'a&b': '<x>' })).toBe('{"a\\u0026b":"\\u003cx\\u003e"}');
  });

  test('U+2028 and U+2029 are escaped', () => {
    expect(goJsonEncode('\u2028')).toBe('"\\u2028"\n');
    expect(goJsonString('a\u2028b\u2029c')).toBe('"a\\u2028b\\u2029c"');
  });

  test('controls: short forms for \\b \\f \\n \\r \\t, lowercase \\u00XX for the rest; DEL and non-ASCII literal', () => {
    expect(goJsonString('\x00\x1f\b\f\n\r\t"\\')).toBe('"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\"');
    expect(goJsonString('\x1b')).toBe('"\\u001b"');
    expect(goJsonString('\x7fé\u{1F600}\u00a0\ufeff')).toBe('"\x7fé\u{1F600}\u00a0\ufeff"');
  });

  test('a lone surrogate is U+FFFD, written literally (as Go writes a valid U+FFFD)', () => {
    expect(goJsonString('a\ud800b')).toBe('"a\ufffdb"');
    expect(goJsonMarshal({ ['k\udc00']: ['\udbff'] })).toBe('{"k\ufffd":["\ufffd"]}');
    // a well-formed pair is kept
    expect(goJsonString('\ud83d\ude00')).toBe('"\u{1F600}"');
    // text that merely looks like an escape is not touched
    expect(goJsonString('\\ud800')).toBe('"\\\\ud800"');
    expect(goJsonString('\\\ud800')).toBe('"\\\\\ufffd"');
  });

  test('compact output, values as JSON.stringify writes them', () => {
    expect(goJsonMarshal({ a: 1, b: [true, null], c: { d: 'e' } })).toBe('{"a":1,"b":[true,null],"c":{"d":"e"}}');
    expect(goJsonMarshal(null)).toBe('null');
  });

  test('a value without a JSON form is refused', () => {
    expect(() => goJsonMarshal(undefined)).toThrow(TypeError);
  });
});
