/**
 * Runs fuzz cases against a launched embedded factory (`npm start`) and says what went wrong: any 5xx, any request
 * that took longer than the hang bound, any process above the memory bound, any service that no longer answers
 * /healthz at the end. Shared by the CI test (test/integration/fuzz.test.ts) and the CLI (test/fuzz/main.ts).
 */
import http from 'node:http';
import { LaunchedFactory } from '../support/launcher';
import { rawExchange } from '../support/raw-http';
import { announceResponse } from '../support/response-hooks';
import { megabytes, RssSampler } from '../support/rss';
import { ACCEPTED, Family, FuzzCase, FuzzWorld, generateCases, HttpCase, PREBUILT } from './cases';

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** requests in flight at once */
  concurrency?: number;
  /** a request slower than this is a hang (ms) */
  hangMs?: number;
  /** a process whose RSS goes above this fails the run (bytes) */
  rssLimitBytes?: number;
  log?: (line: string) => void;
}

export interface CaseOutcome {
  /** the case as sent (a follow-up's path with its schematic ID) */
  c: FuzzCase;
  /** every status the server sent (several for pipelined raw requests); empty when none */
  statuses: number[];
  ms: number;
  /** a transport error or a timeout */
  error?: string;
  /** the start of the response body (5xx reports) */
  snippet: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  byFamily: Record<Family, number>;
  statusCounts: Map<number, number>;
  followUpStatuses: Map<number, number>;
  serverErrors: CaseOutcome[];
  hangs: CaseOutcome[];
  /** connection errors on well-formed requests whose body was within the limit */
  connectionErrors: CaseOutcome[];
  /** requests Node's client would not send (invalid header characters) */
  clientRefused: number;
  maxLatency: CaseOutcome;
  p99Ms: number;
  rssPeak: Map<string, number>;
  rssFirst: Map<string, number>;
  rssLast: Map<string, number>;
  rssLimitBytes: number;
  unhealthy: string[];
  durationMs: number;
  /** assets built while the cases ran: only follow-up cases may build (any other case stays within prebuilt ones) */
  buildsDuringCases: number | undefined;
  /** distinct command lines the follow-up cases were served (each at most one build) */
  followUpAssets: number;
}

/** The body limit of POST /schematics (FACTORY_MAX_SCHEMATIC_BYTES default): a larger body may be cut with a reset. */
const BODY_LIMIT = 1024 * 1024;

