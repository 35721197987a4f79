/**
 * Build resources (issue 14, contract-14 "Build"): `POST /builds`, `GET /builds`, `GET /builds/<id>`,
 * `GET /builds/<id>/events` (Server-Sent Events), and the build behind `Prefer: respond-async` on `/image`.
 *
 * A build's ID is its asset's key, and its job the `asset-<key>` job every `GET /image` of that asset waits on: asking
 * here and downloading there share one build. Records live in Redis (@factory/builds), written by the gateway that
 * queues a build and by the build-worker that runs it, so every gateway answers for every build; SSE clients on any
 * gateway follow a build through its Redis channel and stream.
 */
import type { Request, Response } from 'express';
import { AssetProfile, AssetTarget, BuildTicket, profileTarget } from '@factory/asset';
import {
  Build,
  BUILD_ID,
  BuildEvent,
  BuildPriority,
  BuildStore,
  buildSubject,
  BuildSubject,
  BuildWatcher,
  currentBuild,
  followBuild,
  isTerminal,
  positioned,
  recordQueued,
  BuildRequestDeps,
  requestBuild,
  USER_PRIORITY,
} from '@factory/builds';
import { FactoryError } from '@factory/errors';
import { readRequestBody } from '@factory/http';
import type { AssetLookup } from '@factory/asset';
import { Counter, Gauge, Logger, Registry } from '@factory/telemetry';
import type { JobCaller } from './app';
import type { AssetRoutes } from './assets';
import { sendBody } from './compat';

const JSON_TYPE = 'application/json; charset=utf-8';
/** Largest `POST /builds` body. */
export const MAX_BUILD_REQUEST_BYTES = 64 * 1024;
const DEFAULT_LIST_LIMIT = 20;
const MAX_LIST_LIMIT = 100;
/** How often a queued build followed on this gateway has its queue position read again. */
const POSITION_REFRESH_MS = 2000;

/** What `POST /builds` asks for, validated. */
export interface BuildsRequest {
  schematic: string;
  versions: string[];
  assets: string[];
}

const invalid = (why: string) => new FactoryError(400, `invalid build request: ${why}`);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string');

/**
 * Parses a `POST /builds` body: `{"schematic", "version" | "versions", "assets"}`, nothing else. The asset paths and
 * versions themselves are judged later, as `/image` judges them.
 */
export function parseBuildsRequest(body: Buffer): BuildsRequest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('the body is not valid JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid('the body must be a JSON object');
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!['schematic', 'version', 'versions', 'assets'].includes(key)) throw invalid(`unknown field ${JSON.stringify(key)}`);
  if (typeof o.schematic !== 'string') throw invalid('"schematic" must be a string');
  if (('version' in o) === ('versions' in o)) throw invalid('exactly one of "version" and "versions" is required');
  if ('version' in o && typeof o.version !== 'string') throw invalid('"version" must be a string');
  if ('versions' in o && !isStringArray(o.versions)) throw invalid('"versions" must be a non-empty array of strings');
  if (!isStringArray(o.assets)) throw invalid('"assets" must be a non-empty array of strings');
  return { schematic: o.schematic, versions: 'versions' in o ? (o.versions as string[]) : [o.version as string], assets: o.assets };
}

/** `Prefer: respond-async` (RFC 7240), among other preferences or not. */
export function prefersAsync(header: string | string[] | undefined): boolean {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  return text.split(',').some((p) => p.split(';')[0].trim().toLowerCase() === 'respond-async');
}

export interface GatewayBuildOptions {
  builds: BuildStore;
  jobs: JobCaller;
  objects: AssetLookup;
  /** `<prefix>:build`: the BullMQ build queue's key, for queue positions */
  queueKey: string;
  externalUrl: string;
  logger: Logger;
  /** how long a queued build is waited for in the background */
  buildTimeoutMs: number;
  /** per-client admission of a new build (rate limits, fair priority) */
  admit?: (req: Request, jobId: string) => Promise<BuildTicket>;
  /** moves a queued job to another priority (a user request taking over a pre-warm build) */
  promote?: (jobId: string, priority: number) => Promise<void>;
}

/** Asking for builds on behalf of HTTP requests, and the records of builds a `GET /image` queues. */
export class GatewayBuilds {
  constructor(readonly o: GatewayBuildOptions) {}

  subject(profile: AssetProfile): BuildSubject {
    return buildSubject(profile, this.o.externalUrl);
  }

