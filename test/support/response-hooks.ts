/**
 * Where test helpers announce the factories they start and the raw exchanges they make, for whoever listens: the
 * OpenAPI recording of the integration tests (test/support/openapi-setup.ts). Without a listener (the fuzz CLI, the
 * unit tests) announcing costs nothing. No dependencies, so every helper may import it.
 */
export interface ResponseListener {
  /** a factory's gateway base URL: its responses are the API's */
  factoryStarted(url: string): void;
  /** a raw-socket exchange with 127.0.0.1:`port`: the request `head` as sent and the `response` (latin1) */
  rawExchange(port: number, head: string, response: string): void;
  /** a response a helper received through node:http (lower-case header names; body when it was kept) */
  response(r: AnnouncedResponse): void;
}

export interface AnnouncedResponse {
  method: string;
  url: string;
  status: number;
  headers: Record<string, string>;
  body?: string;
}

const LISTENER = Symbol.for('factory.test.responseListener');
type WithListener = typeof globalThis & { [LISTENER]?: ResponseListener };

export function listenToResponses(listener: ResponseListener | undefined): void {
  (globalThis as WithListener)[LISTENER] = listener;
}

export function announceFactory(url: string): void {
  (globalThis as WithListener)[LISTENER]?.factoryStarted(url);
}

export function announceRawExchange(port: number, head: Buffer | string, response: string): void {
  (globalThis as WithListener)[LISTENER]?.rawExchange(port, typeof head === 'string' ? head : head.toString('latin1'), response);
}

export function announceResponse(r: AnnouncedResponse): void {
  (globalThis as WithListener)[LISTENER]?.response(r);
}
