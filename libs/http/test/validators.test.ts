import { formatHttpDate, parseEntityTag, parseEntityTagList, parseHttpDate } from '../src';

describe('entity tags (RFC 9110 §8.8.3)', () => {
  test('single tags', () => {
    expect(parseEntityTag('"abc"')).toEqual({ weak: false, tag: '"abc"' });
    expect(parseEntityTag('W/"abc"')).toEqual({ weak: true, tag: '"abc"' });
    expect(parseEntityTag('""')).toEqual({ weak: false, tag: '""' });
    expect(parseEntityTag('abc')).toBeUndefined();
    expect(parseEntityTag('"a"b"')).toBeUndefined();
    expect(parseEntityTag('"a b"')).toBeUndefined();
    expect(parseEntityTag('w/"abc"')).toBeUndefined();
  });

  test('lists', () => {
    expect(parseEntityTagList('*')).toBe('*');
    expect(parseEntityTagList('"a", W/"b" ,"c,d"')).toEqual([
      { weak: false, tag: '"a"' },
      { weak: true, tag: '"b"' },
      { weak: false, tag: '"c,d"' },
    ]);
    expect(parseEntityTagList(', "a",,')).toEqual([{ weak: false, tag: '"a"' }]);
    expect(parseEntityTagList('"a" "b"')).toBeUndefined();
    expect(parseEntityTagList('"a", *')).toBeUndefined();
    expect(parseEntityTagList('')).toBeUndefined();
  });
});

describe('HTTP-date (RFC 9110 §5.6.7)', () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37);
  test('the three forms', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(t);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(t);
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(t);
    expect(formatHttpDate(t)).toBe('Sun, 06 Nov 1994 08:49:37 GMT');
  });

  test('two-digit years more than 50 years ahead are in the past century', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseHttpDate('Monday, 01-Jan-24 00:00:00 GMT', now)).toBe(Date.UTC(2024, 0, 1));
    expect(parseHttpDate('Tuesday, 01-Jan-80 00:00:00 GMT', now)).toBe(Date.UTC(1980, 0, 1));
    expect(parseHttpDate('Sunday, 01-Jan-70 00:00:00 GMT', now)).toBe(Date.UTC(2070, 0, 1));
  });

  test.each(['', 'yesterday', 'Sun, 6 Nov 1994 08:49:37 GMT', 'Sun, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 24:00:00 GMT', 'Sun, 06 Nov 1994 08:49:37 UTC'])(
    'invalid %j',
    (v) => {
      expect(parseHttpDate(v)).toBeUndefined();
    },
  );
});
