/**
 * The gateway's HTTP API. Every answer that needs state comes from another service over BullMQ jobs; the gateway
 * itself holds no keys, no storage credentials and no upstream registry access.
 */
import type { IncomingMessage } from 'node:http';
import express, { Request, Response } from 'express';
import type { Logger } from '@factory/telemetry';
import { Counter, Gauge, Histogram, Registry } from '@factory/telemetry';
import { FactoryError, isFactoryError, JobVanishedError } from '@factory/errors';
import { CallOptions, JobName, PayloadOf, QueueName, QUEUES, ResultOf } from '@factory/queue';
import { goJsonEncode } from '@factory/gocompat';
import { decodeSchematicBody, SchematicError } from '@factory/schematic';
import { storageFault } from '@factory/storage';
import { cors, identityHeaders, Routes, sendBody, sendError } from './compat';
import { AssetRoutes } from './assets';
import { RateLimitedError, RateLimiter } from '@factory/ratelimit';
import { readRequestBody } from '@factory/http';
import type { TalosctlRoutes } from './talosctl';
import type { BuildRoutes } from './builds';
import { OPENAPI_DOCUMENT } from '@factory/openapi';
import { addNotifyRoutes, NotifyRouteOptions } from './notify/routes';
import { registerUiRoutes, UiOptions } from './ui/routes';

export interface JobCaller {
  call<K extends JobName>(name: K, payload: PayloadOf<K>, opts?: CallOptions): Promise<ResultOf<K>>;
  workerCount(queue: QueueName): Promise<number>;
  ping(): Promise<void>;
}

export interface GatewayOptions {
  jobs: JobCaller;
  assets?: AssetRoutes;
  logger: Logger;
  metrics: Registry;
  serverTag: string;
  allowedOrigins: string[];
  maxSchematicBytes: number;
  /**
   * Bytes of `POST /schematics` bodies this gateway may have in Redis at once (queued `schematic.create` jobs); a
   * body beyond it is a 503 with Retry-After. Default: 64 bodies of the largest size.
   */
  maxSchematicBytesInFlight?: number;
  /** per-client limits (absent: none) and who a request's client is */
  limits?: { limiter: RateLimiter; clientOf: (req: IncomingMessage) => string };
  /** `/talosctl/...` (absent: not served) */
  talosctl?: TalosctlRoutes;
  /** the body of `/llms.txt` (absent: not served) */
  llmsText?: string;
  // --- issue 14: build resources (h/builds) ---
  /** `/builds...` (absent: not served) */
  builds?: BuildRoutes;
  /** `/prewarm` and `/webhooks` (absent: not served) */
  notify?: NotifyRouteOptions;
  /** the web UI: `/`, `/ui/*`, its CSS and script (absent: not served) */
  ui?: UiOptions;
}

