/**
 * `/image/:schematic/:version/:path` and `/pxe/:schematic/:version/:path`: validate in the anchor's order, find the
 * asset in object storage or have it built (one build per asset cluster-wide), then redirect to a presigned URL or
 * stream it. HEAD is answered directly (and builds too, like the anchor); requests to the PXE host are never
 * redirected, so iPXE firmware without HTTPS/redirect support can follow them.
 *
 * Conditional requests (RFC 9110 §13) are decided here, once, against the asset's ETag (`"<sha256>"`), before the
 * redirect as well as before streaming: If-None-Match matching answers 304 instead of a 302 to storage (the client
 * already holds these bytes; a redirect would only make it fetch them from S3, whose own ETag differs), If-Match not
 * matching answers 412. Range and If-Range apply to the streamed body only; a redirected client's Range and If-Range
 * are judged by storage against its own validators (a sha256 If-Range never matches there: the whole body, never
 * spliced bytes).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { AssetProfile, AssetRecord, AssetTarget, AssetVerifier, BuildTicket, CatalogView, ensureVerifiedStoredAsset, profileTarget, resolveAssetProfile, Sha512Deriver, StoredBytesMismatch } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import { decideRequest, hasPreconditions, RequestDecision } from '@factory/http';
import { BoundedMap } from '@factory/runtime';
import { isSchematicId, parseSchematic, Schematic } from '@factory/schematic';
import type { ObjectStore } from '@factory/storage';
import { AssetRequest, contentDisposition, contentTypeFor, parseAssetPath, parsePxePath, pxeScript } from '@factory/talos';
import type { JobCaller } from './app';
import { sendBody, sendError } from './compat';
import { GatewayBuilds, prefersAsync } from './builds';

export interface AssetRouteOptions {
  jobs: JobCaller;
  /** the upstream catalog, for resolving asset profiles at the edge */
  catalog: CatalogView;
  store: ObjectStore;
  /** checks a stored asset (signature, then bytes) before anything is served from it */
  verifier: AssetVerifier;
  externalUrl: string;
  externalPxeUrl: string;
  noRedirectHost?: string;
  presignTtlSeconds: number;
  buildTimeoutMs: number;
  /** How long a cache-hit redirect is answered from memory (0 disables); bounded by half the presign lifetime. */
  redirectCacheMs: number;
  serverTag: string;
  /**
   * Called on a storage miss before a build is queued for `req` (per-client limits and the job's priority); may throw
   * a 429. Cache hits never reach it.
   */
  beforeBuild?: (req: Request, jobId: string) => Promise<BuildTicket>;
  /** Called for every asset answered from storage without a build (including the in-memory redirect path). */
  onDelivered?: (cached: boolean) => void;
  /** Called with the object key of every stored asset served (its last access, for the storage budget). */
  onAccess?: (objectKey: string) => void;
  /** Build records: `Prefer: respond-async` answers with the build, and the builds `/image` and `/pxe` queue are recorded. */
  builds?: Pick<GatewayBuilds, 'request' | 'recordQueued'>;
}

const MAX_CACHED = 50_000;
const MAX_CACHED_SCHEMATIC_BYTES = 64 * 1024;

interface StoredSchematic {
  yaml: string;
  schematic: Schematic;
}

export class AssetRoutes {
  // Schematics are immutable: once seen, never asked for again.
  private readonly schematics = new BoundedMap<string, StoredSchematic>(MAX_CACHED);
  // Cache-hit redirects by request URL; they expire well before the presigned URL does.
  private readonly redirects = new BoundedMap<string, { location: string; expires: number; objectKey: string }>(MAX_CACHED);

  private readonly sha512: Sha512Deriver;

  constructor(private readonly o: AssetRouteOptions) {
    this.sha512 = new Sha512Deriver(o.store);
  }

