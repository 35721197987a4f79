/**
 * A small in-process HTTP server that speaks the factory's client-facing contract (issue 14's contract-14.md and the
 * anchor's routes the client uses), for unit tests of @factory/client and the CLI: schematics, versions, extensions,
 * builds that advance on a timer with their Server-Sent Events (ids, Last-Event-ID replay, end after done/failed),
 * `/image` with `Prefer: respond-async`, byte ranges and `.sha256`, and `/pxe`. Not the real factory: integration
 * tests run that (test/support/factory.ts). Every request is recorded for assertions.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Build, BuildStage } from '@factory/client';

export interface FakeFactoryOptions {
  /** delay between a build's steps (queued → stages → done), ms */
  stepMs?: number;
  /** bytes of every asset */
  assetBytes?: number;
  /** `.sha256` answers a wrong digest (a corrupted download, as the client sees it) */
  wrongChecksum?: boolean;
  /** the events route closes each stream after this many events (reconnect tests) */
  dropEventsAfter?: number;
  /** the events route falls silent after this many events of a stream, keeping the connection open (idle tests) */
  stallEventsAfter?: number;
  /** seen versions */
  versions?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface FakeFactory {
  url: string;
  requests: RecordedRequest[];
  /** the bytes `/image/<schematic>/<version>/<asset>` serves */
  assetBytes(schematic: string, version: string, asset: string): Buffer;
  builds: Map<string, FakeBuild>;
  close(): Promise<void>;
}

export interface FakeBuild {
  build: Build;
  /** every event sent so far: id n is events[n - 1] */
  events: string[];
  listeners: Set<() => void>;
}

const STAGES = ['fetching imager', 'assembling initramfs', 'writing image'];
const ASSET = /^(metal|aws|nocloud)-(amd64|arm64)\.(iso|raw\.zst|qcow2)$|^(kernel|initramfs)-(amd64|arm64)(\.xz)?$|^fail\.iso$/;