  target(profile: AssetProfile): AssetTarget {
    return profileTarget(this.o.jobs, profile);
  }

  /** Queues (or joins, or finds done) the build of `profile` without waiting for it. */
  private get deps(): BuildRequestDeps {
    return { builds: this.o.builds, objects: this.o.objects, queueKey: this.o.queueKey, logger: this.o.logger, timeoutMs: this.o.buildTimeoutMs, promote: this.o.promote };
  }

  request(req: Request | undefined, profile: AssetProfile, priority: BuildPriority = 'user'): Promise<Build> {
    const admit = this.o.admit;
    return requestBuild(
      this.deps,
      { subject: this.subject(profile), target: this.target(profile), priority, ...(admit && req ? { admit: (jobId: string) => admit(req, jobId) } : {}) },
    );
  }

  /** A `GET /image` is about to queue the build of `profile` at `jobPriority` and wait for it: its record says queued. */
  async recordQueued(profile: AssetProfile, jobPriority: number = USER_PRIORITY): Promise<void> {
    const subject = this.subject(profile);
    await recordQueued(this.deps, subject, 'user', jobPriority).catch((err: unknown) => this.o.logger.warn({ err, build: subject.id }, 'could not record a queued build'));
  }

  current(id: string): Promise<Build | undefined> {
    return currentBuild({ builds: this.o.builds, queueKey: this.o.queueKey }, id);
  }
}

export interface BuildRouteOptions {
  requests: GatewayBuilds;
  assets: AssetRoutes;
  watcher: BuildWatcher;
  /** FACTORY_MAX_BUILDS_PER_REQUEST */
  maxBuildsPerRequest: number;
  /** event streams one gateway serves at once (503 beyond) */
  maxStreams: number;
  metrics: Registry;
  logger: Logger;
  keepaliveMs?: number;
}

export class BuildRoutes {
  private readonly streams = new Set<AbortController>();
  /** queued builds followed here: their position is read again every POSITION_REFRESH_MS */
  private readonly positions = new Map<string, { followers: number; timer: NodeJS.Timeout }>();
  private readonly refused: Counter<string>;

  constructor(private readonly o: BuildRouteOptions) {
    const streams = this.streams;
    new Gauge({
      name: 'factory_build_event_streams',
      help: 'Build event streams (SSE) open on this gateway',
      registers: [o.metrics],
      collect() {
        this.set(streams.size);
      },
    });
    this.refused = new Counter({ name: 'factory_build_event_streams_refused_total', help: 'Build event streams refused (503) because too many were open', registers: [o.metrics] });
  }

  private get store(): BuildStore {
    return this.o.requests.o.builds;
  }

  private static id(raw: string): string {
    if (!BUILD_ID.test(raw)) throw new FactoryError(400, `invalid build ID ${JSON.stringify(raw)}`);
    return raw;
  }

  private async found(id: string): Promise<Build> {
    const build = await this.o.requests.current(id);
    if (!build) throw new FactoryError(404, `build ${id} not found`);
    return build;
  }

  /**
   * Queues the build of `/image/<schematic>/<version>/<asset>` without waiting for it (or joins it, or finds it done):
   * validated as that route validates (its 4xx FactoryErrors). The entry point for pre-warming: `priority: 'prewarm'`
   * queues at PREWARM_PRIORITY (100) without per-client limits; 'user' (default) applies `req`'s client limits when
   * given. State changes then appear on the `<prefix>:builds:events` stream (BuildStore.feedKey).
   */
  async queueBuild(schematic: string, version: string, asset: string, o: { priority?: BuildPriority; req?: Request } = {}): Promise<Build> {
    return this.o.requests.request(o.req, await this.o.assets.resolveImage(schematic, version, asset), o.priority ?? 'user');
  }

  /** `POST /builds`: every (version, asset) validated as `/image` would, in request order, before anything is queued. */
  async create(req: Request, res: Response): Promise<void> {
    const request = parseBuildsRequest(await readRequestBody(req, res, MAX_BUILD_REQUEST_BYTES));
    const count = request.versions.length * request.assets.length;
    if (count > this.o.maxBuildsPerRequest) throw new FactoryError(400, `too many builds in one request: ${count} (limit ${this.o.maxBuildsPerRequest})`);
    const profiles: AssetProfile[] = [];
    for (const version of request.versions) {
      for (const asset of request.assets) profiles.push(await this.o.assets.resolveImage(request.schematic, version, asset));
    }
    const builds: Build[] = [];
    for (const profile of profiles) builds.push(await this.o.requests.request(req, profile));
    if (builds.length === 1) res.setHeader('Location', `/builds/${builds[0].id}`);
    sendBody(res, 202, JSON_TYPE, JSON.stringify({ builds }));
  }

