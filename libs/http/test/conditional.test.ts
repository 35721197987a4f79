import { ConditionalHeaders, evaluatePreconditions, PreconditionOutcome } from '../src';

const lastModified = Date.UTC(2024, 0, 2, 3, 4, 5, 500);
const current = { etag: '"v2"', lastModified };
const AT = 'Tue, 02 Jan 2024 03:04:05 GMT';
const BEFORE = 'Tue, 02 Jan 2024 03:04:04 GMT';
const AFTER = 'Tue, 02 Jan 2024 03:04:06 GMT';

describe('evaluatePreconditions (RFC 9110 §13.2.2)', () => {
  test.each<[string, ConditionalHeaders, PreconditionOutcome]>([
    ['GET', {}, 'proceed'],
    // If-None-Match: weak comparison, 304 for GET/HEAD, 412 otherwise
    ['GET', { ifNoneMatch: '"v2"' }, 'not-modified'],
    ['HEAD', { ifNoneMatch: 'W/"v2"' }, 'not-modified'],
    ['GET', { ifNoneMatch: '"v1", "v2"' }, 'not-modified'],
    ['GET', { ifNoneMatch: '*' }, 'not-modified'],
    ['GET', { ifNoneMatch: '"v1"' }, 'proceed'],
    ['PUT', { ifNoneMatch: '"v2"' }, 'precondition-failed'],
    ['PUT', { ifNoneMatch: '*' }, 'precondition-failed'],
    ['GET', { ifNoneMatch: 'garbage' }, 'proceed'],
    // If-Match: strong comparison, 412 on mismatch
    ['GET', { ifMatch: '"v2"' }, 'proceed'],
    ['GET', { ifMatch: '*' }, 'proceed'],
    ['GET', { ifMatch: '"v1", "v2"' }, 'proceed'],
    ['GET', { ifMatch: '"v1"' }, 'precondition-failed'],
    ['GET', { ifMatch: 'W/"v2"' }, 'precondition-failed'],
    ['GET', { ifMatch: 'garbage' }, 'precondition-failed'],
    // If-Match is evaluated before If-None-Match
    ['GET', { ifMatch: '"v1"', ifNoneMatch: '"v2"' }, 'precondition-failed'],
    ['GET', { ifMatch: '"v2"', ifNoneMatch: '"v2"' }, 'not-modified'],
    // If-Unmodified-Since (only without If-Match)
    ['GET', { ifUnmodifiedSince: AT }, 'proceed'],
    ['GET', { ifUnmodifiedSince: AFTER }, 'proceed'],
    ['GET', { ifUnmodifiedSince: BEFORE }, 'precondition-failed'],
    ['GET', { ifUnmodifiedSince: 'garbage' }, 'proceed'],
    ['GET', { ifMatch: '"v2"', ifUnmodifiedSince: BEFORE }, 'proceed'],
    // If-Modified-Since (GET/HEAD only, only without If-None-Match)
    ['GET', { ifModifiedSince: AT }, 'not-modified'],
    ['GET', { ifModifiedSince: AFTER }, 'not-modified'],
    ['GET', { ifModifiedSince: BEFORE }, 'proceed'],
    ['GET', { ifModifiedSince: 'garbage' }, 'proceed'],
    ['POST', { ifModifiedSince: AT }, 'proceed'],
    ['GET', { ifNoneMatch: '"v1"', ifModifiedSince: AT }, 'proceed'],
  ])('%s %j', (method, headers, want) => {
    expect(evaluatePreconditions(method, headers, current)).toBe(want);
  });

  test('without validators: tags match only *, dates are ignored', () => {
    expect(evaluatePreconditions('GET', { ifMatch: '"v2"' }, {})).toBe('precondition-failed');
    expect(evaluatePreconditions('GET', { ifMatch: '*' }, {})).toBe('proceed');
    expect(evaluatePreconditions('GET', { ifNoneMatch: '"v2"' }, {})).toBe('proceed');
    expect(evaluatePreconditions('GET', { ifModifiedSince: AT, ifUnmodifiedSince: BEFORE }, {})).toBe('proceed');
  });
});