  /**
   * The hot path, in front of Express: a repeated GET of an already published asset is answered with the cached
   * 302 without touching Redis or storage. Returns false when the request needs the full path.
   */
  fastRedirect(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET' || !(req.url?.startsWith('/image/') || req.url?.startsWith('/talosctl/')) || req.headers.origin) return false;
    // the cached redirect knows no validators: a conditional request takes the full path
    if (hasPreconditions(req.headers)) return false;
    if (this.o.noRedirectHost && req.headers.host === this.o.noRedirectHost) return false;
    const hit = this.redirects.get(req.url);
    if (!hit) return false;
    if (hit.expires < Date.now()) {
      this.redirects.delete(req.url);
      return false;
    }
    const inbound = req.headers['x-request-id'];
    res.writeHead(302, {
      Server: `Image Factory ${this.o.serverTag}`,
      'X-Request-ID': typeof inbound === 'string' && inbound.length <= 200 ? inbound : randomUUID(),
      Location: hit.location,
      'Content-Length': '0',
    });
    res.end();
    this.o.onDelivered?.(true);
    this.o.onAccess?.(hit.objectKey);
    return true;
  }

  /**
   * Schematic (404) → version (400 here; 500 in the anchor) → path (400) → enhancement from the schematic (400/404):
   * every permanent answer is given here, before any build is queued.
   */
  private async resolve(id: string, rawVersion: string, parsePath: () => AssetRequest, assetPath: (r: AssetRequest) => string): Promise<AssetProfile> {
    const { yaml, schematic } = await this.schematic(id);
    return resolveAssetProfile({ schematicId: id, schematic, schematicYaml: yaml, rawVersion, parsePath, assetPath }, this.o.catalog);
  }

  /** The profile of `/image/<schematic>/<version>/<path>`: every permanent 4xx of that route, in its order. */
  resolveImage(schematicId: string, rawVersion: string, rawPath: string): Promise<AssetProfile> {
    return this.resolve(schematicId, rawVersion, () => parseAssetPath(rawPath), () => rawPath);
  }

  /** Throws the edge's 404 (`schematic ID "x" not found`) unless the schematic is stored. */
  async requireSchematic(id: string): Promise<void> {
    await this.schematic(id);
  }

  private schematic(id: string): Promise<StoredSchematic> {
    if (!isSchematicId(id)) return Promise.reject(new FactoryError(404, `schematic ID ${JSON.stringify(id)} not found`));
    const cached = this.schematics.get(id);
    if (cached !== undefined) return Promise.resolve(cached);
    // Concurrent first requests naming one schematic (50 clients asking for a new schematic's ISO) share one lookup.
    let pending = this.lookingUp.get(id);
    if (!pending) {
      pending = this.lookUpSchematic(id).finally(() => this.lookingUp.delete(id));
      this.lookingUp.set(id, pending);
    }
    return pending;
  }

  /** Schematic lookups in progress by ID (see schematic); each entry lives only while its lookup runs. */
  private readonly lookingUp = new Map<string, Promise<StoredSchematic>>();

  private async lookUpSchematic(id: string): Promise<StoredSchematic> {
    try {
      const { yaml } = await this.o.jobs.call('schematic.get', { id });
      // The store verified the content against its ID; parsing canonical YAML cannot fail.
      const stored = { yaml, schematic: parseSchematic(yaml) };
      // Memory stays bounded by entries × size: unusually large schematics are asked for again instead.
      if (yaml.length <= MAX_CACHED_SCHEMATIC_BYTES) this.schematics.set(id, stored);
      return stored;
    } catch (err) {
      if (err instanceof FactoryError && err.status === 404) throw new FactoryError(404, `schematic ID ${JSON.stringify(id)} not found`);
      throw err;
    }
  }

  /**
   * The stored asset, building it first when missing (one build per asset cluster-wide), verified before anything
   * is served from it: a corrupted one is quarantined and rebuilt, never served.
   */
  private ensure(req: Request, target: AssetTarget, profile?: AssetProfile): Promise<AssetRecord> {
    // Concurrent requests for one asset share one lookup (and one wait for its build): 50 clients asking for a cold
    // asset are one storage lookup and one verification when it is published, not 50 of each.
    const key = target.key;
    const leader = this.ensuring.get(key);
    if (leader) {
      return leader.record.then((record) => {
        this.o.onDelivered?.(leader.stored);
        return record;
      });
    }
    const beforeBuild = this.o.beforeBuild;
    const builds = this.o.builds;
    const shared: { record: Promise<AssetRecord>; stored: boolean } = { record: Promise.resolve(undefined as unknown as AssetRecord), stored: false };
    shared.record = ensureVerifiedStoredAsset(this.o.verifier, this.o.store, target, {
      timeoutMs: this.o.buildTimeoutMs,
      onStored: (hit) => {
        shared.stored = hit;
        this.o.onDelivered?.(hit);
      },
      onHit: this.o.onAccess,
      beforeBuild: (beforeBuild || builds) && (async (jobId) => {
        const ticket = beforeBuild ? await beforeBuild(req, jobId) : {};
        // admitted (or joining): the build's record says queued before its job is added
        if (builds && profile) await builds.recordQueued(profile, ticket.priority);
        return ticket;
      }),
    }).finally(() => this.ensuring.delete(key));
    this.ensuring.set(key, shared);
    return shared.record;
  }

