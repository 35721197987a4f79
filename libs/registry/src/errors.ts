/** Errors of the registry frontend and how they are written. */
import { storageFault } from '@factory/storage';

/** OCI distribution error codes used by this package (distribution-spec "error codes"). */
export type OciErrorCodeName =
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_INVALID'
  | 'NAME_INVALID'
  | 'TAG_INVALID'
  | 'TOOMANYREQUESTS'
  | 'UNSUPPORTED';

/**
 * An error with the HTTP status and one-line message the client should see. Without `ociCode` it is written like the
 * anchor's Go `http.Error` (text/plain, message + newline); with `ociCode` as an OCI distribution JSON error body
 * `{"errors":[{"code":…,"message":…}]}` (what registries answer and clients like skopeo print).
 */
export class RegistryError extends Error {
  readonly status: number;
  readonly ociCode?: OciErrorCodeName;
  readonly detail?: unknown;

  constructor(status: number, message: string, opts: { ociCode?: OciErrorCodeName; detail?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RegistryError';
    this.status = status;
    if (opts.ociCode !== undefined) this.ociCode = opts.ociCode;
    if (opts.detail !== undefined) this.detail = opts.detail;
  }
}

/** `404 {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}` (what ghcr.io and registry:2 answer). */
export const manifestUnknown = (message = 'manifest unknown') => new RegistryError(404, message, { ociCode: 'MANIFEST_UNKNOWN' });
/** `404 {"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}` */
export const blobUnknown = (message = 'blob unknown to registry') => new RegistryError(404, message, { ociCode: 'BLOB_UNKNOWN' });

export function ociErrorBody(code: string, message: string, detail?: unknown): string {
  const entry: Record<string, unknown> = { code, message };
  if (detail !== undefined) entry.detail = detail;
  return JSON.stringify({ errors: [entry] }) + '\n';
}

/** What an error thrown by an injected dependency means for the client. */
export interface HttpErrorInfo {
  status: number;
  message: string;
  ociCode?: string;
  detail?: unknown;
}

/**
 * Default mapping of errors thrown by injected callbacks: RegistryError, and anything named `FactoryError` (the
 * `@factory/queue` class: numeric `status` + client-facing message) or carrying a numeric `httpStatus`, and storage
 * faults (503 with their one-line reason). Everything else is not for the client's eyes (→ 500 `internal server error`).
 */
export function defaultErrorInfo(err: unknown): HttpErrorInfo | undefined {
  if (err instanceof RegistryError) {
    const out: HttpErrorInfo = { status: err.status, message: err.message };
    if (err.ociCode !== undefined) out.ociCode = err.ociCode;
    if (err.detail !== undefined) out.detail = err.detail;
    return out;
  }
  if (typeof err !== 'object' || err === null) return undefined;
  const fault = storageFault(err);
  if (fault) return { status: 503, message: fault.reason };
  const e = err as { name?: unknown; status?: unknown; httpStatus?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  const valid = (s: unknown): s is number => typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 599;
  if ((e.name === 'FactoryError' || e.name === 'RegistryError') && valid(e.status)) return { status: e.status, message };
  if (valid(e.httpStatus)) return { status: e.httpStatus, message };
  return undefined;
}
