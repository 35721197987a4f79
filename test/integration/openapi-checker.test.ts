/**
 * The checker every integration response goes through (test/support/openapi.ts) is not a no-op: documented
 * responses pass, and a wrong status, content type, JSON body, error text or missing header fails. The recording
 * is wired: a response of a server that answers as the factory, received through global fetch or a raw socket, is
 * checked (and the deliberately wrong ones here are taken back out, so this file itself passes).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenApiChecker, parseRawResponse, responseRecorder } from '../support/openapi';
import { rawExchange } from '../support/raw-http';

const checker = new OpenApiChecker();
const TEXT = { 'content-type': 'text/plain; charset=utf-8' };
const JSON_CT = { 'content-type': 'application/json' };
const ID = 'a'.repeat(64);
const build = (extra: Record<string, unknown> = {}) => ({
  id: 'b'.repeat(64),
  schematic: ID,
  version: 'v1.11.3',
  asset: 'metal-amd64.iso',
  state: 'running',
  stage: 'assembling initramfs',
  percent: 50,
  url: `http://127.0.0.1:8080/image/${ID}/v1.11.3/metal-amd64.iso`,
  priority: 'user',
  createdAt: '2026-12-06T15:00:00.000Z',
  updatedAt: '2026-12-06T15:00:01.000Z',
  stages: [{ name: 'assembling initramfs', startedAt: '2026-12-06T15:00:00.500Z' }],
  log: ['2026-12-06T15:00:00.500Z assembling initramfs'],
  ...extra,
});

describe('documented responses pass', () => {
  test.each([
    ['versions', { method: 'GET', url: '/versions', status: 200, headers: JSON_CT, body: '["v1.11.3","v1.12.0"]\n' }],
    ['a schematic 404', { method: 'GET', url: `/image/${ID}/v1.11.3/metal-amd64.iso`, status: 404, headers: TEXT, body: `schematic ID "${ID}" not found\n` }],
    ['a HEAD of an asset', { method: 'HEAD', url: `/image/${ID}/v1.11.3/metal-amd64.iso`, status: 200, headers: { 'content-type': 'application/x-iso9660-image', 'content-disposition': 'attachment', etag: '"x"' } }],
    ['a redirect without a body', { method: 'GET', url: `/image/${ID}/v1.11.3/kernel-amd64`, status: 302, headers: { location: 'http://s3/x', 'content-length': '0' }, body: '' }],
    ['a running build', { method: 'GET', url: `/builds/${'b'.repeat(64)}`, status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(build()) }],
    ['an unknown path', { method: 'GET', url: '/nowhere', status: 404, headers: TEXT, body: '404 page not found\n' }],
    // a raw request-target that is not a path (`GET * HTTP/1.1`, as the fuzz sends) is an unknown path, not `/`
    ['an asterisk-form request', { method: 'GET', url: 'http://127.0.0.1:1*', status: 404, headers: TEXT, body: '404 page not found\n' }],
    ['a wizard page', { method: 'GET', url: '/?target=metal', status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<!doctype html>' }],
    ['another method', { method: 'DELETE', url: '/versions', status: 405, headers: { ...TEXT, allow: 'GET, OPTIONS' }, body: 'Method Not Allowed\n' }],
    ['a registry manifest', { method: 'GET', url: `/v2/installer/${ID}/manifests/v1.11.3`, status: 200, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: '{"schemaVersion":2,"manifests":[]}' }],
    ['the registry ping with extra slashes', { method: 'GET', url: '/v2//', status: 200, headers: {}, body: '' }],
    ['an upstream status passed through by the source-image proxy', { method: 'HEAD', url: '/v2/siderolabs/imager/tags/list', status: 405, headers: {} }],
    ['a source-image proxy error', { method: 'GET', url: '/v2/siderolabs/imager/manifests/v9', status: 404, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}' }],
  ])('%s', (_name, response) => {
    expect(checker.check(response)).toEqual([]);
  });
});

describe('wrong responses fail', () => {
  test.each([
    ['an undocumented status', { method: 'GET', url: '/versions', status: 418, headers: TEXT, body: 'teapot\n' }, /status 418 is not documented/],
    ['an undocumented content type', { method: 'GET', url: '/versions', status: 200, headers: { 'content-type': 'text/html' }, body: '<p>' }, /Content-Type text\/html is not documented/],
    ['a JSON body of the wrong shape', { method: 'GET', url: '/versions', status: 200, headers: JSON_CT, body: '{"versions":[]}' }, /must be array/],
    ['a body that is not JSON', { method: 'GET', url: '/versions', status: 200, headers: JSON_CT, body: '[' }, /not JSON/],
    ['a multi-line error text', { method: 'GET', url: '/versions', status: 500, headers: TEXT, body: 'internal\nserver error\n' }, /must match pattern/],
    ['an error without the trailing newline', { method: 'POST', url: '/builds', status: 400, headers: TEXT, body: 'invalid build request: x' }, /must match pattern/],
    ['a build with a field the contract does not have', { method: 'GET', url: `/builds/${ID}`, status: 200, headers: JSON_CT, body: JSON.stringify(build({ progress: 5 })) }, /additional properties/],
    ['a failed build without its error', { method: 'GET', url: `/builds/${ID}`, status: 200, headers: JSON_CT, body: JSON.stringify(build({ state: 'failed' })) }, /must have required property 'error'/],
    ['a running build with a queue position', { method: 'GET', url: `/builds/${ID}`, status: 200, headers: JSON_CT, body: JSON.stringify(build({ queuePosition: 0 })) }, /must NOT be valid/],
    ['a 202 of /image without Location', { method: 'GET', url: `/image/${ID}/v1.11.3/metal-amd64.iso`, status: 202, headers: { ...JSON_CT, 'preference-applied': 'respond-async' }, body: JSON.stringify(build()) }, /required header Location is missing/],
    ['a body where none is documented', { method: 'GET', url: '/healthz', status: 200, headers: TEXT, body: 'ok\n' }, /documented without a body/],
    ['a 200 for an unknown path', { method: 'GET', url: '/nowhere', status: 200, headers: TEXT, body: 'hello\n' }, /status 200 is not documented/],
    ['a HEAD where only GET is documented', { method: 'HEAD', url: '/versions', status: 200, headers: JSON_CT }, /method not documented/],
  ])('%s', (_name, response, problem) => {
    const problems = checker.check(response);
    expect(problems.join('\n')).toMatch(problem);
  });
});

test('path templates: the most specific documented path wins, a parameter is one non-empty segment', () => {
  expect(checker.matchPath('/v2/siderolabs/imager/manifests/v1.11.3')).toBe('/v2/siderolabs/{image}/manifests/{reference}');
  expect(checker.matchPath(`/v2/installer/${ID}/manifests/v1.11.3`)).toBe('/v2/{image}/{schematic}/manifests/{reference}');
  expect(checker.matchPath(`/builds/${ID}/events`)).toBe('/builds/{id}/events');
  expect(checker.matchPath('/builds//events')).toBeUndefined();
  expect(checker.matchPath('/versions/')).toBeUndefined();
  // the registry path is trimmed of slashes (anchor-api §5.1), other paths are not
  expect(checker.matchPath(`/v2/installer/${ID}/manifests/v1.11.3/`)).toBe('/v2/{image}/{schematic}/manifests/{reference}');
  expect(checker.matchPath('/v2///')).toBe('/v2');
});

test('raw responses are parsed (chunked bodies decoded)', () => {
  const raw = 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n\n\r\n0\r\n\r\n';
  expect(parseRawResponse(raw)).toEqual({ status: 400, headers: { 'content-type': 'text/plain; charset=utf-8', 'transfer-encoding': 'chunked' }, body: 'hello\n' });
});

test('the recording is wired: a wrong answer of a factory, through fetch or a raw socket, is a violation; other servers are ignored', async () => {
  // a server that answers like the factory (its Server header) but with an undocumented JSON body
  const server = http.createServer((req, res) => {
    const body = req.url === '/versions' ? '{"versions":"all"}' : '["v1.11.3"]';
    res.writeHead(200, { Server: req.url === '/not-factory' ? 'other' : 'Image Factory test', 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const recorder = responseRecorder();
  try {
    recorder.takeViolations();
    const checkedBefore = recorder.checked;
    // the test reads the body itself: the check reads its own copy
    expect(await (await fetch(`http://127.0.0.1:${port}/versions`)).json()).toEqual({ versions: 'all' });
    await rawExchange(port, 'GET /versions HTTP/1.1\r\nHost: x\r\n\r\n', { end: true });
    // not the factory (other Server header, origin not registered): not checked
    await (await fetch(`http://127.0.0.1:${port}/not-factory`)).text();
    await recorder.settle();
    const violations = recorder.takeViolations();
    expect(recorder.checked - checkedBefore).toBe(2);
    expect(violations.map((v) => v.request)).toEqual([`GET http://127.0.0.1:${port}/versions`, `GET http://127.0.0.1:${port}/versions (raw)`]);
    expect(violations[0].problems.join()).toMatch(/must be array/);
    expect(violations[0].test).toMatch(/the recording is wired/);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