export async function startFakeFactory(opts: FakeFactoryOptions = {}): Promise<FakeFactory> {
  const stepMs = opts.stepMs ?? 10;
  const size = opts.assetBytes ?? 256 * 1024;
  const versions = opts.versions ?? ['v1.9.5', 'v1.11.3', 'v1.12.2'];
  const schematics = new Map<string, string>();
  const builds = new Map<string, FakeBuild>();
  const requests: RecordedRequest[] = [];
  let url = '';

  const assetBytes = (schematic: string, version: string, asset: string): Buffer => {
    const out = Buffer.alloc(size);
    let block = createHash('sha256').update(`${schematic}/${version}/${asset}`).digest();
    for (let at = 0; at < size; at += block.length) {
      block.copy(out, at);
      block = createHash('sha256').update(block).digest();
    }
    return out;
  };
  const buildId = (schematic: string, version: string, asset: string) => createHash('sha256').update(`build:${schematic}/${version}/${asset}`).digest('hex');

  const emit = (b: FakeBuild, patch: Partial<Build>) => {
    Object.assign(b.build, patch, { updatedAt: new Date().toISOString() });
    b.events.push(JSON.stringify(b.build));
    for (const l of b.listeners) l();
  };

  /** Queues (or finds) the build of one asset and lets it run on the timer. */
  const startBuild = (schematic: string, version: string, asset: string): FakeBuild => {
    const id = buildId(schematic, version, asset);
    const existing = builds.get(id);
    if (existing) return existing;
    const now = new Date().toISOString();
    const b: FakeBuild = {
      build: {
        id, schematic, version, asset, state: 'queued', queuePosition: 0, url: `${url}/image/${schematic}/${version}/${asset}`,
        priority: 'user', createdAt: now, updatedAt: now, stages: [], log: [],
      },
      events: [],
      listeners: new Set(),
    };
    builds.set(id, b);
    emit(b, {});
    let step = 0;
    const tick = () => {
      if (step < STAGES.length) {
        const stages: BuildStage[] = b.build.stages.map((s) => ({ ...s, durationMs: s.durationMs ?? stepMs }));
        stages.push({ name: STAGES[step], startedAt: new Date().toISOString() });
        emit(b, { state: 'running', queuePosition: undefined, stage: STAGES[step], percent: Math.round((step * 100) / STAGES.length), stages });
        step++;
        setTimeout(tick, stepMs);
      } else if (asset === 'fail.iso') {
        emit(b, { state: 'failed', error: { status: 422, message: 'asset too large: 9 GiB > 8 GiB' } });
      } else {
        const bytes = assetBytes(schematic, version, asset);
        emit(b, { state: 'done', percent: 100, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      }
    };
    setTimeout(tick, stepMs);
    return b;
  };

  /** The anchor's edge checks, in its order: schematic 404, version 400, path 400. */
  const validate = (schematic: string, version: string, asset: string): [number, string] | undefined => {
    if (!schematics.has(schematic)) return [404, `schematic ID "${schematic}" not found`];
    if (!/^v?\d+\.\d+\.\d+$/.test(version)) return [400, `error parsing version: "${version}"`];
    if (!ASSET.test(asset)) return [400, `error parsing profile from path: invalid profile path: "${asset}"`];
    return undefined;
  };

  const sendError = (res: http.ServerResponse, status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
  };
  const sendJson = (res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(`${JSON.stringify(body)}\n`);
  };
  const readBody = (req: http.IncomingMessage) =>
    new Promise<string>((resolve) => {
      let s = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (s += d));
      req.on('end', () => resolve(s));
    });
  const whenDone = (b: FakeBuild) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (b.build.state === 'done' || b.build.state === 'failed') {
          b.listeners.delete(check);
          resolve();
        }
      };
      b.listeners.add(check);
      check();
    });

  const serveEvents = (req: http.IncomingMessage, res: http.ServerResponse, b: FakeBuild) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    const after = Number(req.headers['last-event-id'] ?? 0);
    let next = Number.isInteger(after) && after > 0 ? after : 0;
    let sentHere = 0;
    const pump = () => {
      while (next < b.events.length) {
        if (opts.dropEventsAfter !== undefined && sentHere >= opts.dropEventsAfter) {
          b.listeners.delete(pump);
          res.destroy();
          return;
        }
        if (opts.stallEventsAfter !== undefined && sentHere >= opts.stallEventsAfter) {
          b.listeners.delete(pump);
          return;
        }
        const data = b.events[next];
        next++;
        sentHere++;
        res.write(`id: ${next}\nevent: build\ndata: ${data}\n\n`);
        const state = (JSON.parse(data) as Build).state;
        if (state === 'done' || state === 'failed') {
          b.listeners.delete(pump);
          res.end();
          return;
        }
      }
    };
    res.write(': hello\n\n');
    b.listeners.add(pump);
    req.on('close', () => b.listeners.delete(pump));
    pump();
  };

  const serveAsset = async (req: http.IncomingMessage, res: http.ServerResponse, parts: string[]) => {
    const [schematic, version, rawAsset] = parts;
    const checksum = /\.sha256$/.exec(rawAsset);
    const asset = checksum ? rawAsset.slice(0, -'.sha256'.length) : rawAsset;
    const invalid = validate(schematic, version, asset);
    if (invalid) return sendError(res, ...invalid);
    const b = builds.get(buildId(schematic, version, asset));
    if (!b || b.build.state !== 'done') {
      if (req.headers.prefer === 'respond-async' && !checksum) {
        const started = startBuild(schematic, version, asset);
        return sendJson(res, 202, started.build, { location: `/builds/${started.build.id}`, 'preference-applied': 'respond-async' });
      }
      const started = startBuild(schematic, version, asset);
      await whenDone(started);
      if (started.build.state === 'failed') return sendError(res, started.build.error!.status, started.build.error!.message);
    }
    const bytes = assetBytes(schematic, version, asset);
    if (checksum) {
      const digest = createHash('sha256').update(opts.wrongChecksum ? Buffer.from('other bytes') : bytes).digest('hex');
      return res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`${digest}  ${asset}\n`);
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length) {
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end('requested range not satisfiable\n');
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': end - start + 1, 'accept-ranges': 'bytes' });
      return res.end(bytes.subarray(start, end + 1));
    }
    res.writeHead(200, { 'content-length': bytes.length, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' });
    res.end(bytes);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://fake');
    requests.push({ method: req.method ?? 'GET', path: u.pathname + u.search, headers: req.headers });
    const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const route = `${req.method} /${parts[0] ?? ''}`;
    if (route === 'POST /schematics') {
      const body = await readBody(req);
      if (body.trim() === '') return sendError(res, 400, 'EOF');
      const id = createHash('sha256').update(body).digest('hex');
      schematics.set(id, body);
      return sendJson(res, 201, { id, schematic: body });
    }
    if (route === 'GET /schematics' && parts.length === 2) {
      const yaml = schematics.get(parts[1]);
      if (yaml === undefined) return sendError(res, 404, 'schematic not found');
      return res.writeHead(200, { 'content-type': 'application/yaml' }).end(yaml);
    }
    if (route === 'GET /versions') return sendJson(res, 200, versions);
    if (route === 'GET /version' && parts.length === 4 && parts[2] === 'extensions') {
      const v = parts[1].startsWith('v') ? parts[1] : `v${parts[1]}`;
      if (!versions.includes(v)) return sendError(res, 404, `version ${v.slice(1)} is not available`);
      return sendJson(res, 200, [{ name: 'siderolabs/gvisor', ref: 'ghcr.io/siderolabs/gvisor:20231214.0', digest: 'sha256:5ab3', author: 'Sidero Labs', description: 'gVisor container runtime' }]);
    }
    if (route === 'POST /builds' && parts.length === 1) {
      let body: { schematic?: unknown; version?: unknown; assets?: unknown };
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        return sendError(res, 400, `invalid build request: ${(err as Error).message}`);
      }
      if (typeof body.schematic !== 'string' || typeof body.version !== 'string' || !Array.isArray(body.assets)) return sendError(res, 400, 'invalid build request: schematic, version and assets are required');
      for (const asset of body.assets as string[]) {
        const invalid = validate(body.schematic, body.version, asset);
        if (invalid) return sendError(res, ...invalid);
      }
      const started = (body.assets as string[]).map((a) => startBuild(body.schematic as string, body.version as string, a).build);
      return sendJson(res, 202, { builds: started }, started.length === 1 ? { location: `/builds/${started[0].id}` } : {});
    }
    if (route === 'GET /builds' && parts.length >= 2) {
      if (!/^[0-9a-f]{64}$/.test(parts[1])) return sendError(res, 400, `invalid build ID "${parts[1]}"`);
      const b = builds.get(parts[1]);
      if (!b) return sendError(res, 404, `build ${parts[1]} not found`);
      if (parts.length === 2) return sendJson(res, 200, b.build);
      if (parts.length === 3 && parts[2] === 'events') return serveEvents(req, res, b);
    }
    if (route === 'GET /builds' && parts.length === 1) {
      return sendJson(res, 200, { builds: [...builds.values()].map((b) => b.build).reverse() });
    }
    if ((route === 'GET /image' || route === 'HEAD /image') && parts.length === 4) return serveAsset(req, res, parts.slice(1));
    if (route === 'GET /pxe' && parts.length === 4) {
      const invalid = validate(parts[1], parts[2], 'kernel-amd64');
      if (invalid) return sendError(res, ...invalid);
      return res.end(`#!ipxe\n\nimgfree\nkernel ${url}/image/${parts[1]}/${parts[2]}/kernel-amd64 talos.platform=metal\ninitrd ${url}/image/${parts[1]}/${parts[2]}/initramfs-amd64.xz\nboot\n`);
    }
    sendError(res, 404, '404 page not found');
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => sendError(res, 500, String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    assetBytes,
    builds,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
