/**
 * The factory's OpenAPI 3.1 document: every public route of the gateway (the anchor's, and the build, pre-warm and
 * webhook API of issue 14) and, in summary, the `/v2` registry. The gateway serves it at `GET /openapi.json`; the
 * integration tests validate every response they receive from a factory against it (test/support/openapi.ts), so
 * a route, status, content type or body shape that changes without this document fails the tests.
 *
 * Conventions the document relies on (kept here once):
 * - Errors are the anchor's: a status with a one-line `text/plain; charset=utf-8` body ending in `\n` (`ErrorText`).
 * - JSON bodies of the anchor's routes are `application/json` (no charset); the issue 14 routes may add
 *   `; charset=utf-8` (a media-type key without parameters accepts any parameters).
 * - Schemas are JSON Schema 2020-12 (the 3.1 dialect) and use only keywords a plain 2020-12 validator knows, so the
 *   tests can check bodies with ajv directly.
 */
export type Json = null | boolean | number | string | Json[] | {
    [key: string]: Json;
};
export type JsonObject = {
    [key: string]: Json;
};
export declare const OPENAPI_DOCUMENT: JsonObject;
//# sourceMappingURL=document.d.ts.map