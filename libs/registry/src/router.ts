/**
 * The OCI distribution API (pull side) over the factory's own content: an express Router to mount at `/v2`.
 *
 *   app.use('/v2', createRegistryRouter({ store, resolveManifest, checkRepository, proxy }))
 *
 * GET and HEAD only (HEAD = GET without a body; it also triggers builds, like the anchor). Other methods get
 * `405 Method Not Allowed` + `Allow: GET, HEAD, OPTIONS`.
 */
import { timingSafeEqual } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { Router } from 'express';
import type { Request, Response } from 'express';
import type { Descriptor } from '@factory/oci';
import { contentRange, decideRequest, errorTextLine } from '@factory/http';
import { isStorageError } from '@factory/storage';
import {
  HttpErrorInfo, RegistryError, blobUnknown, defaultErrorInfo, manifestUnknown, ociErrorBody,
} from './errors';
import {
  ProxyRoute, SchematicRoute, isBuildReference, parseInstallerImageName, parseRegistryPath, proxyRouteGrammarError,
} from './routes';
import { OciContentStore, StoredManifest, blobKey, sha256Hex } from './store';

/** What the injected callbacks learn about a request for a generated (schematic) repository. */
export interface RepositoryRequest {
  /** repository's first segment, e.g. `metal-installer` (not validated: see platform) */
  image: string;
  schematicId: string;
  /** from parseInstallerImageName(image); null when the name is not an installer name (→ caller answers 400) */
  platform: string | null;
  secureboot: boolean;
  method: 'GET' | 'HEAD';
  /** aborted when the client goes away before the response is complete */
  signal: AbortSignal;
  /** the express request (headers, auth context) */
  request: Request;
}

export interface ManifestRequest extends RepositoryRequest {
  /** `latest` or a tag starting with `v` (everything else is served from the store after checkRepository) */
  reference: string;
}

export interface RegistryRouterDeps {
  store: OciContentStore;
  /**
   * Manifest requests for `latest` and `v…` tags: check the schematic (404) and the image name (400
   * `invalid image: <name>`), resolve `latest`, find or build the image, and return the descriptor of a manifest
   * that is in `store`. Throw a RegistryError / FactoryError (status + one-line message) for client errors.
   */
  resolveManifest(req: ManifestRequest): Promise<Descriptor>;
  /**
   * Every other request on a generated repository (blobs, referrers, digest and non-version tag manifests such as
   * `sha256-<hex>.sig`): check the schematic exists and the image name is valid; throw like resolveManifest.
   */
  checkRepository(req: RepositoryRequest): Promise<void>;
  /** `/v2/siderolabs/<image>/…` source-image proxy; without it those paths answer `404 unknown image: <image>`. */
  proxy?: (route: ProxyRoute, req: Request, res: Response) => Promise<void> | void;
  /** GET blob → `307` to a presigned URL when the store gives one (S3). Default true; set false to always stream. */
  redirectBlobs?: boolean;
  /**
   * Blob hand-off to a front proxy that shares the object store (the embedded gateway on local storage): a GET
   * carrying `X-Factory-Handoff: <this secret>` is answered, after every check (preconditions and Range included),
   * with the status and headers only, plus `X-Factory-Object` (the object key), `X-Factory-Length` and
   * `X-Factory-Range`, and the proxy streams the bytes itself — one hop less for blob bodies (like nginx's
   * X-Accel-Redirect). The secret proves the request comes from that proxy: any other client (the port reached
   * directly) never sees an internal header. Off when unset.
   */
  handoffSecret?: string;
  /** lifetime of presigned blob URLs; default 3600 */
  presignTtlSeconds?: number;
  /** maps errors thrown by the callbacks to client responses; defaults to `defaultErrorInfo` (RegistryError, FactoryError) */
  errorInfo?: (err: unknown) => HttpErrorInfo | undefined;
  /** called for errors answered with a 5xx (log them) */
  onError?: (err: unknown, req: Request) => void;
}

const ALLOW = 'GET, HEAD, OPTIONS';

/** Blob hand-off protocol between a front proxy and the router (see RegistryRouterDeps.objectHandoff). */
export const HANDOFF_REQUEST_HEADER = 'x-factory-handoff';
export const HANDOFF_OBJECT_HEADER = 'x-factory-object';
export const HANDOFF_LENGTH_HEADER = 'x-factory-length';
export const HANDOFF_RANGE_HEADER = 'x-factory-range';
const BLOB_CONTENT_TYPE = 'application/octet-stream';