  /** Lookups in progress by asset key (see ensure); each entry lives only while its lookup runs. */
  private readonly ensuring = new Map<string, { record: Promise<AssetRecord>; stored: boolean }>();

  async image(req: Request, res: Response): Promise<void> {
    let rawPath = req.params.path;
    let checksum: 'sha256' | 'sha512' | undefined;
    if (rawPath.endsWith('.sigstore.json')) {
      sendError(res, 402, 'enterprise signing is not enabled: signature endpoint is not available');
      return;
    }
    const m = /\.(sha256|sha512)$/.exec(rawPath);
    if (m) {
      checksum = m[1] as 'sha256' | 'sha512';
      rawPath = rawPath.slice(0, -m[0].length);
    }
    const profile = await this.resolveImage(req.params.schematic, req.params.version, rawPath);
    if (this.o.builds && prefersAsync(req.headers.prefer)) {
      // The client would rather not wait: a build under way is answered with its record; a stored asset as usual.
      const build = await this.o.builds.request(req, profile);
      if (build.state !== 'done') {
        res.setHeader('Location', `/builds/${build.id}`);
        res.setHeader('Preference-Applied', 'respond-async');
        sendBody(res, 202, 'application/json; charset=utf-8', JSON.stringify(build));
        return;
      }
    }
    const filenameParam = typeof req.query.filename === 'string' ? req.query.filename : '';
    const filename = sanitizeFilename(filenameParam) || rawPath;
    const target = profileTarget(this.o.jobs, profile);
    const record = await this.ensure(req, target, profile);

    if (checksum) {
      // Checksums for every asset (an enterprise-only feature of the anchor): `<hex>  <filename>\n`. The SHA-256 is
      // the record's (computed at build time, signed); the SHA-512 the record's where an earlier version signed one,
      // else derived from stored bytes that hash to the signed SHA-256.
      const hex = checksum === 'sha256' ? record.sha256 : await this.sha512Of(req, target, profile, record);
      const body = `${hex}  ${filename}\n`;
      res.setHeader('Content-Disposition', contentDisposition(`${filename}.${checksum}`));
      sendBody(res, 200, 'text/plain; charset=utf-8', body);
      return;
    }

    await this.serve(req, res, record, contentTypeFor(rawPath), filename);
  }

  /**
   * The SHA-512 of a verified asset (Sha512Deriver). Stored bytes found not to hash to the signed SHA-256 are
   * quarantined like any corrupt asset, and the asset is found (or built) again, once.
   */
  private async sha512Of(req: Request, target: AssetTarget, profile: AssetProfile, record: AssetRecord): Promise<string> {
    try {
      return await this.sha512.of(record);
    } catch (err) {
      if (!(err instanceof StoredBytesMismatch)) throw err;
      if (err.validator) await this.o.verifier.quarantine({ record, validator: err.validator }, 'digest', err.message);
      try {
        return await this.sha512.of(await this.ensure(req, target, profile));
      } catch (again) {
        if (again instanceof StoredBytesMismatch) throw new FactoryError(503, `the stored asset does not match its signed digest (${again.message}); ask again`);
        throw again;
      }
    }
  }

  /**
   * Any other stored asset (talosctl binaries): found or built once through its target, verified, then answered as
   * `/image` assets are (conditionals, 302 to storage or streamed).
   */
  async serveTarget(req: Request, res: Response, target: AssetTarget, filename: string): Promise<void> {
    const record = await this.ensure(req, target);
    await this.serve(req, res, record, target.contentType, filename);
  }