  /** `GET /builds/<id>` */
  async get(req: Request, res: Response): Promise<void> {
    const build = await this.found(BuildRoutes.id(req.params.id));
    sendBody(res, 200, JSON_TYPE, JSON.stringify(build));
  }

  /** `GET /builds?schematic=&version=&limit=` */
  async list(req: Request, res: Response): Promise<void> {
    const param = (name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : undefined);
    const rawLimit = param('limit');
    let limit = DEFAULT_LIST_LIMIT;
    if (rawLimit !== undefined) {
      if (!/^\d{1,3}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_LIST_LIMIT) throw new FactoryError(400, `invalid limit ${JSON.stringify(rawLimit)}: expected a number from 1 to ${MAX_LIST_LIMIT}`);
      limit = Number(rawLimit);
    }
    const version = param('version');
    const builds = await this.store.list({ schematic: param('schematic') || undefined, version: version ? (version.startsWith('v') ? version : `v${version}`) : undefined, limit });
    sendBody(res, 200, JSON_TYPE, JSON.stringify({ builds }));
  }

  /**
   * `GET /builds/<id>/events`: `id: <n>`, `event: build`, `data: <Build>` per revision; the current state first (or
   * what came after Last-Event-ID), then live, until done or failed; a keepalive comment every 15 s.
   */
  async events(req: Request, res: Response): Promise<void> {
    const id = BuildRoutes.id(req.params.id);
    const build = await this.found(id);
    if (this.streams.size >= this.o.maxStreams) {
      this.refused.inc();
      res.setHeader('Retry-After', '5');
      throw new FactoryError(503, `too many build event streams on this gateway (limit ${this.o.maxStreams}); retry later`);
    }
    const lastEventId = req.header('last-event-id');
    const after = lastEventId !== undefined && /^\d{1,15}$/.test(lastEventId.trim()) ? Number(lastEventId.trim()) : undefined;
    const abort = new AbortController();
    this.streams.add(abort);
    res.on('close', () => abort.abort());
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    // reverse proxies (nginx) pass events on as they come
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), this.o.keepaliveMs ?? 15_000);
    const stopPositions = build.state === 'queued' ? this.followPosition(id) : () => undefined;
    try {
      // the first event carries the position as it is now
      if (after === undefined && build.state === 'queued' && build.queuePosition !== undefined) await this.store.change(id, positioned(build.queuePosition));
      await followBuild({
        store: this.store,
        watcher: this.o.watcher,
        id,
        after,
        signal: abort.signal,
        emit: (e: BuildEvent) => res.write(`id: ${e.n}\nevent: build\ndata: ${JSON.stringify(e.build)}\n\n`),
      });
    } catch (err) {
      this.o.logger.warn({ err, build: id }, 'build event stream failed');
    } finally {
      clearInterval(keepalive);
      stopPositions();
      this.streams.delete(abort);
      res.end();
    }
  }

  /** Reads the queue position of a followed queued build every few seconds; a change is an event. */
  private followPosition(id: string): () => void {
    let entry = this.positions.get(id);
    if (!entry) {
      const timer = setInterval(() => {
        void this.o.requests
          .current(id)
          .then(async (b) => {
            if (b?.state === 'queued' && b.queuePosition !== undefined) await this.store.change(id, positioned(b.queuePosition));
            else if (!b || isTerminal(b)) this.stopPosition(id, true);
          })
          .catch(() => undefined);
      }, POSITION_REFRESH_MS);
      entry = { followers: 0, timer };
      this.positions.set(id, entry);
    }
    entry.followers++;
    const mine = entry;
    return () => {
      if (this.positions.get(id) === mine) this.stopPosition(id, false);
    };
  }

  private stopPosition(id: string, all: boolean): void {
    const entry = this.positions.get(id);
    if (!entry) return;
    entry.followers = all ? 0 : entry.followers - 1;
    if (entry.followers > 0) return;
    clearInterval(entry.timer);
    this.positions.delete(id);
  }

  /** Ends every event stream (shutdown): clients reconnect elsewhere with Last-Event-ID. */
  closeStreams(): void {
    for (const s of this.streams) s.abort();
  }
}