/** The request proves it comes from the front proxy holding the hand-off secret (compared in constant time). */
function carriesHandoffSecret(req: Request, secret: string | undefined): boolean {
  const sent = req.header(HANDOFF_REQUEST_HEADER);
  if (!secret || sent === undefined) return false;
  const a = Buffer.from(sent, 'utf8');
  const b = Buffer.from(secret, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Validator headers of content addressed by `digest`: what a 200 sends and a 304 repeats (RFC 9110 §15.4.5). */
function validatorHeaders(digest: string): Record<string, string> {
  return { 'Docker-Content-Digest': digest, ETag: `"${digest}"` };
}

/**
 * 304 (no body, the validators only) or 412 (`precondition failed`) when the request's preconditions say so; true
 * when answered.
 */
function answerPrecondition(res: Response, kind: string, validators: Record<string, string>): boolean {
  if (kind === 'not-modified') {
    res.status(304);
    for (const [k, v] of Object.entries(validators)) res.setHeader(k, v);
    res.end();
    return true;
  }
  if (kind === 'precondition-failed') {
    sendTextError(res, 412, 'precondition failed');
    return true;
  }
  return false;
}

function sendBytes(res: Response, status: number, contentType: string, body: Buffer, headers: Record<string, string> = {}): void {
  res.status(status);
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(body.length));
  if (res.req.method === 'HEAD') res.end();
  else res.end(body);
}

/** Go's http.Error: text/plain, nosniff, message + newline (control characters escaped: one line, see errorTextLine). */
export function sendTextError(res: Response, status: number, message: string): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  sendBytes(res, status, 'text/plain; charset=utf-8', Buffer.from(errorTextLine(message), 'utf8'));
}

function sendOciError(res: Response, status: number, code: string, message: string, detail?: unknown): void {
  sendBytes(res, status, 'application/json; charset=utf-8', Buffer.from(ociErrorBody(code, message, detail), 'utf8'));
}

function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

function firstQueryValue(req: Request, name: string): string {
  const q = req.originalUrl.indexOf('?');
  if (q < 0) return '';
  return new URLSearchParams(req.originalUrl.slice(q + 1)).get(name) ?? '';
}

