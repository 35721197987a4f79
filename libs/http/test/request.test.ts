import { decideRequest, hasPreconditions } from '../src';

const rep = { etag: '"sha256:abc"', size: 100 };

describe('decideRequest: preconditions (RFC 9110 §13.2.2 steps 1–4), then Range with If-Range (step 5)', () => {
  test.each<[string, Record<string, string | string[] | undefined>, unknown]>([
    ['no fields', {}, { kind: 'full' }],
    ['If-None-Match matching', { 'if-none-match': '"sha256:abc"' }, { kind: 'not-modified' }],
    ['If-None-Match repeated field lines', { 'if-none-match': ['"x"', '"sha256:abc"'] }, { kind: 'not-modified' }],
    ['If-None-Match other', { 'if-none-match': '"x"', range: 'bytes=0-9' }, { kind: 'partial', start: 0, end: 9 }],
    ['If-Match mismatch beats Range', { 'if-match': '"x"', range: 'bytes=0-9' }, { kind: 'precondition-failed' }],
    ['If-Match match', { 'if-match': '"sha256:abc"', range: 'bytes=10-' }, { kind: 'partial', start: 10, end: 99 }],
    ['If-Range match', { 'if-range': '"sha256:abc"', range: 'bytes=0-9' }, { kind: 'partial', start: 0, end: 9 }],
    ['If-Range mismatch: whole body', { 'if-range': '"old"', range: 'bytes=0-9' }, { kind: 'full' }],
    ['unsatisfiable', { range: 'bytes=100-' }, { kind: 'unsatisfiable' }],
    ['If-None-Match matching beats an unsatisfiable Range', { 'if-none-match': '*', range: 'bytes=100-' }, { kind: 'not-modified' }],
  ])('%s', (_name, headers, want) => {
    expect(decideRequest('GET', headers, rep)).toEqual(want);
  });

  test('without a size (manifests) Range is not served', () => {
    expect(decideRequest('GET', { range: 'bytes=0-1' }, { etag: '"d"' })).toEqual({ kind: 'full' });
    expect(decideRequest('HEAD', { 'if-none-match': '"d"' }, { etag: '"d"' })).toEqual({ kind: 'not-modified' });
  });

  test('hasPreconditions', () => {
    expect(hasPreconditions({ range: 'bytes=0-1', 'if-range': '"x"' })).toBe(false);
    for (const f of ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']) expect(hasPreconditions({ [f]: 'x' })).toBe(true);
  });
});
