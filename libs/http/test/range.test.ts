import { contentRange, decideRange, ifRangeAllowsRange, rangeForRequest, RangeDecision } from '../src';

const full: RangeDecision = { kind: 'full' };
const unsatisfiable: RangeDecision = { kind: 'unsatisfiable' };
const part = (start: number, end: number): RangeDecision => ({ kind: 'partial', start, end });

describe('decideRange (RFC 9110 §14)', () => {
  test.each<[string | undefined, number, RangeDecision]>([
    // no Range
    [undefined, 10, full],
    ['', 10, full],
    // one satisfiable range → 206
    ['bytes=0-4', 10, part(0, 4)],
    ['bytes=5-', 10, part(5, 9)],
    ['bytes=5-100', 10, part(5, 9)],
    ['bytes=9-9', 10, part(9, 9)],
    ['bytes=-3', 10, part(7, 9)],
    ['bytes=-30', 10, part(0, 9)],
    ['bytes=-10', 10, part(0, 9)],
    ['BYTES=1-2', 10, part(1, 2)],
    [' bytes=1-2 ', 10, part(1, 2)],
    // empty list elements are skipped
    ['bytes=1-2,', 10, part(1, 2)],
    ['bytes=, 1-2', 10, part(1, 2)],
    ['bytes=0-99999999999999999999999', 10, part(0, 9)],
    ['bytes=-99999999999999999999999', 10, part(0, 9)],
    // unsatisfiable → 416
    ['bytes=10-', 10, unsatisfiable],
    ['bytes=10-20', 10, unsatisfiable],
    ['bytes=99999999999999999999999-', 10, unsatisfiable],
    ['bytes=-0', 10, unsatisfiable],
    ['bytes=0-', 0, unsatisfiable],
    ['bytes=-5', 0, unsatisfiable],
    // invalid syntax → ignored (whole body)
    ['bytes=5-3', 10, full],
    ['bytes=4-2', 10, full],
    ['items=0-1', 10, full],
    ['bytes=x-1', 10, full],
    ['bytes=', 10, full],
    ['bytes=-', 10, full],
    ['bytes=1', 10, full],
    ['bytes = 1-2', 10, full],
    ['bytes=1 - 2', 10, full],
    ['bytes=+1-2', 10, full],
    ['bytes=1-2-3', 10, full],
    // more than one range → ignored (whole body)
    ['bytes=0-1,3-4', 10, full],
    ['bytes=0-1, 20-30', 10, full],
  ])('%j of %d', (header, size, want) => {
    expect(decideRange(header, size)).toEqual(want);
  });

  test('Content-Range for each decision', () => {
    expect(contentRange(part(10, 19), 100)).toBe('bytes 10-19/100');
    expect(contentRange(unsatisfiable, 100)).toBe('bytes */100');
    expect(contentRange(full, 100)).toBeUndefined();
  });
});

describe('If-Range (RFC 9110 §13.1.5)', () => {
  const lastModified = Date.UTC(2024, 0, 2, 3, 4, 5);
  const current = { etag: '"sha256:abc"', lastModified, size: 10 };

  test.each<[string | undefined, boolean]>([
    [undefined, true],
    ['"sha256:abc"', true],
    [' "sha256:abc" ', true],
    ['"sha256:abd"', false],
    // weak tags never match (strong comparison)
    ['W/"sha256:abc"', false],
    ['Tue, 02 Jan 2024 03:04:05 GMT', true],
    ['Tuesday, 02-Jan-24 03:04:05 GMT', true],
    ['Tue Jan  2 03:04:05 2024', true],
    ['Tue, 02 Jan 2024 03:04:06 GMT', false],
    ['Tue, 02 Jan 2024 03:04:04 GMT', false],
    ['not a date', false],
    ['"unterminated', false],
  ])('%j', (ifRange, allows) => {
    expect(ifRangeAllowsRange(ifRange, current)).toBe(allows);
  });

  test('sub-second Last-Modified compares at HTTP-date precision', () => {
    expect(ifRangeAllowsRange('Tue, 02 Jan 2024 03:04:05 GMT', { lastModified: lastModified + 999 })).toBe(true);
  });

  test('a weak current ETag never matches; a date without Last-Modified never matches', () => {
    expect(ifRangeAllowsRange('"x"', { etag: 'W/"x"' })).toBe(false);
    expect(ifRangeAllowsRange('Tue, 02 Jan 2024 03:04:05 GMT', { etag: '"x"' })).toBe(false);
    expect(ifRangeAllowsRange('"x"', {})).toBe(false);
  });

  test('rangeForRequest: a failed If-Range ignores Range, a matching one keeps it', () => {
    expect(rangeForRequest({ range: 'bytes=2-3', ifRange: '"sha256:abc"' }, current)).toEqual(part(2, 3));
    expect(rangeForRequest({ range: 'bytes=2-3', ifRange: '"other"' }, current)).toEqual(full);
    expect(rangeForRequest({ range: 'bytes=20-', ifRange: '"other"' }, current)).toEqual(full);
    expect(rangeForRequest({ range: 'bytes=20-', ifRange: '"sha256:abc"' }, current)).toEqual(unsatisfiable);
    expect(rangeForRequest({ range: 'bytes=2-3' }, current)).toEqual(part(2, 3));
    expect(rangeForRequest({ ifRange: '"sha256:abc"' }, current)).toEqual(full);
  });
});
