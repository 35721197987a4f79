/**
 * What an operator and a client should hear when storage fails: a one-line reason (read-only, full, access denied,
 * unreachable) instead of the cause buried in a log. Both backends wrap failures in StorageError('UNAVAILABLE') with
 * the original error as `cause`; the reason is read from that chain (errno codes of the local filesystem, S3 error
 * names and statuses).
 */
import { FactoryError } from '@factory/errors';
import { isStorageError } from './types';

export type StorageFaultKind = 'read-only' | 'full' | 'access-denied' | 'unavailable';

export interface StorageFault {
  kind: StorageFaultKind;
  /** One line for clients and `/readyz`: no paths, no keys. */
  reason: string;
}

const ERRNO_FAULTS: Record<string, StorageFaultKind> = {
  EROFS: 'read-only',
  ENOSPC: 'full',
  EDQUOT: 'full',
  EFBIG: 'full',
  EACCES: 'access-denied',
  EPERM: 'access-denied',
};

const S3_FAULTS: Record<string, StorageFaultKind> = {
  AccessDenied: 'access-denied',
  InvalidAccessKeyId: 'access-denied',
  SignatureDoesNotMatch: 'access-denied',
  QuotaExceeded: 'full',
  EntityTooLarge: 'full',
};

const REASONS: Record<StorageFaultKind, string> = {
  'read-only': 'storage is read-only',
  full: 'storage is full',
  'access-denied': 'storage denies access',
  unavailable: 'storage is unavailable',
};

/** The storage fault behind `err` (a StorageError 'UNAVAILABLE' or anything it wraps), or undefined when it is none. */
export function storageFault(err: unknown): StorageFault | undefined {
  if (!isStorageError(err, 'UNAVAILABLE')) return undefined;
  const seen = new Set<unknown>();
  for (let e: unknown = err; e && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const { code, name } = e as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && ERRNO_FAULTS[code]) return fault(ERRNO_FAULTS[code], code);
    if (typeof name === 'string' && S3_FAULTS[name]) return fault(S3_FAULTS[name], name);
  }
  return fault('unavailable');
}

function fault(kind: StorageFaultKind, code?: string): StorageFault {
  return { kind, reason: code ? `${REASONS[kind]} (${code})` : REASONS[kind] };
}

/**
 * Runs `work`; a storage fault it meets becomes a 503 naming the cause (for the waiting client, `/readyz` and the
 * log alike) instead of a bare 500 with the cause only in a log — and, being a reply, it is not retried against
 * storage that cannot take it. `onFault` sees the original error (for a log line).
 */
export async function withStorageFaults<T>(work: () => Promise<T>, onFault?: (err: unknown, fault: StorageFault) => void): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const found = storageFault(err);
    if (!found) throw err;
    onFault?.(err, found);
    throw new FactoryError(503, found.reason);
  }
}
