/** Error types of @factory/oci. Every failure surfaced by this package is an OciError (or its subclass CosignError). */

export type OciErrorCode = 'NOT_FOUND' | 'UNAUTHORIZED' | 'DIGEST_MISMATCH' | 'TOO_LARGE' | 'INVALID' | 'UNAVAILABLE';

/** One entry of a registry's `{"errors":[{code,message,detail}]}` error body. */
export interface RegistryErrorDetail {
  code: string;
  message?: string;
  detail?: unknown;
}

export class OciError extends Error {
  readonly code: OciErrorCode;
  /** HTTP status of the response that caused the error, when there was one. */
  readonly status?: number;
  /** Parsed registry error body (distribution spec `errors` array), when the registry sent one. */
  readonly details?: RegistryErrorDetail[];

  constructor(code: OciErrorCode, message: string, opts: { status?: number; details?: RegistryErrorDetail[]; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'OciError';
    this.code = code;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.details !== undefined) this.details = opts.details;
  }
}

/** Why a cosign verification failed. */
export type CosignFailure =
  | 'NO_SIGNATURE'        // no `sha256-<hex>.sig` manifest, or it has no simple-signing layer
  | 'BAD_KEY'             // the public key could not be parsed / is of an unsupported type
  | 'INVALID_SIGNATURE';  // signature layers exist, but none verifies for this digest with this key

/**
 * Signature verification failure. It is an OciError (code NOT_FOUND when there is no signature at all, INVALID otherwise),
 * so callers that treat "unsigned or badly signed" as a cache miss can test `err instanceof CosignError`, while transport
 * failures (UNAVAILABLE, UNAUTHORIZED while reading the signature) are thrown as plain OciError.
 */
export class CosignError extends OciError {
  readonly reason: CosignFailure;

  constructor(reason: CosignFailure, message: string, opts: { cause?: unknown } = {}) {
    super(reason === 'NO_SIGNATURE' ? 'NOT_FOUND' : 'INVALID', message, opts);
    this.name = 'CosignError';
    this.reason = reason;
  }
}