/** Creates the schematics and builds the few assets the cases may touch; returns what the cases are generated from. */
export async function prepareWorld(url: string): Promise<FuzzWorld> {
  const post = async (body: string) => {
    const res = await fetch(`${url}/schematics`, { method: 'POST', body });
    if (res.status !== 201) throw new Error(`setup: POST /schematics ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  };
  const versions = (await (await fetch(`${url}/versions`)).json()) as string[];
  const version = versions.includes('v1.12.2') ? 'v1.12.2' : versions[versions.length - 1];
  const defaultId = await post('{}');
  const knownIds = [
    await post('customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/hello]\n'),
    await post('customization:\n  extraKernelArgs: [console=ttyS0, fuzz=1]\n'),
    await post('overlay:\n  image: siderolabs/sbc-fixture\n  name: fixture_board\n'),
    await post('customization:\n  meta:\n    - key: 12\n      value: fuzz\n  secureboot:\n    includeWellKnownCertificates: true\n'),
  ];
  // the only assets a case may ask for that are valid: built once here (cold builds take seconds each)
  let kernelEtag = '';
  for (const name of PREBUILT.image) {
    const res = await fetch(`${url}/image/${defaultId}/${version}/${name}`, { signal: AbortSignal.timeout(300_000) });
    if (res.status !== 200) throw new Error(`setup: ${name} ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    if (name === 'kernel-amd64') kernelEtag = (res.headers.get('etag') ?? '').replace(/"/g, '');
  }
  for (const name of PREBUILT.pxe) {
    const res = await fetch(`${url}/pxe/${defaultId}/${version}/${name}`, { signal: AbortSignal.timeout(300_000) });
    if (res.status !== 200) throw new Error(`setup: PXE ${name} ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  }
  // small upstream objects (the imager's index and manifests) for blob and manifest cases
  const upstreamDigests: string[] = [];
  const index = await fetch(`${url}/v2/siderolabs/imager/manifests/${version}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' } });
  if (index.status !== 200) throw new Error(`setup: imager index ${index.status}`);
  upstreamDigests.push(index.headers.get('docker-content-digest') ?? '');
  for (const m of ((await index.json()) as { manifests?: { digest: string }[] }).manifests ?? []) upstreamDigests.push(m.digest);
  // the installer image OCI cases may pull (one cold installer build): every digest it is made of
  const repo = `${url}/v2/${PREBUILT.installer}/${defaultId}`;
  const installerIndex = await fetch(`${repo}/manifests/${version}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' }, signal: AbortSignal.timeout(600_000) });
  if (installerIndex.status !== 200) throw new Error(`setup: installer ${installerIndex.status}: ${await installerIndex.text()}`);
  const installerDigests = [installerIndex.headers.get('docker-content-digest') ?? ''];
  for (const m of ((await installerIndex.json()) as { manifests: { digest: string }[] }).manifests) {
    installerDigests.push(m.digest);
    const manifest = (await (await fetch(`${repo}/manifests/${m.digest}`)).json()) as { config: { digest: string }; layers: { digest: string }[] };
    installerDigests.push(manifest.config.digest, ...manifest.layers.map((l) => l.digest));
  }
  return { defaultId, knownIds, version, versions, kernelEtag, upstreamDigests: upstreamDigests.filter(Boolean), installerDigests: installerDigests.filter(Boolean) };
}

const MAX_ANNOUNCED_BODY = 64 * 1024;

/** Sends one case; never throws. */
async function send(port: number, c: FuzzCase, hangMs: number): Promise<CaseOutcome> {
  const started = Date.now();
  if (c.transport === 'raw') {
    try {
      const ex = await rawExchange(port, c.bytes, { end: !c.keepOpen, giveUpMs: hangMs });
      const statuses = [...ex.response.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
      return { c, statuses, ms: ex.closedAfterMs, snippet: ex.response.slice(0, 300) };
    } catch (err) {
      return { c, statuses: [], ms: Date.now() - started, error: `hang: ${(err as Error).message.slice(0, 200)}`, snippet: '' };
    }
  }
  return new Promise<CaseOutcome>((resolve) => {
    let settled = false;
    const done = (o: Omit<CaseOutcome, 'c' | 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ c, ms: Date.now() - started, ...o });
    };
    let req: http.ClientRequest;
    const headers: Record<string, string> = { ...c.headers };
    if (c.body) headers['content-length'] = String(c.body.length);
    try {
      req = http.request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent: false, setHost: !('host' in headers) });
    } catch (err) {
      settled = true;
      resolve({ c, statuses: [], ms: 0, error: `client refused: ${(err as Error).message}`, snippet: '' });
      return;
    }
    const timer = setTimeout(() => {
      req.destroy();
      done({ statuses: [], error: `hang: no complete answer within ${hangMs} ms`, snippet: '' });
    }, hangMs);
    let status = 0;
    let snippet = '';
    req.on('error', (err) => done({ statuses: status ? [status] : [], error: `connection: ${err.message}`, snippet }));
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      // the body as far as it is kept for the OpenAPI check of the integration tests (response-hooks)
      const kept: Buffer[] = [];
      let keptBytes = 0;
      res.on('data', (d: Buffer) => {
        if (snippet.length < 300) snippet += d.toString('latin1').slice(0, 300 - snippet.length);
        keptBytes += d.length;
        if (keptBytes <= MAX_ANNOUNCED_BODY) kept.push(d);
      });
      res.on('end', () => {
        const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]));
        const body = keptBytes <= MAX_ANNOUNCED_BODY ? Buffer.concat(kept).toString('utf8') : undefined;
        announceResponse({ method: c.method, url: `http://127.0.0.1:${port}${c.path}`, status, headers, body });
        done({ statuses: [status], snippet });
      });
      res.on('error', (err) => done({ statuses: [status], error: `connection: ${err.message}`, snippet }));
    });
    req.end(c.body);
  });
}

/**
 * Runs `cases` with `concurrency` requests in flight; outcomes in case order. A follow-up case takes the schematic the
 * latest accepted body created (the default one before any), so its build count is at most the follow-up count.
 */
export async function runCases(port: number, cases: FuzzCase[], concurrency: number, hangMs: number, defaultId: string, progress?: (done: number) => void): Promise<CaseOutcome[]> {
  const out: CaseOutcome[] = new Array(cases.length);
  let next = 0;
  let finished = 0;
  let accepted = defaultId;
  const lane = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i];
      out[i] = await send(port, c.transport === 'http' && c.path.includes(ACCEPTED) ? { ...c, path: c.path.replace(ACCEPTED, accepted) } : c, hangMs);
      if (c.family === 'schematic' && out[i].statuses[0] === 201) accepted = /"id"\s*:\s*"([0-9a-f]{64})"/.exec(out[i].snippet)?.[1] ?? accepted;
      if (++finished % 500 === 0) progress?.(finished);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return out;
}

