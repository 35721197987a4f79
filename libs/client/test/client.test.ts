import { createHash } from 'node:crypto';
import { Build, FactoryClient, FactoryClientError } from '@factory/client';
import { FakeFactory, FakeFactoryOptions, startFakeFactory } from '../../../test/support/fake-factory';

let fake: FakeFactory;
let client: FactoryClient;
let schematic: string;

beforeEach(async () => {
  fake = await startFakeFactory();
  client = new FactoryClient({ baseUrl: fake.url });
  schematic = (await client.createSchematic('customization:\n  extraKernelArgs: [vga=791]\n')).id;
});
afterEach(() => fake.close());

/** A fake factory started with `opts` (replacing the default one), and a build of kernel-amd64 queued on it. */
async function kernelBuildOn(opts: FakeFactoryOptions): Promise<Build> {
  await fake.close();
  fake = await startFakeFactory(opts);
  client = new FactoryClient({ baseUrl: fake.url });
  schematic = (await client.createSchematic('a: b\n')).id;
  return (await client.createBuilds({ schematic, version: 'v1.12.2', assets: ['kernel-amd64'] }))[0];
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe('FactoryClient', () => {
  it('creates and reads schematics, lists versions and extensions', async () => {
    const created = await client.createSchematic({ customization: { extraKernelArgs: ['a'] } });
    expect(created.id).toMatch(/^[0-9a-f]{64}$/);
    expect(fake.requests.at(-1)).toMatchObject({ method: 'POST', path: '/schematics' });
    expect(await client.getSchematic(created.id)).toBe('{"customization":{"extraKernelArgs":["a"]}}');
    expect(await client.versions()).toEqual(['v1.9.5', 'v1.11.3', 'v1.12.2']);
    expect((await client.extensions('v1.12.2'))[0].name).toBe('siderolabs/gvisor');
  });

  it('turns error answers into FactoryClientError with the one-line text', async () => {
    await expect(client.getSchematic('0'.repeat(64))).rejects.toEqual(new FactoryClientError(404, 'schematic not found'));
    await expect(client.extensions('v1.0.0')).rejects.toMatchObject({ status: 404, message: 'version 1.0.0 is not available' });
    await expect(client.createBuilds({ schematic, version: 'v1.12.2', assets: ['nope.bin'] })).rejects.toMatchObject({
      status: 400,
      message: 'error parsing profile from path: invalid profile path: "nope.bin"',
    });
  });

  it('reports an unreachable factory as status 0', async () => {
    await fake.close();
    const err = await client.versions().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FactoryClientError);
    expect(err).toMatchObject({ status: 0, message: expect.stringMatching(/^cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/) });
  });

  it('creates builds and follows one from queued through its stages to done', async () => {
    const [build] = await client.createBuilds({ schematic, version: 'v1.12.2', assets: ['metal-amd64.iso'] });
    expect(build).toMatchObject({ schematic, version: 'v1.12.2', asset: 'metal-amd64.iso', state: 'queued' });
    const seen = await collect(client.buildEvents(build.id));
    expect(seen[0].state).toBe('queued');
    expect(seen.filter((b) => b.state === 'running').map((b) => b.stage)).toEqual(['fetching imager', 'assembling initramfs', 'writing image']);
    const done = seen.at(-1)!;
    expect(done.state).toBe('done');
    expect(done.sha256).toBe(createHash('sha256').update(fake.assetBytes(schematic, 'v1.12.2', 'metal-amd64.iso')).digest('hex'));
    expect(await client.getBuild(build.id)).toEqual(done);
    expect((await client.listBuilds({ schematic })).map((b) => b.id)).toEqual([build.id]);
  });

  it('reconnects a broken event stream with Last-Event-ID and misses nothing', async () => {
    const build = await kernelBuildOn({ dropEventsAfter: 2 });
    const seen = await collect(client.buildEventStream(build.id, { reconnectDelayMs: 5 }));
    expect(seen.map((e) => e.eventId)).toEqual(['1', '2', '3', '4', '5']);
    expect(seen.at(-1)!.build.state).toBe('done');
    const eventRequests = fake.requests.filter((r) => r.path.endsWith('/events'));
    expect(eventRequests.map((r) => r.headers['last-event-id'])).toEqual([undefined, '2', '4']);
  });

  it('reopens a stream that falls silent (no event, no keepalive) from its last event', async () => {
    const build = await kernelBuildOn({ stallEventsAfter: 3 });
    const seen = await collect(client.buildEventStream(build.id, { idleTimeoutMs: 150, reconnectDelayMs: 5 }));
    expect(seen.map((e) => e.eventId)).toEqual(['1', '2', '3', '4', '5']);
    expect(fake.requests.filter((r) => r.path.endsWith('/events')).map((r) => r.headers['last-event-id'])).toEqual([undefined, '3']);
  });

  it('says the stream was silent when the reconnects run out', async () => {
    const build = await kernelBuildOn({ stallEventsAfter: 0 });
    await expect(collect(client.buildEvents(build.id, { idleTimeoutMs: 50, reconnectDelayMs: 1, maxReconnects: 1 }))).rejects.toEqual(
      new FactoryClientError(0, `event stream of build ${build.id} was silent for 50 ms`),
    );
  });

  it('resumes the event stream after a given event ID', async () => {
    const [build] = await client.createBuilds({ schematic, version: 'v1.12.2', assets: ['kernel-amd64'] });
    await collect(client.buildEvents(build.id));
    const rest = await collect(client.buildEventStream(build.id, { lastEventId: '3' }));
    expect(rest.map((e) => e.eventId)).toEqual(['4', '5']);
  });

  it('ends the event stream with the error of a 4xx answer, without retrying', async () => {
    const id = 'f'.repeat(64);
    await expect(collect(client.buildEvents(id, { reconnectDelayMs: 1 }))).rejects.toEqual(new FactoryClientError(404, `build ${id} not found`));
    expect(fake.requests.filter((r) => r.path.endsWith('/events'))).toHaveLength(1);
  });

  it('gives up after the reconnects in a row allowed, with why the stream ended', async () => {
    const [build] = await client.createBuilds({ schematic, version: 'v1.12.2', assets: ['kernel-amd64'] });
    const gone = new FactoryClient({ baseUrl: fake.url, fetch: async (input, init) => (String(input).endsWith('/events') ? new Response('overloaded\n', { status: 503 }) : fetch(input, init)) });
    await expect(collect(gone.buildEvents(build.id, { reconnectDelayMs: 1, maxReconnects: 2 }))).rejects.toEqual(new FactoryClientError(503, 'overloaded'));
  });

  it('downloads asynchronously: 202 with the build when cold, then the bytes, a range, and the recorded sha256', async () => {
    const first = await client.download(schematic, 'v1.12.2', 'metal-amd64.iso', { respondAsync: true });
    expect(first.kind).toBe('build');
    const build = (first as { build: Build }).build;
    expect(fake.requests.at(-1)!.headers.prefer).toBe('respond-async');
    await collect(client.buildEvents(build.id));
    const bytes = fake.assetBytes(schematic, 'v1.12.2', 'metal-amd64.iso');
    const whole = await client.download(schematic, 'v1.12.2', 'metal-amd64.iso', { respondAsync: true });
    if (whole.kind !== 'bytes') throw new Error(`expected bytes, got ${whole.kind}`);
    expect({ status: whole.status, start: whole.start, total: whole.total }).toEqual({ status: 200, start: 0, total: bytes.length });
    expect((await readAll(whole.body)).equals(bytes)).toBe(true);
    const tail = await client.download(schematic, 'v1.12.2', 'metal-amd64.iso', { range: { start: 1000 } });
    if (tail.kind !== 'bytes') throw new Error(`expected bytes, got ${tail.kind}`);
    expect({ status: tail.status, start: tail.start, total: tail.total, length: tail.length }).toEqual({ status: 206, start: 1000, total: bytes.length, length: bytes.length - 1000 });
    expect((await readAll(tail.body)).equals(bytes.subarray(1000))).toBe(true);
    expect(await client.download(schematic, 'v1.12.2', 'metal-amd64.iso', { range: { start: bytes.length } })).toEqual({ kind: 'unsatisfiable', total: bytes.length });
    expect(await client.checksum(schematic, 'v1.12.2', 'metal-amd64.iso')).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('builds URLs under the base URL (a path prefix kept) and the installer reference for the version', () => {
    const prefixed = new FactoryClient({ baseUrl: 'https://factory.example:8443/tf/' });
    expect(prefixed.assetUrl('abc', 'v1.12.2', 'metal-amd64.iso')).toBe('https://factory.example:8443/tf/image/abc/v1.12.2/metal-amd64.iso');
    expect(prefixed.pxeUrl('abc', 'v1.12.2', 'metal-amd64')).toBe('https://factory.example:8443/tf/pxe/abc/v1.12.2/metal-amd64');
    expect(prefixed.installerRef('abc', '1.12.2')).toBe('factory.example:8443/metal-installer/abc:v1.12.2');
    expect(prefixed.installerRef('abc', 'v1.9.5', { platform: 'aws', secureboot: true })).toBe('factory.example:8443/installer-secureboot/abc:v1.9.5');
    expect(() => prefixed.installerRef('abc', 'latest')).toThrow(new FactoryClientError(400, 'invalid version "latest"'));
    expect(() => new FactoryClient({ baseUrl: 'localhost:8080' })).toThrow('invalid factory URL "localhost:8080" (expected http:// or https://)');
  });
});
