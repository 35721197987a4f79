/**
 * Issue 14 item 1: build resources against the five services on Redis, s3rver and the demo releases (one build slot:
 * BUILD_CONCURRENCY=1, so a build can be seen queued behind another). Builds are followed over Server-Sent Events as
 * a client would; the build-worker's own metric counts how many builds really ran.
 */
import { createHash } from 'node:crypto';
import type { Build } from '@factory/builds';
import { spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../support/procs';
import { ROOT, S3Factory, startFactoryOnS3, waitReady } from '../support/factory';
import { openSse, SseEvent } from '../support/sse';

jest.setTimeout(300_000);

let env: S3Factory;
let workerMetrics: number;
let schematic: string;
/** A second gateway on the same Redis: builds are cluster-wide. */
let gateway2: ChildProcess;
let gateway2Url: string;

beforeAll(async () => {
  workerMetrics = await freePort();
  env = await startFactoryOnS3({
    tmpPrefix: 'builds-',
    env: () => ({ BUILD_CONCURRENCY: '1' }),
    perService: { 'build-worker': { METRICS_PORT: String(workerMetrics) }, gateway: { FACTORY_MAX_BUILDS_PER_REQUEST: '32' } },
  });
  const port2 = await freePort();
  gateway2 = spawn(process.execPath, [path.join(ROOT, 'services', 'gateway', 'dist', 'main.js')], { env: { ...env.factory.env, PORT: String(port2) }, stdio: 'ignore' });
  gateway2Url = `http://127.0.0.1:${port2}`;
  await waitReady(gateway2Url, 30_000);
  const created = await fetch(url('/schematics'), { method: 'POST', body: JSON.stringify({ customization: { extraKernelArgs: [`builds-test-${Date.now()}`] } }) });
  schematic = ((await created.json()) as { id: string }).id;
});

afterAll(async () => {
  if (gateway2 && gateway2.exitCode === null) {
    const exited = new Promise((r) => gateway2.once('exit', r));
    gateway2.kill('SIGTERM');
    await exited;
  }
  await env?.stop();
});

const url = (p: string) => `${env.factory.url}${p}`;
const postBuilds = (body: unknown) => fetch(url('/builds'), { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
const text = async (res: Response) => [res.status, await res.text()] as const;
const buildsOf = (events: SseEvent[]) => events.map((e) => JSON.parse(e.data) as Build);

/** Built assets of an output kind that completed ok, as the build-worker counts them. */
async function built(kind: string): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${workerMetrics}/metrics`)).text();
  const m = new RegExp(`image_factory_assets_built_total\\{[^}]*kind="${kind}"[^}]*outcome="ok"[^}]*\\} (\\d+)`).exec(body);
  return m ? Number(m[1]) : 0;
}

/** Ids 1, 2, 3 … without a gap from the first received, all `event: build`. */
function expectContiguous(events: SseEvent[]): void {
  const ids = events.map((e) => Number(e.id));
  expect(events.every((e) => e.event === 'build')).toBe(true);
  expect(ids).toEqual(ids.map((_, i) => ids[0] + i));
}

/** Stages of ISO and disk image builds, in order (each output skips some). */
const STAGE_ORDER = [
  /^starting$/, /^fetching imager$/, /^(preparing extensions|fetching \d+ extension\(s\))$/, /^assembling initramfs$/, /^assembling UKI$/, /^signing systemd-boot$/,
  /^writing ISO$/, /^writing disk image$/, /^converting to /, /^compressing /, /^hashing$/, /^uploading$/, /^signing$/,
];
const rank = (stage: string) => STAGE_ORDER.findIndex((r) => r.test(stage));

/** queued … → running … → done, stages in order, percent never going down. */
function expectLifecycle(builds: Build[], requiredStages: string[]): void {
  const states = builds.map((b) => b.state);
  expect(states[states.length - 1]).toBe('done');
  expect(states.join(' ')).toMatch(/^(queued )*(running )+done$/);
  const running = builds.filter((b) => b.state === 'running');
  const percents = running.map((b) => b.percent ?? 0);
  expect(percents).toEqual([...percents].sort((a, b) => a - b));
  const stages = running.map((b) => b.stage!).filter((s, i, all) => i === 0 || all[i - 1] !== s);
  expect(new Set(stages).size).toBe(stages.length);
  const order = stages.map(rank);
  expect(order.every((i) => i >= 0)).toBe(true);
  expect(order).toEqual([...order].sort((a, b) => a - b));
  for (const s of requiredStages) expect(stages).toContain(s);
  const done = builds[builds.length - 1];
  expect(done.percent).toBe(100);
  expect(done.stages.map((s) => s.name)).toEqual(stages);
  expect(done.stages.every((s) => typeof s.durationMs === 'number')).toBe(true);
}

describe('build resources', () => {
  let blocker: Build;
  let target: Build;
  let targetEvents: SseEvent[];

  test('POST /builds → 202 + Location; a subscriber sees the build queued, running stage by stage, then done; reconnecting with Last-Event-ID misses nothing', async () => {
    // The blocker takes the one build slot: a disk image, several seconds of work.
    const t0 = Date.now();
    const res = await postBuilds({ schematic, version: 'v1.11.3', assets: ['metal-amd64.raw.zst'] });
    expect(res.status).toBe(202);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = (await res.json()) as { builds: Build[] };
    expect(body.builds).toHaveLength(1);
    blocker = body.builds[0];
    expect(res.headers.get('location')).toBe(`/builds/${blocker.id}`);
    expect(blocker).toMatchObject({ schematic, version: 'v1.11.3', asset: 'metal-amd64.raw.zst', priority: 'user', url: `http://${env.host}/image/${schematic}/v1.11.3/metal-amd64.raw.zst` });
    expect(['queued', 'running']).toContain(blocker.state);

    // Follow it live, drop the connection after two events, reconnect with the last id received.
    const first = openSse(url(`/builds/${blocker.id}/events`));
    expect((await first.response).headers['content-type']).toBe('text/event-stream; charset=utf-8');
    // the first progress a recipe reports (past the worker's `starting`)
    const isProgress = (b: Build) => (b.state === 'running' && b.stage !== 'starting') || b.state === 'done';
    const seen = await first.until((e) => isProgress(buildsOf([e])[0]));
    const liveProgress = seen.find((e) => isProgress(buildsOf([e])[0]))!;
    const head = [...first.events];
    first.close();
    const second = openSse(url(`/builds/${blocker.id}/events`), { 'Last-Event-ID': head[head.length - 1].id! });
    const tail = await second.ended;
    expect(tail.length).toBeGreaterThan(0);
    const joined = [...head, ...tail];
    expectContiguous(joined);
    // the whole history replayed afterwards (Last-Event-ID: 0) is what the two connections saw together
    const replay = await openSse(url(`/builds/${blocker.id}/events`), { 'Last-Event-ID': '0' }).ended;
    expect(replay.map((e) => [e.id, e.data])).toEqual(expect.arrayContaining(joined.map((e) => [e.id, e.data])));
    expectContiguous(replay);
    expect(replay[0].id).toBe('1');
    expect(buildsOf(replay)[0].state).toBe('queued');
    expectLifecycle(buildsOf(replay), ['starting', 'fetching imager', 'hashing', 'uploading', 'signing']);
    const history = buildsOf(replay);
    const firstRunning = history.find((b) => b.state === 'running')!;
    const firstProgress = history.find(isProgress)!;
    process.stdout.write(
      `[builds] POST /builds → running ${Date.parse(firstRunning.updatedAt) - t0} ms, → first progress event ("${firstProgress.stage}") ` +
        `${Date.parse(firstProgress.updatedAt) - t0} ms (record times); a subscriber connected right after the 202 received its first progress event ${liveProgress.at - t0} ms after the POST\n`,
    );
  });

  test('two subscribers (on two gateways) and a concurrent GET /image share one build: queued behind another, then running, then done with the sha256 of the bytes served', async () => {
    const isosBefore = await built('iso');
    // keep the slot busy again so the ISO waits its turn
    const busy = (await (await postBuilds({ schematic, version: 'v1.12.2', assets: ['metal-amd64.raw.zst'] })).json()) as { builds: Build[] };
    expect(busy.builds[0].state).not.toBe('done');
    const busyStream = openSse(url(`/builds/${busy.builds[0].id}/events`));
    await busyStream.until((e) => buildsOf([e])[0].state === 'running');
    busyStream.close();
    const res = await postBuilds({ schematic, version: 'v1.11.3', assets: ['metal-amd64.iso'] });
    expect(res.status).toBe(202);
    target = ((await res.json()) as { builds: Build[] }).builds[0];
    expect(target.state).toBe('queued');
    expect(target.queuePosition).toBe(0);

    const a = openSse(url(`/builds/${target.id}/events`));
    // the other subscriber follows it through the other gateway
    const b = openSse(`${gateway2Url}/builds/${target.id}/events`);
    const download = fetch(url(`/image/${schematic}/v1.11.3/metal-amd64.iso`), { redirect: 'manual' });
    const [eventsA, eventsB, got] = await Promise.all([a.ended, b.ended, download]);
    targetEvents = eventsA;
    expectContiguous(eventsA);
    expectContiguous(eventsB);
    const builds = buildsOf(eventsA);
    process.stdout.write(`[builds] ISO events: ${builds.map((x, i) => `${eventsA[i].id}:${x.state}${x.queuePosition !== undefined ? `#${x.queuePosition}` : ''}${x.stage ? `/${x.stage}` : ''}${x.percent !== undefined ? `/${x.percent}%` : ''}${x.bytes !== undefined ? `/${x.bytes}B` : ''}`).join(' ')}\n`);
    expect(builds[0]).toMatchObject({ state: 'queued', queuePosition: 0 });
    expectLifecycle(builds, ['starting', 'fetching imager', 'assembling initramfs', 'writing ISO', 'uploading', 'signing']);
    expect(buildsOf(eventsB).pop()).toEqual(builds[builds.length - 1]);

    expect(got.status).toBe(302);
    const bytes = Buffer.from(await (await fetch(got.headers.get('location')!)).arrayBuffer());
    const done = builds[builds.length - 1];
    expect(done.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(done.size).toBe(bytes.length);
    expect(await built('iso')).toBe(isosBefore + 1);
    // the record agrees on both gateways, and asking again for a stored asset is a done build without a job
    expect(await (await fetch(url(`/builds/${target.id}`))).json()).toEqual(done);
    expect(await (await fetch(`${gateway2Url}/builds/${target.id}`)).json()).toEqual(done);
    const again = (await (await postBuilds({ schematic, version: 'v1.11.3', assets: ['metal-amd64.iso'] })).json()) as { builds: Build[] };
    expect(again.builds[0]).toMatchObject({ id: target.id, state: 'done', size: done.size, sha256: done.sha256 });
    expect(await built('iso')).toBe(isosBefore + 1);
  });

  test('metrics: queue depth by state, build durations by output kind and queue waits (build-worker); event streams (gateway)', async () => {
    const worker = await (await fetch(`http://127.0.0.1:${workerMetrics}/metrics`)).text();
    for (const state of ['wait', 'prioritized', 'active', 'delayed', 'failed']) expect(worker).toMatch(new RegExp(`factory_queue_jobs\\{[^}]*queue="build",state="${state}"[^}]*\\} \\d+`));
    expect(worker).toMatch(/image_factory_assets_build_latency_seconds_count\{[^}]*kind="iso"[^}]*\} 1\n/);
    expect(worker).toMatch(/image_factory_assets_build_latency_seconds_count\{[^}]*kind="image"[^}]*\} [1-9]/);
    expect(worker).toMatch(/factory_build_queue_wait_seconds_count\{[^}]*priority="user"[^}]*\} [1-9]/);
    const gateway = await (await fetch(url('/metrics'))).text();
    expect(gateway).toMatch(/factory_build_event_streams\{[^}]*\} 0/);
    expect(gateway).toMatch(/factory_build_event_streams_refused_total\{[^}]*\} 0/);
  });

  test('Prefer: respond-async → 202 + Location + the build; it reaches done; a stored asset is answered as usual', async () => {
    const path = `/image/${schematic}/v1.12.2/kernel-amd64`;
    const res = await fetch(url(path), { redirect: 'manual', headers: { Prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    expect(res.headers.get('preference-applied')).toBe('respond-async');
    const build = (await res.json()) as Build;
    expect(res.headers.get('location')).toBe(`/builds/${build.id}`);
    expect(build).toMatchObject({ schematic, version: 'v1.12.2', asset: 'kernel-amd64' });
    expect(['queued', 'running']).toContain(build.state);
    const deadline = Date.now() + 120_000;
    let current = build;
    while (current.state !== 'done' && current.state !== 'failed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      current = (await (await fetch(url(res.headers.get('location')!))).json()) as Build;
    }
    expect(current.state).toBe('done');
    const stored = await fetch(url(path), { redirect: 'manual', headers: { Prefer: 'respond-async' } });
    expect(stored.status).toBe(302);
    const kernel = Buffer.from(await (await fetch(stored.headers.get('location')!)).arrayBuffer());
    expect(createHash('sha256').update(kernel).digest('hex')).toBe(current.sha256);
  });

  test('GET /builds lists recent builds newest first, by schematic and version', async () => {
    const all = ((await (await fetch(url(`/builds?schematic=${schematic}`))).json()) as { builds: Build[] }).builds;
    expect(all.map((b) => b.asset)).toEqual(['kernel-amd64', 'metal-amd64.iso', 'metal-amd64.raw.zst', 'metal-amd64.raw.zst']);
    const created = all.map((b) => Date.parse(b.createdAt));
    expect(created).toEqual([...created].sort((x, y) => y - x));
    const v112 = ((await (await fetch(url(`/builds?schematic=${schematic}&version=1.12.2`))).json()) as { builds: Build[] }).builds;
    expect(v112.map((b) => [b.version, b.asset])).toEqual([
      ['v1.12.2', 'kernel-amd64'],
      ['v1.12.2', 'metal-amd64.raw.zst'],
    ]);
    expect(((await (await fetch(url('/builds?limit=1'))).json()) as { builds: Build[] }).builds).toHaveLength(1);
    expect(await text(await fetch(url('/builds?limit=0')))).toEqual([400, 'invalid limit "0": expected a number from 1 to 100\n']);
    // a reconnect after the end replays nothing and ends at once
    const last = targetEvents[targetEvents.length - 1].id!;
    expect(await openSse(url(`/builds/${target.id}/events`), { 'Last-Event-ID': last }).ended).toEqual([]);
  });

  test('bad input: the texts of /image for the same asset, and the build API own 4xx texts; nothing is queued', async () => {
    const imageText = async (s: string, v: string, a: string) => text(await fetch(url(`/image/${s}/${v}/${a}`), { redirect: 'manual' }));
    const cases: Array<[string, string, string]> = [
      ['0'.repeat(64), 'v1.11.3', 'metal-amd64.iso'],
      [schematic, 'abc', 'metal-amd64.iso'],
      [schematic, 'v1.4.0', 'kernel-amd64'],
      [schematic, 'v1.11.3', 'metal-amd64.nope'],
    ];
    for (const [s, v, a] of cases) {
      const expected = await imageText(s, v, a);
      expect(expected[0]).toBeGreaterThanOrEqual(400);
      expect(expected[0]).toBeLessThan(500);
      expect(await text(await postBuilds({ schematic: s, version: v, assets: [a] }))).toEqual(expected);
    }
    // one bad asset among good ones: the request is refused as a whole, nothing is queued
    const fresh = ((await (await fetch(url('/schematics'), { method: 'POST', body: JSON.stringify({ customization: { extraKernelArgs: [`builds-bad-${Date.now()}`] } }) })).json()) as { id: string }).id;
    expect(await text(await postBuilds({ schematic: fresh, versions: ['v1.11.3', 'v1.12.2'], assets: ['kernel-amd64', 'metal-amd64.nope'] }))).toEqual([400, 'error parsing profile from path: invalid profile path: "metal-amd64.nope"\n']);
    expect(((await (await fetch(url(`/builds?schematic=${fresh}`))).json()) as { builds: Build[] }).builds).toEqual([]);

    const expectations: Array<[unknown, number, string]> = [
      ['{"schematic":', 400, 'invalid build request: the body is not valid JSON'],
      ['[]', 400, 'invalid build request: the body must be a JSON object'],
      [{ schematic, version: 'v1.11.3', assets: ['kernel-amd64'], extra: 1 }, 400, 'invalid build request: unknown field "extra"'],
      [{ schematic, assets: ['kernel-amd64'] }, 400, 'invalid build request: exactly one of "version" and "versions" is required'],
      [{ schematic, version: 'v1.11.3', versions: ['v1.11.3'], assets: ['kernel-amd64'] }, 400, 'invalid build request: exactly one of "version" and "versions" is required'],
      [{ schematic: 1, version: 'v1.11.3', assets: ['kernel-amd64'] }, 400, 'invalid build request: "schematic" must be a string'],
      [{ schematic, version: 'v1.11.3', assets: [] }, 400, 'invalid build request: "assets" must be a non-empty array of strings'],
      [{ schematic, versions: 'v1.11.3', assets: ['kernel-amd64'] }, 400, 'invalid build request: "versions" must be a non-empty array of strings'],
      [{ schematic, versions: ['v1.11.3', 'v1.12.2'], assets: Array.from({ length: 17 }, () => 'kernel-amd64') }, 400, 'too many builds in one request: 34 (limit 32)'],
    ];
    for (const [body, status, message] of expectations) expect(await text(await postBuilds(body))).toEqual([status, `${message}\n`]);
    const [tooLarge] = await text(await postBuilds(' '.repeat(70 * 1024)));
    expect(tooLarge).toBe(413);

    expect(await text(await fetch(url('/builds/not-an-id')))).toEqual([400, 'invalid build ID "not-an-id"\n']);
    expect(await text(await fetch(url(`/builds/${'0'.repeat(64)}`)))).toEqual([404, `build ${'0'.repeat(64)} not found\n`]);
    const unknownEvents = await openSse(url(`/builds/${'0'.repeat(64)}/events`)).response;
    expect([unknownEvents.status, unknownEvents.body]).toEqual([404, `build ${'0'.repeat(64)} not found\n`]);
    expect((await openSse(url('/builds/XYZ/events')).response).status).toBe(400);
  });
});
