/** Polling for a condition in integration tests: one helper for every "wait until X, or fail saying what". */

export interface UntilOptions {
  /** Give up after this long (ms). */
  ms: number;
  /** Look again every so often (ms). */
  everyMs?: number;
  /** More to say when giving up (e.g. the factory's recent output). */
  context?: () => string;
}

/** Calls `get` until it gives a truthy value (returned), or throws `timed out after … waiting for <what>`. */
export async function until<T>(what: string, get: () => T | undefined | false | Promise<T | undefined | false>, o: UntilOptions): Promise<T> {
  const end = Date.now() + o.ms;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${o.ms} ms waiting for ${what}${o.context ? `\n${o.context()}` : ''}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 100));
  }
}
