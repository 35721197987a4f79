export { OPENAPI_DOCUMENT } from './document';
export type { Json, JsonObject } from './document';
