/** Errors raised while assembling installer images. */

export type InstallerImageErrorCode =
  /** malformed input (paths, digests, base config, repo tag, ...) */
  | 'INVALID_INPUT'
  /** a file named by the input does not exist or is not a regular file */
  | 'MISSING_FILE'
  /** the overlay tree holds something we refuse to package (escaping symlink, special file, ...) */
  | 'UNSAFE_OVERLAY'
  /** a file changed size while it was being packaged */
  | 'FILE_CHANGED';

export class InstallerImageError extends Error {
  constructor(
    readonly code: InstallerImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'InstallerImageError';
  }
}