export function createApp(opts: GatewayOptions): express.Express {
  const { jobs, logger, metrics } = opts;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['handler', 'method', 'code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
    registers: [metrics],
  });
  const inflight = new Gauge({ name: 'http_requests_inflight', help: 'HTTP requests being served', labelNames: ['handler'], registers: [metrics] });
  const responseSize = new Counter({ name: 'http_response_size_bytes_total', help: 'Bytes sent in response bodies', labelNames: ['handler'], registers: [metrics] });

  app.use((req, res, next) => {
    const end = duration.startTimer();
    inflight.inc({ handler: 'all' });
    res.on('close', () => {
      const handler = (req as Request & { routeName?: string }).routeName ?? 'unmatched';
      inflight.dec({ handler: 'all' });
      end({ handler, method: req.method, code: String(res.statusCode) });
      const len = Number(res.getHeader('content-length') ?? 0);
      if (len) responseSize.inc({ handler }, len);
    });
    next();
  });
  app.use(identityHeaders(opts.serverTag));
  app.use(cors(opts.allowedOrigins));

  const routes = new Routes();
  const onError = (err: unknown, req: Request, res: Response) => {
    if (isFactoryError(err)) {
      if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      if (err.status >= 500) logger.warn({ path: req.path, status: err.status, msg: err.message }, 'request failed');
      sendError(res, err.status, err.message);
      return;
    }
    const fault = storageFault(err);
    if (fault) {
      logger.warn({ err, path: req.path, requestId: res.getHeader('X-Request-ID') }, 'storage fault');
      sendError(res, 503, fault.reason);
      return;
    }
    logger.error({ err, path: req.path, requestId: res.getHeader('X-Request-ID') }, 'unexpected error');
    sendError(res, 500, 'internal server error');
  };

  // --- health -------------------------------------------------------------------------------------------------
  routes.add(['GET', 'HEAD'], '/healthz', (_req, res) => {
    res.status(200).end();
  });
  let readyCache: { at: number; error?: string } | undefined;
  routes.add(['GET', 'HEAD'], '/readyz', async (_req, res) => {
    if (!readyCache || Date.now() - readyCache.at > 2000) readyCache = { at: Date.now(), error: await readiness(jobs) };
    if (readyCache.error) sendError(res, 503, `not ready: ${readyCache.error}`);
    else res.status(200).end();
  });
  routes.add(['GET'], '/metrics', async (_req, res) => {
    sendBody(res, 200, metrics.contentType, await metrics.metrics());
  });

  // --- schematics -----------------------------------------------------------------------------------------------
  // A create job carries the whole body, so it is removed as soon as it is answered (completed or failed: Redis never
  // accumulates bodies), and the bytes queued from this gateway are capped.
  const maxSchematicBytesInFlight = opts.maxSchematicBytesInFlight ?? 64 * opts.maxSchematicBytes;
  let schematicBytesInFlight = 0;
  /** Creates a schematic from its text (YAML or JSON); beyond the bytes in flight, a 503 with Retry-After. */
  const createSchematic = async (res: Response, text: string) => {
    const size = Buffer.byteLength(text, 'utf8');
    if (schematicBytesInFlight + size > maxSchematicBytesInFlight) {
      res.setHeader('Retry-After', '1');
      throw new FactoryError(503, 'service temporarily unavailable: too many schematics are being created, retry');
    }
    schematicBytesInFlight += size;
    const call = () => jobs.call('schematic.create', { body: text }, { removeWhenDone: true });
    try {
      return await call();
    } catch (err) {
      // Answered and removed before this caller read the answer: creating is idempotent, so ask once more.
      if (err instanceof JobVanishedError) return call();
      throw err;
    } finally {
      schematicBytesInFlight -= size;
    }
  };
  /** Per-client schematic limits, taken before anything is read or parsed. */
  const admitSchematic = async (req: Request) => {
    if (opts.limits) await opts.limits.limiter.takeSchematic(opts.limits.clientOf(req));
  };
  routes.add(['POST'], '/schematics', async (req, res) => {
    // before the body is read: a limited client costs no parsing (its unread body closes the connection)
    await admitSchematic(req);
    const body = await readRequestBody(req, res, opts.maxSchematicBytes);
    let text: string;
    try {
      // Bytes that are not text are the client's mistake (400 in go-yaml's words), never silently replaced.
      text = decodeSchematicBody(body);
    } catch (err) {
      if (err instanceof SchematicError) throw new FactoryError(400, err.message);
      throw err;
    }
    const created = await createSchematic(res, text);
    sendBody(res, 201, 'application/json', goJsonEncode({ id: created.id, schematic: created.yaml }));
  });
  routes.add(['GET'], '/schematics/:schematic', async (req, res) => {
    const { yaml } = await jobs.call('schematic.get', { id: req.params.schematic });
    sendBody(res, 200, 'application/yaml', yaml);
  });

  // --- versions, extensions, overlays -----------------------------------------------------------------------------
  // The anchor sends these JSON bodies without a Content-Type (Go sniffs text/plain); we say application/json.
  routes.add(['GET'], '/versions', async (req, res) => {
    const { versions } = await jobs.call('upstream.versions', { broken: req.query.broken === 'true' });
    sendBody(res, 200, 'application/json', goJsonEncode(versions));
  });
  routes.add(['GET'], '/version/:version/extensions/official', async (req, res) => {
    const { extensions } = await jobs.call('upstream.extensions', { version: req.params.version });
    sendBody(res, 200, 'application/json', goJsonEncode(extensions));
  });
  routes.add(['GET'], '/version/:version/overlays/official', async (req, res) => {
    const { overlays } = await jobs.call('upstream.overlays', { version: req.params.version });
    sendBody(res, 200, 'application/json', goJsonEncode(overlays));
  });

  // --- assets and PXE ----------------------------------------------------------------------------------------------
  if (opts.assets) {
    const assets = opts.assets;
    routes.add(['GET', 'HEAD'], '/image/:schematic/:version/:path', (req, res) => assets.image(req, res));
    routes.add(['GET'], '/pxe/:schematic/:version/:path', (req, res) => assets.pxe(req, res));
  }

  // --- keys -------------------------------------------------------------------------------------------------------
  let cosignPem: string | undefined;
  routes.add(['GET'], '/oci/cosign/signing-key.pub', async (_req, res) => {
    cosignPem ??= (await jobs.call('signing.publicKey', { key: 'cosign' })).pem;
    sendBody(res, 200, 'application/x-pem-file', cosignPem);
  });
  // The Secure Boot signing certificate as configured, byte for byte; the anchor answers 500 when Secure Boot is off.
  let signingCertPem: string | undefined;
  routes.add(['GET'], '/secureboot/signing-cert.pem', async (_req, res) => {
    if (!signingCertPem) {
      const sb = await jobs.call('signing.secureBootPublic', {});
      if (!sb.enabled) throw new FactoryError(500, 'internal server error');
      signingCertPem = sb.signingCertPem;
    }
    sendBody(res, 200, 'application/x-pem-file', signingCertPem);
  });

  // --- talosctl downloads and /llms.txt (anchor-api §1.5, §1.6) -------------------------------------------------
  if (opts.talosctl) {
    const talosctl = opts.talosctl;
    routes.add(['GET'], '/talosctl/:version', (req, res) => talosctl.list(req, res));
    routes.add(['GET', 'HEAD'], '/talosctl/:version/:path', (req, res) => talosctl.download(req, res));
  }
  if (opts.llmsText !== undefined) {
    const llms = opts.llmsText;
    routes.add(['GET'], '/llms.txt', (_req, res) => sendBody(res, 200, 'text/plain; charset=utf-8', llms));
  }

  // --- build resources (issue 14) ------------------------------------------------------------------------------
  if (opts.builds) {
    const builds = opts.builds;
    routes.add(['POST'], '/builds', (req, res) => builds.create(req, res));
    routes.add(['GET'], '/builds', (req, res) => builds.list(req, res));
    routes.add(['GET'], '/builds/:id', (req, res) => builds.get(req, res));
    routes.add(['GET'], '/builds/:id/events', (req, res) => builds.events(req, res));
  }
  // --- the OpenAPI 3.1 document of every public route (libs/openapi), serialised once -------------------------
  const openApiJson = JSON.stringify(OPENAPI_DOCUMENT);
  routes.add(['GET'], '/openapi.json', (_req, res) => sendBody(res, 200, 'application/json; charset=utf-8', openApiJson));
  // --- pre-warm and webhooks (issue 14) ---------------------------------------------------------------------------
  if (opts.notify) addNotifyRoutes(routes, opts.notify);
  // --- web UI (anchor-api §9) ---------------------------------------------------------------------------------
  // the final page creates its schematic as POST /schematics does: same limits, same job
  if (opts.ui) {
    registerUiRoutes(routes, {
      ...opts.ui,
      createSchematic: async (req, res, yaml) => {
        await admitSchematic(req);
        return createSchematic(res, yaml);
      },
    });
  }

  app.use(routes.middleware(onError));
  app.use((_req, res) => sendError(res, 404, '404 page not found'));
  return app;
}

/** Ready when Redis answers, every queue has a live worker, and storage and upstream answer. */
async function readiness(jobs: JobCaller): Promise<string | undefined> {
  try {
    await jobs.ping();
  } catch (err) {
    return `redis: ${(err as Error).message}`;
  }
  for (const q of QUEUES) {
    try {
      if ((await jobs.workerCount(q)) === 0) return `no worker is serving the ${q} queue`;
    } catch (err) {
      return `redis: ${(err as Error).message}`;
    }
  }
  try {
    await jobs.call('schematic.ping', {}, { timeoutMs: 5000 });
  } catch (err) {
    // A storage fault arrives as its reason ("storage is read-only (EROFS)"); anything else gets the prefix.
    const message = (err as Error).message;
    return message.startsWith('storage ') ? message : `storage: ${message}`;
  }
  try {
    await jobs.call('upstream.ping', {}, { timeoutMs: 10_000 });
  } catch (err) {
    return `upstream: ${(err as Error).message}`;
  }
  return undefined;
}
