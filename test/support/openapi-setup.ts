/**
 * jest setupFilesAfterEnv of the integration project: every response a test file receives from a factory through
 * global fetch (and test/support/raw-http.ts) is checked against the OpenAPI document (test/support/openapi.ts).
 * A test that received an undocumented response fails in its afterEach; responses received outside tests
 * (beforeAll/afterAll) fail the file in afterAll. Responses of other servers (S3, the upstream registry, webhook
 * receivers) are not checked.
 */
import { formatViolations, responseRecorder } from './openapi';
import { listenToResponses } from './response-hooks';

const recorder = responseRecorder();
// factories started by test/support (factory.ts, launcher.ts), raw exchanges of raw-http.ts, node:http answers of the fuzz
listenToResponses({
  factoryStarted: (url) => recorder.noteFactoryOrigin(url),
  rawExchange: (port, head, response) => recorder.observeRaw(port, head, response),
  response: (r) => recorder.observe(r),
});
const realFetch = globalThis.fetch;

globalThis.fetch = async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await realFetch(input, init);
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const url = input instanceof Request ? input.url : String(input);
  try {
    recorder.observeFetch(method, url, res);
  } catch (err) {
    // a fault of the checker fails the test like a violation, not the request the test made
    recorder.noteFault(`${method} ${url}`, err);
  }
  return res;
} as typeof fetch;

const fail = (where: string) => {
  const violations = recorder.takeViolations();
  if (violations.length) throw new Error(`responses not described by the OpenAPI document (${where}):\n${formatViolations(violations)}`);
};

afterEach(async () => {
  await recorder.settle();
  fail('this test');
});

afterAll(async () => {
  await recorder.settle(30_000);
  if (recorder.checked) process.stderr.write(`[openapi] ${recorder.checked} factory responses checked against the OpenAPI document\n`);
  fail('outside the tests');
});
