/** HTTP `Range: bytes=…` for blob downloads (one range; anything else is ignored and the whole blob is served). */

export type RangeDecision =
  /** no (usable) Range header: serve the whole body with 200 */
  | { kind: 'full' }
  /** serve bytes start..end (inclusive) with 206 */
  | { kind: 'partial'; start: number; end: number }
  /** 416 with `Content-Range: bytes *\/size` */
  | { kind: 'unsatisfiable' };

const SINGLE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined || header === '') return { kind: 'full' };
  const m = SINGLE.exec(header);
  // Syntactically invalid or multi-range requests are ignored (RFC 9110 §14.2 allows ignoring Range).
  if (!m) return { kind: 'full' };
  const [, a, b] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    // suffix range: the last N bytes
    const n = Number(b);
    if (!Number.isSafeInteger(n)) return { kind: 'full' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (!Number.isSafeInteger(start)) return { kind: 'unsatisfiable' };
  let end = b === '' ? Number.MAX_SAFE_INTEGER : Number(b);
  if (!Number.isSafeInteger(end)) end = Number.MAX_SAFE_INTEGER;
  if (end < start) return { kind: 'full' }; // invalid: last-pos before first-pos
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}
