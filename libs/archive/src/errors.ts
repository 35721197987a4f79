/** Errors raised by the archive readers and writers. */

/**
 * An archive is malformed or tries something its reader does not allow (truncated data, bad header checksums,
 * oversized metadata records); callers that extract archives raise it for path traversal, device nodes, escaping
 * links and size limits too.
 */
export class UnsafeArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeArchiveError';
  }
}

/** A file being archived no longer has the size it had when the entry list was made. */
export class SourceChangedError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'SourceChangedError';
  }
}