/** The metrics/health listeners of the services the launcher announced (the gateway's is its own port). */
function serviceEndpoints(factory: LaunchedFactory): Map<string, string> {
  const targets = new Map<string, string>([['gateway', factory.url]]);
  for (const m of factory.output().matchAll(/([a-z-]+): metrics on (http:\/\/[^\s]+)\/metrics/g)) targets.set(m[1], m[2]);
  return targets;
}

/** Build jobs the build-worker finished so far (its `image_factory_assets_built_total`), undefined when unreadable. */
export async function assetsBuilt(factory: LaunchedFactory): Promise<number | undefined> {
  const base = serviceEndpoints(factory).get('build-worker');
  if (!base) return undefined;
  try {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    // every outcome: a build that failed was still queued
    return [...text.matchAll(/^image_factory_assets_built_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  } catch {
    return undefined;
  }
}

/** Every service answers /healthz: the gateway on its port, the others on the metrics listeners the launcher announced. */
export async function unhealthyServices(factory: LaunchedFactory): Promise<string[]> {
  const targets = serviceEndpoints(factory);
  const bad: string[] = [];
  for (const [name, base] of targets) {
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
      if (res.status !== 200) bad.push(`${name}: /healthz ${res.status}`);
    } catch (err) {
      bad.push(`${name}: /healthz ${(err as Error).message}`);
    }
  }
  if (targets.size < 5) bad.push(`only ${targets.size} services announced a health endpoint: ${[...targets.keys()].join(', ')}`);
  const ready = await fetch(`${factory.url}/readyz`).catch((err: Error) => err);
  if (ready instanceof Error || ready.status !== 200) bad.push(`gateway: /readyz ${ready instanceof Error ? ready.message : `${ready.status} ${await ready.text()}`}`);
  return bad;
}

/** Prepares the world, runs `opts.cases` generated cases while sampling memory, checks health; never throws on findings. */
export async function fuzzFactory(factory: LaunchedFactory, opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => undefined);
  const concurrency = opts.concurrency ?? 8;
  const hangMs = opts.hangMs ?? 5000;
  const port = Number(new URL(factory.url).port);
  const sampler = new RssSampler(factory.proc.pid!);
  const world = await prepareWorld(factory.url);
  log(`world: version ${world.version}, default schematic ${world.defaultId}, ${world.knownIds.length} more, prebuilt ${[...PREBUILT.image, ...PREBUILT.pxe.map((p) => `pxe ${p}`), `${PREBUILT.installer}:${world.version} (${world.installerDigests.length} digests)`].join(', ')}`);
  const cases = generateCases(opts.seed, opts.cases, world);
  const builtBefore = await assetsBuilt(factory);
  const started = Date.now();
  const outcomes = await runCases(port, cases, concurrency, hangMs, world.defaultId, (n) => log(`${n}/${cases.length} cases`));
  const durationMs = Date.now() - started;
  sampler.stop();
  const builtAfter = await assetsBuilt(factory);

  const byFamily = { schematic: 0, path: 0, header: 0, oci: 0, raw: 0, 'follow-up': 0 } as Record<Family, number>;
  const statusCounts = new Map<number, number>();
  const followUpStatuses = new Map<number, number>();
  for (const o of outcomes) {
    byFamily[o.c.family]++;
    for (const s of o.statuses.length ? o.statuses : [0]) statusCounts.set(s, (statusCounts.get(s) ?? 0) + 1);
    if (o.c.family === 'follow-up') followUpStatuses.set(o.statuses[0] ?? 0, (followUpStatuses.get(o.statuses[0] ?? 0) ?? 0) + 1);
  }
  const bodyWithinLimit = (c: FuzzCase) => c.transport === 'http' && (c.body?.length ?? 0) <= BODY_LIMIT;
  const latencies = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  return {
    seed: opts.seed,
    cases: cases.length,
    byFamily,
    statusCounts: new Map([...statusCounts].sort((a, b) => a[0] - b[0])),
    followUpStatuses,
    serverErrors: outcomes.filter((o) => o.statuses.some((s) => s >= 500)),
    hangs: outcomes.filter((o) => o.ms > hangMs || o.error?.startsWith('hang')),
    connectionErrors: outcomes.filter((o) => o.error?.startsWith('connection') && !o.statuses.length && bodyWithinLimit(o.c)),
    clientRefused: outcomes.filter((o) => o.error?.startsWith('client refused')).length,
    maxLatency: outcomes.reduce((a, b) => (b.ms > a.ms ? b : a)),
    p99Ms: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))],
    rssPeak: sampler.peak,
    rssFirst: sampler.first,
    rssLast: sampler.last,
    rssLimitBytes: opts.rssLimitBytes ?? 600 * 1024 * 1024,
    unhealthy: await unhealthyServices(factory),
    durationMs,
    buildsDuringCases: builtBefore === undefined || builtAfter === undefined ? undefined : builtAfter - builtBefore,
    // /pxe/<id>/<v>/<target> and /image/<id>/<v>/cmdline-<target> are the same asset
    followUpAssets: new Set(
      outcomes
        .filter((o) => o.c.family === 'follow-up' && o.statuses[0] === 200 && o.c.transport === 'http' && /^\/(pxe\/|image\/.*\/cmdline-)/.test(o.c.path))
        .map((o) => (o.c as HttpCase).path.replace(/^\/(pxe|image)\//, '/').replace('/cmdline-', '/')),
    ).size,
  };
}

