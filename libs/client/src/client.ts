/**
 * A typed client of the factory's HTTP API over fetch (Node ≥ 20's global fetch, or one passed in): schematics,
 * versions and catalogs, builds with their Server-Sent Events (reconnecting with `Last-Event-ID`), asset downloads
 * as streams with byte ranges, and the URLs and references the factory hands out. Failures are FactoryClientError.
 */
import { installerReference, parseRequestVersion, tagOf, urlJoin } from '@factory/talos';
import { errorFromResponse, FactoryClientError, unreachable } from './errors';
import { EventStreamParser } from './sse';
import { Build, CreateBuildsRequest, Extension, isFinished, ListBuildsFilter, Overlay, SchematicCreated } from './types';

export interface FactoryClientOptions {
  /** the factory's base URL, e.g. `http://localhost:8080` (a path prefix is kept) */
  baseUrl: string;
  /** fetch to use (tests, proxies); default the global one */
  fetch?: typeof fetch;
}

export interface BuildEventsOptions {
  /** resume after this event (sent as `Last-Event-ID`) */
  lastEventId?: string;
  signal?: AbortSignal;
  /** wait before reconnecting when the server named no `retry`; default 1000 ms */
  reconnectDelayMs?: number;
  /** reconnects in a row without a new event before giving up; default 5 */
  maxReconnects?: number;
  /** a stream silent this long (the server sends a keepalive every 15 s) is given up and reopened; default 45 s */
  idleTimeoutMs?: number;
}

/** An event of a build's stream: the build as it is now, and the event's ID (for `lastEventId` after a restart). */
export interface BuildEvent {
  eventId?: string;
  build: Build;
}

export interface DownloadOptions {
  /** bytes from `start` (to `end` inclusive, else to the end) */
  range?: { start: number; end?: number };
  /**
   * Ask not to wait for a build (`Prefer: respond-async`): an asset not stored yet answers with its Build instead of
   * holding the connection until it is built. A factory without the build API ignores it and waits.
   */
  respondAsync?: boolean;
  signal?: AbortSignal;
}

export type AssetDownload =
  /** 200 (whole) or 206 (the range asked for) */
  | {
      kind: 'bytes';
      status: number;
      /** offset of the first byte of `body` in the asset */
      start: number;
      /** the asset's size, when the answer says it */
      total?: number;
      /** bytes in `body`, when the answer says it */
      length?: number;
      body: ReadableStream<Uint8Array>;
      response: Response;
    }
  /** 202: not stored yet, being built (only with `respondAsync`) */
  | { kind: 'build'; build: Build }
  /** 416: the range starts at or past the end; `total` when the answer says it */
  | { kind: 'unsatisfiable'; total?: number };

export interface InstallerRefOptions {
  /** Talos platform, default `metal` */
  platform?: string;
  secureboot?: boolean;
}

