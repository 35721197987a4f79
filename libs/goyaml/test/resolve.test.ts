import { GoTime, ResolveError, implicitTag, parseTimestamp, resolveScalar } from '@factory/goyaml';

describe('implicit resolution of plain scalars (go-yaml v4)', () => {
  test.each([
    ['10', 10n],
    ['0xa', 10n],
    ['0XA', 10n],
    ['0o12', 10n],
    ['012', 10n],
    ['0b1010', 10n],
    ['+10', 10n],
    ['-0x10', -16n],
    ['1_000', 1000n],
    ['0', 0n],
    ['9223372036854775807', 9223372036854775807n],
    ['9223372036854775808', 9223372036854775808n], // uint64
    ['18446744073709551615', 18446744073709551615n],
  ])('int %s', (s, v) => {
    expect(resolveScalar(s)).toEqual({ tag: '!!int', value: v });
  });

  test.each([
    ['1.5', 1.5],
    ['.5', 0.5],
    ['1e3', 1000],
    ['1.', 1],
    ['08', 8], // invalid octal, valid decimal float
    ['18446744073709551616', 18446744073709551616],
    ['.inf', Infinity],
    ['-.Inf', -Infinity],
    ['+.INF', Infinity],
  ])('float %s', (s, v) => {
    expect(resolveScalar(s)).toEqual({ tag: '!!float', value: v });
  });

  test('special floats', () => {
    expect(Number.isNaN(resolveScalar('.nan').value)).toBe(true);
    expect(Object.is(resolveScalar('-0').value, -0)).toBe(true);
    expect(resolveScalar('-0.0').tag).toBe('!!float');
  });

  test('bool, null, merge', () => {
    for (const s of ['true', 'True', 'TRUE']) expect(resolveScalar(s)).toEqual({ tag: '!!bool', value: true });
    for (const s of ['false', 'False', 'FALSE']) expect(resolveScalar(s)).toEqual({ tag: '!!bool', value: false });
    for (const s of ['', '~', 'null', 'Null', 'NULL']) expect(resolveScalar(s)).toEqual({ tag: '!!null', value: null });
    expect(resolveScalar('<<')).toEqual({ tag: '!!merge', value: '<<' });
  });

  test.each(['yes', 'no', 'on', 'off', 'y', 'n', 'tRue', 'nan', 'NaN', '1e400', '0x', '_1', '1.2.3', '-', '+', '0b2', '1:20', 'abc'])(
    'string %s',
    (s) => {
      expect(resolveScalar(s)).toEqual({ tag: '!!str', value: s });
    },
  );

  test('"1_" resolves like Go (underscores are stripped before parsing)', () => {
    // go-yaml removes every "_" before strconv.ParseInt, so "1_" is the int 1; "_1" does not start with a digit.
    expect(implicitTag('1_')).toBe('!!int');
  });

  test('timestamps', () => {
    expect(parseTimestamp('2001-01-01')).toEqual(new GoTime(2001, 1, 1, 0, 0, 0, 0, 0));
    expect(parseTimestamp('2001-1-2')).toEqual(new GoTime(2001, 1, 2, 0, 0, 0, 0, 0));
    expect(parseTimestamp('2001-12-14t21:59:43.10-05:00')).toEqual(new GoTime(2001, 12, 14, 21, 59, 43, 100000000, -18000));
    expect(parseTimestamp('2001-12-14T21:59:43Z')).toEqual(new GoTime(2001, 12, 14, 21, 59, 43, 0, 0));
    expect(parseTimestamp('2001-12-14 21:59:43.10')).toEqual(new GoTime(2001, 12, 14, 21, 59, 43, 100000000, 0));
    expect(parseTimestamp('2001-02-29')).toBeNull();
    expect(parseTimestamp('2000-02-29')).not.toBeNull();
    expect(parseTimestamp('2001-13-01')).toBeNull();
    expect(parseTimestamp('2001-12-14T21:59:43')).toBeNull(); // T layout needs a zone
    expect(parseTimestamp('2001-12-14 21:59:43Z')).toBeNull(); // space layout has none
    expect(parseTimestamp('2001-12-14 21:59:43.10 -5')).toBeNull();
    expect(resolveScalar('2001-01-01').tag).toBe('!!timestamp');
    expect(new GoTime(2001, 12, 14, 21, 59, 43, 100000000, -18000).toString()).toBe('2001-12-14T21:59:43.1-05:00');
  });

  test('explicit tags', () => {
    expect(resolveScalar('5', '!!str')).toEqual({ tag: '!!str', value: '5' });
    expect(resolveScalar('5', 'tag:yaml.org,2002:int')).toEqual({ tag: '!!int', value: 5n });
    expect(resolveScalar('5', '!!float')).toEqual({ tag: '!!float', value: 5 });
    expect(resolveScalar('x', '!custom')).toEqual({ tag: '!custom', value: 'x' });
    expect(() => resolveScalar('foo', '!!int')).toThrow(new ResolveError('cannot construct !!str `foo` as a !!int'));
    expect(() => resolveScalar('2001-01-01', '!!int')).toThrow(ResolveError);
  });
});