/** What failed, one line each; empty when the run held. */
export function fuzzProblems(r: FuzzReport): string[] {
  const caseLine = (o: CaseOutcome) => `#${o.c.n} ${o.c.family} ${o.c.what}: ${describeRequest(o.c)} → ${o.statuses.join(',') || '-'} in ${o.ms} ms${o.error ? ` (${o.error})` : ''} ${JSON.stringify(o.snippet.slice(0, 200))}`;
  return [
    ...r.serverErrors.map((o) => `5xx: ${caseLine(o)}`),
    ...r.hangs.map((o) => `hang: ${caseLine(o)}`),
    ...r.connectionErrors.map((o) => `connection error: ${caseLine(o)}`),
    ...[...r.rssPeak].filter(([, b]) => b > r.rssLimitBytes).map(([name, b]) => `memory: ${name} peaked at ${megabytes(b)} (bound ${megabytes(r.rssLimitBytes)})`),
    ...r.unhealthy.map((u) => `unhealthy at the end: ${u}`),
    ...(r.buildsDuringCases === undefined ? ['the build-worker metrics could not be read (assets built by the cases unknown)'] : []),
    ...((r.buildsDuringCases ?? 0) > r.followUpAssets ? [`${r.buildsDuringCases} asset(s) built while the follow-up cases were served ${r.followUpAssets}: a case sent a valid asset path outside PREBUILT`] : []),
  ];
}

function describeRequest(c: FuzzCase): string {
  if (c.transport === 'raw') return `raw ${JSON.stringify(c.bytes.subarray(0, 120).toString('latin1'))}${c.bytes.length > 120 ? `… (${c.bytes.length} bytes)` : ''}`;
  const path = c.path.length > 160 ? `${c.path.slice(0, 160)}… (${c.path.length} chars)` : c.path;
  return `${c.method} ${path} ${JSON.stringify(c.headers).slice(0, 200)}${c.body ? ` body ${c.body.length} bytes ${JSON.stringify(c.body.subarray(0, 80).toString('latin1'))}` : ''}`;
}

export function formatReport(r: FuzzReport): string {
  const rows = [...new Set([...r.rssFirst.keys(), ...r.rssPeak.keys()])].sort();
  return [
    `seed ${r.seed}: ${r.cases} cases in ${(r.durationMs / 1000).toFixed(1)} s (${Object.entries(r.byFamily).map(([f, n]) => `${f} ${n}`).join(', ')})`,
    `statuses: ${[...r.statusCounts].map(([s, n]) => `${s || 'none'}×${n}`).join(' ')}`,
    `follow-up statuses: ${[...r.followUpStatuses].map(([s, n]) => `${s || 'none'}×${n}`).join(' ') || '-'}`,
    `5xx: ${r.serverErrors.length}, hangs (> bound): ${r.hangs.length}, connection errors: ${r.connectionErrors.length}, not sendable by the client: ${r.clientRefused}`,
    `latency: p99 ${r.p99Ms} ms, max ${r.maxLatency.ms} ms (#${r.maxLatency.c.n} ${r.maxLatency.c.family} ${r.maxLatency.c.what})`,
    `RSS (start → end, peak; bound ${megabytes(r.rssLimitBytes)}):`,
    ...rows.map((name) => `  ${name.padEnd(16)} ${megabytes(r.rssFirst.get(name)).padStart(7)} → ${megabytes(r.rssLast.get(name)).padStart(7)}, peak ${megabytes(r.rssPeak.get(name))}`),
    `assets built by the cases: ${r.buildsDuringCases ?? 'unknown'} (only follow-ups may build: ${r.followUpAssets} distinct command lines served)`,
    `health at the end: ${r.unhealthy.length ? r.unhealthy.join('; ') : 'every service answers /healthz, /readyz 200'}`,
  ].join('\n');
}