export class FactoryClient {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: FactoryClientOptions) {
    if (!URL.canParse(opts.baseUrl) || !/^https?:$/.test(new URL(opts.baseUrl).protocol)) {
      throw new FactoryClientError(0, `invalid factory URL "${opts.baseUrl}" (expected http:// or https://)`);
    }
    this.baseUrl = opts.baseUrl;
    this.fetchImpl = opts.fetch ?? ((...args) => fetch(...args));
  }

  // ---- schematics, versions, catalogs

  /** `POST /schematics`: YAML text as is, an object as JSON (YAML's subset); idempotent. */
  async createSchematic(schematic: string | object): Promise<SchematicCreated> {
    const body = typeof schematic === 'string' ? schematic : JSON.stringify(schematic);
    const contentType = typeof schematic === 'string' ? 'application/yaml' : 'application/json';
    return this.json<SchematicCreated>(this.url(['schematics']), { method: 'POST', body, headers: { 'content-type': contentType } });
  }

  /** `GET /schematics/<id>`: the canonical YAML. */
  async getSchematic(id: string): Promise<string> {
    return (await this.ok(this.url(['schematics', id]))).text();
  }

  /** `GET /versions`: offered Talos versions, ascending, `v`-prefixed. */
  async versions(): Promise<string[]> {
    return this.json<string[]>(this.url(['versions']));
  }

  async extensions(version: string): Promise<Extension[]> {
    return this.json<Extension[]>(this.url(['version', version, 'extensions', 'official']));
  }

  async overlays(version: string): Promise<Overlay[]> {
    return this.json<Overlay[]>(this.url(['version', version, 'overlays', 'official']));
  }

  // ---- builds

  /** `POST /builds`: one build per (version, asset), in request order. */
  async createBuilds(request: CreateBuildsRequest): Promise<Build[]> {
    const answer = await this.json<{ builds: Build[] }>(this.url(['builds']), {
      method: 'POST',
      body: JSON.stringify(request),
      headers: { 'content-type': 'application/json' },
    });
    return answer.builds;
  }

  async getBuild(id: string): Promise<Build> {
    return this.json<Build>(this.url(['builds', id]));
  }

  /** `GET /builds`: recent builds, newest first. */
  async listBuilds(filter: ListBuildsFilter = {}): Promise<Build[]> {
    const query: Record<string, string> = {};
    if (filter.schematic !== undefined) query.schematic = filter.schematic;
    if (filter.version !== undefined) query.version = filter.version;
    if (filter.limit !== undefined) query.limit = String(filter.limit);
    return (await this.json<{ builds: Build[] }>(this.url(['builds'], query))).builds;
  }

  /**
   * The build as it changes, from its first event (the current state) until it is done or failed. A stream that
   * breaks off before that is reopened with `Last-Event-ID` (the server replays what was missed); a 4xx answer
   * (unknown or expired build) ends the iteration with its error.
   */
  async *buildEvents(id: string, opts: BuildEventsOptions = {}): AsyncGenerator<Build> {
    for await (const event of this.buildEventStream(id, opts)) yield event.build;
  }

  /** buildEvents with each event's ID. */
  async *buildEventStream(id: string, opts: BuildEventsOptions = {}): AsyncGenerator<BuildEvent> {
    const url = this.url(['builds', id, 'events']);
    const maxReconnects = opts.maxReconnects ?? 5;
    const idleMs = opts.idleTimeoutMs ?? 45_000;
    let lastEventId = opts.lastEventId;
    let reconnects = 0;
    for (;;) {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      // why this attempt ended without the build's end; thrown once the reconnects in a row are used up
      let failure = new FactoryClientError(0, `event stream of build ${id} ended before the build did`);
      const parser = new EventStreamParser();
      // this attempt ends when the caller aborts, or when the server says nothing (not even a keepalive) for idleMs
      const attempt = new AbortController();
      const onAbort = () => attempt.abort(opts.signal?.reason);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let silent = false;
      let idle: NodeJS.Timeout | undefined;
      const watch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          silent = true;
          attempt.abort();
        }, idleMs);
      };
      try {
        watch();
        const res = await this.send(url, { headers, signal: attempt.signal });
        if (res.status >= 400 && res.status < 500) throw await errorFromResponse(res);
        if (!res.ok || !res.body) {
          failure = await errorFromResponse(res);
        } else {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            watch();
            for (const event of parser.push(chunk)) {
              if (event.event !== 'build') continue;
              const build = JSON.parse(event.data) as Build;
              lastEventId = event.id ?? lastEventId;
              // news: only reconnects in a row without any count against the limit
              reconnects = 0;
              // the caller's time with an event is not the server's silence
              clearTimeout(idle);
              yield { eventId: event.id, build };
              if (isFinished(build)) return;
              watch();
            }
          }
        }
      } catch (err) {
        if (opts.signal?.aborted || err instanceof SyntaxError) throw err;
        if (err instanceof FactoryClientError && err.status >= 400 && err.status < 500) throw err;
        if (silent) failure = new FactoryClientError(0, `event stream of build ${id} was silent for ${idleMs} ms`);
        else if (err instanceof FactoryClientError) failure = err;
        else failure = unreachable(url, err);
      } finally {
        clearTimeout(idle);
        opts.signal?.removeEventListener('abort', onAbort);
        attempt.abort();
      }
      if (++reconnects > maxReconnects) throw failure;
      await sleep(parser.retryMs ?? opts.reconnectDelayMs ?? 1000, opts.signal);
    }
  }

  // ---- assets

  /**
   * `GET /image/<schematic>/<version>/<asset>` as a stream (redirects to storage are followed; the range goes with
   * them). 4xx/5xx answers are thrown; 202 and 416 are answers, not errors.
   */
  async download(schematic: string, version: string, asset: string, opts: DownloadOptions = {}): Promise<AssetDownload> {
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = `bytes=${opts.range.start}-${opts.range.end ?? ''}`;
    if (opts.respondAsync) headers.prefer = 'respond-async';
    const res = await this.send(this.assetUrl(schematic, version, asset), { headers, signal: opts.signal });
    if (res.status === 202 && opts.respondAsync) return { kind: 'build', build: (await res.json()) as Build };
    if (res.status === 416) {
      await res.body?.cancel();
      return { kind: 'unsatisfiable', total: parseUnsatisfiedRange(res.headers.get('content-range')) };
    }
    if (res.status !== 200 && res.status !== 206) throw await errorFromResponse(res);
    if (!res.body) throw new FactoryClientError(res.status, 'answer without a body');
    const length = numberHeader(res.headers.get('content-length'));
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'));
      if (!range) {
        await res.body.cancel();
        throw new FactoryClientError(206, `partial answer without a usable Content-Range: ${res.headers.get('content-range') ?? '(none)'}`);
      }
      return { kind: 'bytes', status: 206, start: range.start, total: range.total, length, body: res.body, response: res };
    }
    return { kind: 'bytes', status: 200, start: 0, total: length, length, body: res.body, response: res };
  }

  /** The asset's checksum (`<asset>.sha256`, signed at build time / `.sha512`, derived from the verified bytes), lowercase hex. */
  async checksum(schematic: string, version: string, asset: string, algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<string> {
    const text = await (await this.ok(this.assetUrl(schematic, version, `${asset}.${algorithm}`))).text();
    const hex = /^([0-9a-f]+)\s/i.exec(text)?.[1];
    const expected = algorithm === 'sha256' ? 64 : 128;
    if (!hex || hex.length !== expected) throw new FactoryClientError(200, `unexpected ${algorithm} answer: ${text.split('\n')[0].slice(0, 200)}`);
    return hex.toLowerCase();
  }

  /** `GET /pxe/...`: the iPXE script. */
  async pxeScript(schematic: string, version: string, platformArch: string): Promise<string> {
    return (await this.ok(this.pxeUrl(schematic, version, platformArch))).text();
  }

  // ---- URLs and references (no request)

  assetUrl(schematic: string, version: string, asset: string): string {
    return this.url(['image', schematic, version, asset]);
  }

  pxeUrl(schematic: string, version: string, platformArch: string): string {
    return this.url(['pxe', schematic, version, platformArch]);
  }

  /** The installer image to install or upgrade with, on this factory's host (anchor §9). */
  installerRef(schematic: string, version: string, opts: InstallerRefOptions = {}): string {
    const parsed = parseRequestVersion(version);
    if (!parsed) throw new FactoryClientError(400, `invalid version "${version}"`);
    return installerReference({ host: new URL(this.baseUrl).host, schematicId: schematic, version: parsed, platform: opts.platform, secureboot: opts.secureboot });
  }

  /** A version as the factory writes it in URLs and tags (`v` added), or undefined when it is not a version. */
  static versionTag(version: string): string | undefined {
    const parsed = parseRequestVersion(version);
    return parsed && tagOf(parsed);
  }

  // ---- plumbing

  /** Base URL joined with path segments (each percent-encoded), plus a query. */
  private url(segments: string[], query: Record<string, string> = {}): string {
    const u = new URL(urlJoin(this.baseUrl, ...segments.map((s) => encodeURIComponent(s))));
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u.toString();
  }

  private async send(url: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await this.fetchImpl(url, init);
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw unreachable(url, err);
    }
  }

  private async ok(url: string, init: RequestInit = {}): Promise<Response> {
    const res = await this.send(url, init);
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  private async json<T>(url: string, init: RequestInit = {}): Promise<T> {
    const res = await this.ok(url, init);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new FactoryClientError(res.status, `answer is not JSON: ${text.split('\n')[0].slice(0, 200)}`);
    }
  }
}

function numberHeader(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** `bytes <start>-<end>/<total|*>` */
export function parseContentRange(value: string | null): { start: number; end: number; total?: number } | undefined {
  const m = value && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

// the total of a 416's Content-Range, `bytes */<total>`
function parseUnsatisfiedRange(value: string | null): number | undefined {
  const m = value && /^bytes \*\/(\d+)$/.exec(value.trim());
  return m ? Number(m[1]) : undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
