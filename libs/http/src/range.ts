/**
 * Byte range requests (RFC 9110 §14) for a representation of known size, decided once for every server in the
 * factory (gateway asset downloads, registry blob downloads).
 *
 * The choices, all within what RFC 9110 allows:
 * - A Range field that is not valid `bytes` syntax is ignored (§14.2: "a server MUST ignore a Range header field"
 *   it does not understand/recognise; an invalid range-spec makes the whole ranges-specifier invalid, §14.1.1):
 *   200 with the whole body. That includes `last-pos < first-pos` (`bytes=5-3`), other range units, and garbage.
 * - More than one range is ignored too (§14.2 lets a server ignore Range; serving one whole body beats
 *   multipart/byteranges, which no client of the factory asks for): 200 with the whole body.
 * - One valid range: 206 with `Content-Range: bytes first-last/size`, last clamped to size - 1; a suffix range
 *   `-N` is the last N bytes (the whole body when N ≥ size).
 * - A valid but unsatisfiable range (first-pos ≥ size, a suffix of length 0, any range of an empty body): 416 with
 *   `Content-Range: bytes *\/size` (§15.5.17).
 * - If-Range (§13.1.5) that does not match the current representation means "ignore Range": 200, whole body.
 *
 * Only GET defines range handling (§14.2); callers apply the decision to GET (and may mirror its status on HEAD).
 */
import { parseEntityTag, parseHttpDate, RepresentationValidators, httpSeconds, strongMatch } from './validators';

export type RangeDecision =
  /** no usable Range: 200 with the whole body */
  | { kind: 'full' }
  /** 206 with bytes start..end (inclusive) */
  | { kind: 'partial'; start: number; end: number }
  /** 416 with `Content-Range: bytes *\/size` */
  | { kind: 'unsatisfiable' };

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };

const BYTES_UNIT = /^bytes=/i;
const INT_RANGE = /^(\d+)-(\d*)$/;
const SUFFIX_RANGE = /^-(\d+)$/;

/** The `Range` field alone, against a representation of `size` bytes (see the module comment for the rules). */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return FULL;
  const value = header.trim();
  if (!BYTES_UNIT.test(value)) return FULL;
  // range-set = 1#range-spec: empty list elements are allowed and skipped (RFC 9110 §5.6.1.2)
  const specs = value
    .slice('bytes='.length)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length !== 1) return FULL;
  const spec = specs[0];
  // BigInt: digits are unbounded in the grammar, and a huge first-pos is unsatisfiable rather than invalid
  const total = BigInt(size);
  const suffix = SUFFIX_RANGE.exec(spec);
  if (suffix) {
    const length = BigInt(suffix[1]);
    if (length === 0n || total === 0n) return UNSATISFIABLE;
    const start = length >= total ? 0n : total - length;
    return { kind: 'partial', start: Number(start), end: size - 1 };
  }
  const int = INT_RANGE.exec(spec);
  if (!int) return FULL;
  const first = BigInt(int[1]);
  const last = int[2] === '' ? undefined : BigInt(int[2]);
  if (last !== undefined && last < first) return FULL;
  if (first >= total) return UNSATISFIABLE;
  const end = last === undefined || last >= total ? total - 1n : last;
  return { kind: 'partial', start: Number(first), end: Number(end) };
}

/**
 * If-Range (§13.1.5): true when the Range may be honoured — no If-Range, or it names the current representation: an
 * entity tag that strongly matches the current ETag, or an HTTP-date equal to Last-Modified. A weak tag, a date
 * without a known Last-Modified, or anything unparsable never matches.
 */
export function ifRangeAllowsRange(ifRange: string | undefined, current: RepresentationValidators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) {
    const sent = parseEntityTag(value);
    const have = current.etag === undefined ? undefined : parseEntityTag(current.etag);
    return sent !== undefined && have !== undefined && strongMatch(sent, have);
  }
  const date = parseHttpDate(value);
  return date !== undefined && current.lastModified !== undefined && httpSeconds(date) === httpSeconds(current.lastModified);
}

/** Range + If-Range of one request against a representation of `size` bytes with the given validators. */
export function rangeForRequest(
  headers: { range?: string; ifRange?: string },
  representation: RepresentationValidators & { size: number },
): RangeDecision {
  if (headers.range === undefined) return FULL;
  if (!ifRangeAllowsRange(headers.ifRange, representation)) return FULL;
  return decideRange(headers.range, representation.size);
}

/** `Content-Range` for a 206 (`bytes first-last/size`) or a 416 (`bytes *\/size`); undefined for a 200. */
export function contentRange(decision: Exclude<RangeDecision, { kind: 'full' }>, size: number): string;
export function contentRange(decision: RangeDecision, size: number): string | undefined;
export function contentRange(decision: RangeDecision, size: number): string | undefined {
  switch (decision.kind) {
    case 'partial':
      return `bytes ${decision.start}-${decision.end}/${size}`;
    case 'unsatisfiable':
      return `bytes */${size}`;
    case 'full':
      return undefined;
  }
}
