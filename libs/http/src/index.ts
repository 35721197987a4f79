/**
 * @factory/http: HTTP semantics (RFC 9110) the factory's servers share, as pure functions over header values —
 * byte ranges with If-Range, conditional requests, entity tags and HTTP-dates, and the one per-request decision
 * (preconditions, then Range) that servers apply; and the bounded server every public listener runs.
 */
export { decideRange, ifRangeAllowsRange, rangeForRequest, contentRange } from './range';
export type { RangeDecision } from './range';
export { evaluatePreconditions } from './conditional';
export type { ConditionalHeaders, PreconditionOutcome } from './conditional';
export { conditionalHeadersOf, decideRequest, hasPreconditions } from './request';
export type { RequestDecision, RequestHeaderFields } from './request';
export {
  parseEntityTag, parseEntityTagList, strongMatch, weakMatch, parseHttpDate, formatHttpDate, httpSeconds,
} from './validators';
export type { EntityTag, RepresentationValidators } from './validators';
export { createBoundedServer, readRequestBody } from './server';
export type { ReceiveLimits } from './server';
export { errorTextLine } from './error-text';