function isPrematureClose(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

export function createRegistryRouter(deps: RegistryRouterDeps): Router {
  const { store } = deps;
  const redirectBlobs = deps.redirectBlobs ?? true;
  const ttl = deps.presignTtlSeconds && deps.presignTtlSeconds > 0 ? deps.presignTtlSeconds : 3600;
  const errorInfo = (err: unknown) => deps.errorInfo?.(err) ?? defaultErrorInfo(err);

  const fail = (err: unknown, req: Request, res: Response): void => {
    if (res.headersSent || res.destroyed) {
      if (!res.writableEnded && !isPrematureClose(err)) deps.onError?.(err, req);
      res.destroy();
      return;
    }
    if (req.destroyed && isPrematureClose(err)) return;
    const info = errorInfo(err);
    if (!info) {
      deps.onError?.(err, req);
      sendTextError(res, 500, 'internal server error');
      return;
    }
    if (info.status >= 500) deps.onError?.(err, req);
    if (info.ociCode) sendOciError(res, info.status, info.ociCode, info.message, info.detail);
    else sendTextError(res, info.status, info.message);
  };

  const repositoryRequest = (route: SchematicRoute, req: Request, signal: AbortSignal): RepositoryRequest => {
    const parsed = parseInstallerImageName(route.image);
    return {
      image: route.image,
      schematicId: route.schematicId,
      platform: parsed ? parsed.platform : null,
      secureboot: parsed ? parsed.secureboot : false,
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
      signal,
      request: req,
    };
  };

  const serveManifest = async (route: SchematicRoute, base: RepositoryRequest, res: Response): Promise<void> => {
    let manifest: StoredManifest | null;
    if (isBuildReference(route.reference)) {
      const desc = await deps.resolveManifest({ ...base, reference: route.reference });
      manifest = await store.getManifest(desc.digest);
    } else {
      await deps.checkRepository(base);
      manifest = await store.resolveManifest(`${route.image}/${route.schematicId}`, route.reference);
    }
    if (!manifest) throw manifestUnknown();
    sendDocument(res, manifest);
  };

  /** A manifest or referrers index: content addressed by its digest, which is also its (quoted) ETag. */
  const sendDocument = (res: Response, doc: { mediaType: string; digest: string; bytes: Buffer }, extra: Record<string, string> = {}): void => {
    const validators = validatorHeaders(doc.digest);
    const decision = decideRequest(res.req.method, res.req.headers, { etag: validators.ETag });
    if (answerPrecondition(res, decision.kind, validators)) return;
    sendBytes(res, 200, doc.mediaType, doc.bytes, { ...validators, ...extra });
  };

  const serveBlob = async (route: SchematicRoute, base: RepositoryRequest, req: Request, res: Response): Promise<void> => {
    await deps.checkRepository(base);
    const digest = route.reference;
    const info = await store.statBlob(digest);
    if (!info) throw blobUnknown();
    const validators = validatorHeaders(digest);
    // Preconditions before the redirect too: a client that holds the blob gets its 304 without a round trip to S3.
    const range = decideRequest(req.method, req.headers, { size: info.size, etag: validators.ETag });
    if (answerPrecondition(res, range.kind, { ...validators, 'Cache-Control': 'max-age=31536000' })) return;
    if (req.method === 'GET' && redirectBlobs) {
      const url = await store.presignBlob(digest, ttl);
      if (url) {
        res.status(307);
        res.setHeader('Location', url);
        res.setHeader('Docker-Content-Digest', digest);
        res.setHeader('Content-Length', '0');
        res.end();
        return;
      }
    }
    const common: Record<string, string> = { ...validators, 'Accept-Ranges': 'bytes', 'Cache-Control': 'max-age=31536000' };
    if (range.kind === 'unsatisfiable') {
      res.setHeader('Content-Range', contentRange(range, info.size));
      sendTextError(res, 416, 'requested range not satisfiable');
      return;
    }
    const partial = range.kind === 'partial' ? range : null;
    const length = partial ? partial.end - partial.start + 1 : info.size;
    const status = partial ? 206 : 200;
    if (req.method === 'HEAD' || length === 0) {
      res.status(status);
      for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
      if (partial) res.setHeader('Content-Range', contentRange(partial, info.size));
      res.setHeader('Content-Type', BLOB_CONTENT_TYPE);
      res.setHeader('Content-Length', String(length));
      res.end();
      return;
    }
    if (carriesHandoffSecret(req, deps.handoffSecret)) {
      res.status(status);
      for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
      if (partial) res.setHeader('Content-Range', contentRange(partial, info.size));
      res.setHeader('Content-Type', BLOB_CONTENT_TYPE);
      res.setHeader(HANDOFF_OBJECT_HEADER, blobKey(digest));
      res.setHeader(HANDOFF_LENGTH_HEADER, String(length));
      if (partial) res.setHeader(HANDOFF_RANGE_HEADER, `${partial.start}-${partial.end}`);
      res.setHeader('Content-Length', '0');
      res.end();
      return;
    }
    let got;
    try {
      got = await store.getBlob(digest, partial ? { start: partial.start, end: partial.end } : undefined);
    } catch (err) {
      if (isStorageError(err, 'INVALID_RANGE')) {
        // the blob changed size under us (cannot happen for content-addressed data, but never 500 for it)
        res.setHeader('Content-Range', contentRange({ kind: 'unsatisfiable' }, info.size));
        sendTextError(res, 416, 'requested range not satisfiable');
        return;
      }
      throw err;
    }
    if (!got) throw blobUnknown();
    res.status(status);
    for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
    if (partial) res.setHeader('Content-Range', contentRange(partial, got.info.size));
    res.setHeader('Content-Type', BLOB_CONTENT_TYPE);
    res.setHeader('Content-Length', String(length));
    await pipeline(got.body as Readable, res);
  };

  const serveReferrers = async (route: SchematicRoute, base: RepositoryRequest, req: Request, res: Response): Promise<void> => {
    await deps.checkRepository(base);
    if (!sha256Hex(route.reference)) throw new RegistryError(404, `invalid referrers subject digest: ${route.reference}`);
    const artifactType = firstQueryValue(req, 'artifactType');
    const index = await store.referrersIndex(route.reference, artifactType || undefined);
    sendDocument(res, index, artifactType ? { 'Oci-Filters-Applied': 'artifactType' } : {});
  };

  const router = Router();
  router.use((req: Request, res: Response) => {
    (req as Request & { routeName?: string }).routeName = '/v2/*path';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', ALLOW);
      if (req.method === 'OPTIONS') res.status(200).end();
      else sendTextError(res, 405, 'Method Not Allowed');
      return;
    }
    const route = parseRegistryPath(decodePath(req.path));
    if (route.kind === 'error') {
      sendTextError(res, route.status, route.error);
      return;
    }
    if (route.kind === 'ping') {
      res.status(200).end();
      return;
    }
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    let work: Promise<void>;
    if (route.kind === 'proxy') {
      // Names and references outside the OCI grammar (NUL, spaces, CR/LF, non-ASCII) never reach the upstream.
      const malformed = proxyRouteGrammarError(route);
      work = malformed
        ? Promise.reject(new RegistryError(400, malformed.message, { ociCode: malformed.ociCode }))
        : deps.proxy
          ? Promise.resolve().then(() => deps.proxy!(route, req, res))
          : Promise.reject(new RegistryError(404, `unknown image: ${route.image}`));
    } else {
      const base = repositoryRequest(route, req, abort.signal);
      switch (route.resource) {
        case 'manifests': work = serveManifest(route, base, res); break;
        case 'blobs': work = serveBlob(route, base, req, res); break;
        default: work = serveReferrers(route, base, req, res); break;
      }
    }
    work.catch((err) => fail(err, req, res));
  });
  return router;
}
