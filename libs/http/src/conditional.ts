/**
 * Conditional requests (RFC 9110 §13): evaluate If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since
 * against the selected representation, in the order of §13.2.2. If-Range belongs to range handling (./range.ts).
 *
 * Invalid field values: an unparsable entity-tag list matches nothing (If-Match then fails with 412, If-None-Match
 * passes); an invalid HTTP-date makes If-Unmodified-Since / If-Modified-Since ignored, as §13.1.3–4 require.
 */
import {
  EntityTag, RepresentationValidators, httpSeconds, parseEntityTag, parseEntityTagList, parseHttpDate, strongMatch, weakMatch,
} from './validators';

export interface ConditionalHeaders {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

/** `proceed`: perform the method; `not-modified`: answer 304; `precondition-failed`: answer 412. */
export type PreconditionOutcome = 'proceed' | 'not-modified' | 'precondition-failed';

function listMatches(field: string, current: EntityTag | undefined, match: (a: EntityTag, b: EntityTag) => boolean): boolean {
  const list = parseEntityTagList(field);
  if (list === '*') return true; // the representation exists (callers evaluate preconditions only for one that does)
  if (list === undefined || current === undefined) return false;
  return list.some((t) => match(t, current));
}

/**
 * The outcome of the preconditions of a request for an existing representation with the given validators.
 * `method` decides between 304 and 412 for If-None-Match and whether If-Modified-Since applies (GET and HEAD only).
 */
export function evaluatePreconditions(method: string, headers: ConditionalHeaders, current: RepresentationValidators): PreconditionOutcome {
  const etag = current.etag === undefined ? undefined : parseEntityTag(current.etag);
  const safe = method === 'GET' || method === 'HEAD';
  const lastModified = current.lastModified === undefined ? undefined : httpSeconds(current.lastModified);

  // 1. If-Match (strong comparison); 2. otherwise If-Unmodified-Since
  if (headers.ifMatch !== undefined) {
    if (!listMatches(headers.ifMatch, etag, strongMatch)) return 'precondition-failed';
  } else if (headers.ifUnmodifiedSince !== undefined && lastModified !== undefined) {
    const date = parseHttpDate(headers.ifUnmodifiedSince);
    if (date !== undefined && lastModified > httpSeconds(date)) return 'precondition-failed';
  }

  // 3. If-None-Match (weak comparison); 4. otherwise If-Modified-Since, for GET and HEAD
  if (headers.ifNoneMatch !== undefined) {
    if (listMatches(headers.ifNoneMatch, etag, weakMatch)) return safe ? 'not-modified' : 'precondition-failed';
  } else if (safe && headers.ifModifiedSince !== undefined && lastModified !== undefined) {
    const date = parseHttpDate(headers.ifModifiedSince);
    if (date !== undefined && lastModified <= httpSeconds(date)) return 'not-modified';
  }
  return 'proceed';
}