  /** A verified stored asset: 304/412 first, then a redirect to storage where allowed, else the bytes. */
  private async serve(req: Request, res: Response, record: AssetRecord, contentType: string, filename: string): Promise<void> {
    const etag = `"${record.sha256}"`;
    const decision = decideRequest(req.method, req.headers, { size: record.size, etag });
    if (decision.kind === 'not-modified') {
      // 304: no body, the validator a 200 would carry (RFC 9110 §15.4.5)
      res.status(304).setHeader('ETag', etag);
      res.end();
      return;
    }
    if (decision.kind === 'precondition-failed') {
      sendError(res, 412, 'precondition failed');
      return;
    }
    if (req.method === 'GET' && hostOf(req) !== this.o.noRedirectHost) {
      const url = await this.o.store.presignGet(record.key, { ttlSeconds: this.o.presignTtlSeconds, contentDisposition: contentDisposition(filename) });
      if (url) {
        const ttl = Math.min(this.o.redirectCacheMs, (this.o.presignTtlSeconds * 1000) / 2);
        if (ttl > 0) this.redirects.set(req.originalUrl, { location: url, expires: Date.now() + ttl, objectKey: record.key });
        res.redirect(302, url);
        return;
      }
    }
    await this.stream(req, res, record, decision, contentType, filename);
  }

  /** The body (or HEAD's headers) after the preconditions passed: whole, the one range decided, or 416. */
  private async stream(
    req: Request,
    res: Response,
    record: AssetRecord,
    decision: Exclude<RequestDecision, { kind: 'not-modified' | 'precondition-failed' }>,
    contentType: string,
    filename: string,
  ): Promise<void> {
    res.setHeader('Content-Type', contentType);
    res.setHeader('Content-Disposition', contentDisposition(filename));
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', `"${record.sha256}"`);
    if (decision.kind === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${record.size}`);
      sendError(res, 416, 'requested range not satisfiable');
      return;
    }
    if (req.method === 'HEAD') {
      res.setHeader('Content-Length', record.size);
      res.status(200).end();
      return;
    }
    const range = decision.kind === 'partial' ? decision : undefined;
    const got = await this.o.store.get(record.key, range ? { start: range.start, end: range.end } : undefined);
    if (!got) throw new FactoryError(503, 'asset disappeared from storage; retry');
    if (range) {
      res.status(206);
      res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${record.size}`);
      res.setHeader('Content-Length', range.end - range.start + 1);
    } else {
      res.status(200);
      res.setHeader('Content-Length', record.size);
    }
    // pipeline, not pipe + 'close': a client gone while the object was being opened has already closed `res`, and
    // the stored object's descriptor must be released then too (not left to the garbage collector).
    await pipeline(got.body as NodeJS.ReadableStream, res).catch(() => {
      if (!res.destroyed) res.destroy();
    });
  }

  async pxe(req: Request, res: Response): Promise<void> {
    const profile = await this.resolve(
      req.params.schematic,
      req.params.version,
      () => parsePxePath(req.params.path),
      (a) => `cmdline-${a.platform}-${a.arch}${a.secureboot ? '-secureboot' : ''}`,
    );
    const record = await this.ensure(req, profileTarget(this.o.jobs, profile), profile);
    const cmdline = await this.o.store.getBuffer(record.key, 64 * 1024);
    if (!cmdline) throw new FactoryError(503, 'asset disappeared from storage; retry');
    const script = pxeScript({
      baseUrl: this.o.externalPxeUrl,
      schematicId: profile.schematicId,
      versionTag: profile.version,
      arch: profile.arch,
      platform: profile.platform,
      secureboot: profile.secureboot,
      cmdline: cmdline.toString('utf8'),
    });
    sendBody(res, 200, 'text/plain; charset=utf-8', script);
  }
}

function hostOf(req: Request): string {
  return req.header('host') ?? '';
}

/** A download name, not a path: no separators, no control characters, no quotes. */
function sanitizeFilename(name: string): string {
  return name.replace(/[\\/"\x00-\x1f\x7f]/g, '').slice(0, 255);
}
