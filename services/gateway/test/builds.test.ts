/**
 * Build routes at the gateway over an in-memory build store (the Redis one is proven by test/integration/builds):
 * request parsing, `Prefer`, and the event stream — ids, the first event, the end, a missed publication read from the
 * stream, keepalives, and the cap on streams.
 */
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { Build, buildSubject, progressed, queued, started, succeeded } from '@factory/builds';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import type { AssetRoutes } from '../src/assets';
import { BuildRoutes, GatewayBuilds, parseBuildsRequest, prefersAsync } from '../src/builds';
import { openSse } from '../../../test/support/sse';
import { MemoryBuilds } from '../../../test/support/memory-builds';

const subject = buildSubject(
  { schematicId: 'a'.repeat(64), version: 'v1.11.3', path: 'metal-amd64.iso', kind: 'iso', platform: 'metal', arch: 'amd64', secureboot: false, outFormat: '.iso' } as never,
  'http://factory.test/',
);

async function serve(maxStreams = 10) {
  const memory = new MemoryBuilds();
  const requests = { o: { builds: memory }, current: async () => (await memory.get())?.build } as unknown as GatewayBuilds;
  const metrics = createMetricsRegistry('gateway-test');
  const logger = createLogger('gateway-test', 'silent');
  const builds = new BuildRoutes({ requests, assets: {} as AssetRoutes, watcher: memory as never, maxBuildsPerRequest: 32, maxStreams, metrics, logger, keepaliveMs: 50 });
  const jobs = { call: async () => undefined, workerCount: async () => 1, ping: async () => undefined } as unknown as JobCaller;
  const app = createApp({ jobs, builds, logger, metrics, serverTag: 'test', allowedOrigins: ['*'], maxSchematicBytes: 4096 });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, memory, builds, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Runs `fn` against a gateway serving the build routes, closed afterwards. */
async function withGateway(fn: (gw: Awaited<ReturnType<typeof serve>>) => Promise<void>, maxStreams?: number): Promise<void> {
  const gw = await serve(maxStreams);
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('POST /builds bodies', () => {
  const parse = (body: string) => parseBuildsRequest(Buffer.from(body));
  test('version or versions, assets, nothing else', () => {
    expect(parse('{"schematic":"s","version":"v1.11.3","assets":["a","b"]}')).toEqual({ schematic: 's', versions: ['v1.11.3'], assets: ['a', 'b'] });
    expect(parse('{"schematic":"s","versions":["v1","v2"],"assets":["a"]}')).toEqual({ schematic: 's', versions: ['v1', 'v2'], assets: ['a'] });
  });
  test.each([
    ['{', 'the body is not valid JSON'],
    ['null', 'the body must be a JSON object'],
    ['{"schematic":"s","version":"v","assets":["a"],"x":1}', 'unknown field "x"'],
    ['{"version":"v","assets":["a"]}', '"schematic" must be a string'],
    ['{"schematic":"s","assets":["a"]}', 'exactly one of "version" and "versions" is required'],
    ['{"schematic":"s","version":1,"assets":["a"]}', '"version" must be a string'],
    ['{"schematic":"s","versions":[],"assets":["a"]}', '"versions" must be a non-empty array of strings'],
    ['{"schematic":"s","version":"v","assets":[1]}', '"assets" must be a non-empty array of strings'],
  ])('%s → 400 invalid build request: %s', (body, why) => {
    expect(() => parse(body)).toThrow(`invalid build request: ${why}`);
  });
});

test('Prefer: respond-async among other preferences', () => {
  expect(prefersAsync('respond-async')).toBe(true);
  expect(prefersAsync('return=minimal, Respond-Async; wait=10')).toBe(true);
  expect(prefersAsync(['wait=5', 'respond-async'])).toBe(true);
  expect(prefersAsync('respond-asynchronously')).toBe(false);
  expect(prefersAsync(undefined)).toBe(false);
});

describe('GET /builds/<id>/events', () => {
  const url = (base: string) => `${base}/builds/${subject.id}/events`;

  test('the current state first, then each change with the next id; the stream ends after done', () =>
    withGateway(async (gw) => {
      await gw.memory.change(subject.id, queued(subject, 'user'));
      const stream = openSse(url(gw.base));
      await stream.until(() => true);
      // an idle stream carries keepalive comments
      await waitFor(() => stream.comments.length > 0);
      await gw.memory.change(subject.id, started(subject, 1, 'user', 'w'));
      await gw.memory.change(subject.id, progressed({ stage: 'writing ISO', percent: 85 }));
      await gw.memory.change(subject.id, succeeded(subject, { size: 3, sha256: 'f'.repeat(64) }, 'user'));
      const events = await stream.ended;
      expect(events.map((e) => [e.id, e.event, (JSON.parse(e.data) as Build).state])).toEqual([
        ['1', 'build', 'queued'],
        ['2', 'build', 'running'],
        ['3', 'build', 'running'],
        ['4', 'build', 'done'],
      ]);
      expect(JSON.parse(events[3].data)).toEqual(gw.memory.events[3].build);
      expect(stream.comments[0]).toBe('keepalive');
    }));

  test('a missed publication is read from the stream: no gap; Last-Event-ID replays what came after it', () =>
    withGateway(async (gw) => {
      await gw.memory.change(subject.id, queued(subject, 'user'));
      const stream = openSse(url(gw.base));
      await stream.until(() => true);
      gw.memory.drop = true;
      await gw.memory.change(subject.id, started(subject, 1, 'user', 'w'));
      await gw.memory.change(subject.id, progressed({ stage: 'writing ISO', percent: 85 }));
      await waitFor(() => stream.events.length === 3);
      expect(stream.events.map((e) => e.id)).toEqual(['1', '2', '3']);
      stream.close();
      const again = openSse(url(gw.base), { 'Last-Event-ID': '1' });
      await gw.memory.change(subject.id, succeeded(subject, { size: 3, sha256: 'f'.repeat(64) }, 'user'));
      expect((await again.ended).map((e) => e.id)).toEqual(['2', '3', '4']);
    }));

  test('a Last-Event-ID beyond the record (one of an expired earlier record) starts over with the current state', () =>
    withGateway(async (gw) => {
      await gw.memory.change(subject.id, queued(subject, 'user'));
      await gw.memory.change(subject.id, started(subject, 1, 'user', 'w'));
      await gw.memory.change(subject.id, succeeded(subject, { size: 3, sha256: 'f'.repeat(64) }, 'user'));
      expect((await openSse(url(gw.base), { 'Last-Event-ID': '40' }).ended).map((e) => [e.id, (JSON.parse(e.data) as Build).state])).toEqual([['3', 'done']]);
    }));

  test('beyond the cap a stream is refused with a 503 that says so', () =>
    withGateway(async (gw) => {
      await gw.memory.change(subject.id, queued(subject, 'user'));
      const first = openSse(url(gw.base));
      await first.until(() => true);
      const second = await openSse(url(gw.base)).response;
      expect([second.status, second.headers['retry-after'], second.body]).toEqual([503, '5', 'too many build event streams on this gateway (limit 1); retry later\n']);
      first.close();
      // the slot is free again once the first client is gone
      await waitFor(() => (gw.builds as unknown as { streams: Set<unknown> }).streams.size === 0);
      const third = openSse(url(gw.base));
      expect((await third.response).status).toBe(200);
      gw.builds.closeStreams();
      await third.ended;
    }, 1));
});
