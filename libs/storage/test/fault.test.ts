import { StorageError, storageFault } from '../src';

const wrapped = (cause: unknown) => new StorageError('UNAVAILABLE', 'local store: put failed', { cause });

test('errno codes of the local filesystem name the fault, without paths', () => {
  expect(storageFault(wrapped(Object.assign(new Error('EROFS: read-only file system, open /x'), { code: 'EROFS' })))).toEqual({ kind: 'read-only', reason: 'storage is read-only (EROFS)' });
  expect(storageFault(wrapped(Object.assign(new Error('no space'), { code: 'ENOSPC' })))).toEqual({ kind: 'full', reason: 'storage is full (ENOSPC)' });
  expect(storageFault(wrapped(Object.assign(new Error('denied'), { code: 'EACCES' }))))?.toMatchObject({ kind: 'access-denied' });
});

test('S3 error names, through nested causes', () => {
  const sdk = Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
  expect(storageFault(wrapped(new Error('outer', { cause: sdk })))).toEqual({ kind: 'access-denied', reason: 'storage denies access (AccessDenied)' });
});

test('an unavailable store without a known cause is "unavailable"; other errors are no storage fault', () => {
  expect(storageFault(wrapped(new Error('socket hang up')))).toEqual({ kind: 'unavailable', reason: 'storage is unavailable' });
  expect(storageFault(new StorageError('TOO_LARGE', 'too large'))).toBeUndefined();
  expect(storageFault(Object.assign(new Error('EROFS'), { code: 'EROFS' }))).toBeUndefined();
  expect(storageFault(undefined)).toBeUndefined();
});
