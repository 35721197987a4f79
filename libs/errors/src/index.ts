/**
 * A FactoryError carries the HTTP status and the exact one-line message a client should see. Handlers throw it for
 * permanent failures (bad input, not found); the queue layer turns it into a Reply so the job is not retried, and
 * the caller re-throws it on its side.
 */
export class FactoryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'FactoryError';
  }
}

export const badRequest = (msg: string) => new FactoryError(400, msg);
export const notFound = (msg: string) => new FactoryError(404, msg);
export const unavailable = (msg: string) => new FactoryError(503, msg);

export function isFactoryError(err: unknown): err is FactoryError {
  return err instanceof FactoryError || (typeof err === 'object' && err !== null && (err as { name?: string }).name === 'FactoryError' && typeof (err as { status?: unknown }).status === 'number');
}

/**
 * The job finished and was removed before this caller could read its result (build jobs are removed on completion;
 * their result is the published object). The caller should look for the result where the job publishes it.
 */
export class JobVanishedError extends FactoryError {
  constructor(jobId: string) {
    super(503, `job ${jobId} finished before its result could be read`);
    this.name = 'FactoryError';
  }
}
