import { goJson } from '../src/compat';

describe('Go-compatible JSON', () => {
  test('HTML characters are escaped and a newline ends the body', () => {
    expect(goJson({ a: '<b>&</b>' })).toBe('{"a":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e"}\n');
    expect(goJson(['v1.7.7'])).toBe('["v1.7.7"]\n');
    expect(goJson('\u2028')).toBe('"\\u2028"\n');
  });
});
