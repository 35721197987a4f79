/**
 * jest setupFilesAfterEnv of the integration project: every response a test file receives from a factory through
 * global fetch, test/support/raw-http.ts or the fuzz's node:http client (test/support/response-hooks.ts) is checked
 * against the OpenAPI document (test/support/openapi.ts). Other node:http requests of tests are not seen.
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

// explicit hook timeouts: waiting for bodies still being read must not run into jest's default 5 s
afterEach(async () => {
  await recorder.settle(10_000);
  fail('this test');
}, 20_000);

afterAll(async () => {
  await recorder.settle(30_000);
  if (recorder.checked) process.stderr.write(`[openapi] ${recorder.checked} factory responses checked against the OpenAPI document\n`);
  fail('outside the tests');
}, 40_000);
