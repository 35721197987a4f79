/**
 * Every failure of the client is a FactoryClientError: an HTTP answer's status and the one-line text the factory
 * sends with it (the anchor's error style), or status 0 when no answer came (connection refused, reset, DNS).
 */
export class FactoryClientError extends Error {
  override readonly name = 'FactoryClientError';

  constructor(
    /** HTTP status of the answer; 0 when the factory could not be reached */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_MESSAGE_CHARS = 500;

/** The error a non-success answer carries: its first non-empty body line, else the status line. */
export async function errorFromResponse(res: Response): Promise<FactoryClientError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // the body broke off: the status alone still says what failed
  }
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
  const message = line ? line.slice(0, MAX_MESSAGE_CHARS) : `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  return new FactoryClientError(res.status, message);
}

/** A request that got no answer at all. `cause` of fetch errors names the system error (ECONNREFUSED, …). */
export function unreachable(url: string, err: unknown): FactoryClientError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
  return new FactoryClientError(0, `cannot reach ${new URL(url).origin}: ${why}`);
}
