/**
 * Exit codes say what failed, so scripts can tell a typo from an outage. One table, printed by `--help` and the
 * README's CLI section.
 */
import { FactoryClientError } from '@factory/client';

export const EXIT = {
  ok: 0,
  /** anything not below (a bug, an unexpected answer) */
  failure: 1,
  /** bad command line, or an input file that cannot be read */
  usage: 2,
  /** 404: schematic, version, build or asset not found */
  notFound: 3,
  /** other 4xx: the factory refused the input (invalid schematic, asset path, version; a build failing with a 4xx) */
  badRequest: 4,
  /** the factory could not be reached, answered 5xx or 429 (try again later), or a build failed with a 5xx */
  unavailable: 5,
  /** the downloaded bytes do not match the factory's `.sha256` (the partial file is removed) */
  checksum: 6,
} as const;

export const EXIT_CODE_HELP = `Exit codes:
    0  success
    1  unexpected failure
    2  usage: bad command line or unreadable input file
    3  not found (404): schematic, version, build or asset
    4  refused (other 4xx): invalid input, or a build that failed with a 4xx
    5  unavailable: factory unreachable, 5xx, rate-limited (429), or a build that failed with a 5xx
    6  checksum mismatch of a download
  130  interrupted (Ctrl-C); a download's .part stays to resume`;

/** The exit code of a factory answer's status (0 = no answer). */
export function exitCodeForStatus(status: number): number {
  if (status === 404) return EXIT.notFound;
  if (status === 0 || status === 429 || status >= 500) return EXIT.unavailable;
  if (status >= 400) return EXIT.badRequest;
  return EXIT.failure;
}

/** A failure the CLI reports itself: one line on stderr and this exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof FactoryClientError) return exitCodeForStatus(err.status);
  return EXIT.failure;
}

/** One line, whatever the error: the factory's text, or the first line of anything else. */
export function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'failed';
}
