/**
 * gateway: the HTTP API (and later UI and PXE). Stateless; scale it freely behind a load balancer.
 */
import { createPublicKey } from 'node:crypto';
import { AssetVerifier, integrityEvents } from '@factory/asset';
import { EnvReader, readCommon, readExternal, readHandoffSecret, readLimits, readReceiveTimeouts } from '@factory/config';
import { createBoundedServer } from '@factory/http';
import { createObjectStore } from '@factory/storage';
import { AccessTracker } from '@factory/budget';
import { JobClient, redisConnection } from '@factory/queue';
import { drainable, fatal, onShutdown } from '@factory/runtime';
import { Counter, createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp } from './app';
import { QueuedCatalogView } from './catalog-view';
import { AssetRoutes } from './assets';
import { buildTicket, createServiceLimiter, requestClient } from '@factory/ratelimit';
import { createRegistryProxy, isRegistryPath } from './registry';
import { TalosctlRoutes } from './talosctl';
import { llmsText } from './llms';

/** The routes that read a request body: schematics, and the wizard's form posts. */
const BODY_ROUTES = new Set(['/schematics', '/ui/wizard', '/ui/extensions-list']);

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const port = env.port('PORT', 8080);
  const host = env.string('HOST', '0.0.0.0');
  const allowedOrigins = env.list('FACTORY_ALLOWED_ORIGINS', ['*']);
  const maxSchematicBytes = env.int('FACTORY_MAX_SCHEMATIC_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024);
  const maxSchematicBytesInFlight = env.bytes('FACTORY_SCHEMATIC_BYTES_IN_FLIGHT', 64 * maxSchematicBytes);
  if (maxSchematicBytesInFlight < maxSchematicBytes) env.problem('FACTORY_SCHEMATIC_BYTES_IN_FLIGHT must be at least FACTORY_MAX_SCHEMATIC_BYTES');
  const jobTimeoutMs = env.duration('FACTORY_JOB_TIMEOUT', 30_000);
  const serverTag = env.string('FACTORY_SERVER_TAG', 'v0.1.0');
  const external = readExternal(env);
  const buildTimeoutMs = env.duration('BUILD_TIMEOUT', 20 * 60_000) + 60_000;
  const redirectCacheMs = env.duration('FACTORY_REDIRECT_CACHE_TTL', 60_000);
  const receive = readReceiveTimeouts(env);
  // The registry-proxy's HTTP side (OCI distribution API), served under /v2 on this host and port.
  const registryUrl = env.url('FACTORY_REGISTRY_URL', 'http://127.0.0.1:8081') as string;
  const handoffSecret = readHandoffSecret(env);
  const limits = readLimits(env);
  env.done();

  const logger = createLogger('gateway', common.logLevel);
  const metrics = createMetricsRegistry('gateway');
  const jobs = new JobClient(common.redis.url, common.redis.prefix, logger, jobTimeoutMs);
  const store = createObjectStore(common.storage);
  // Last access of served assets, for the storage budget's least-recently-used eviction.
  const accessConnection = redisConnection(common.redis.url, 'producer', `${common.redis.prefix}-storage-access`);
  const access = new AccessTracker(accessConnection, common.redis.prefix, logger);
  // the longest a build is waited for, plus slack: outstanding entries of a gateway that died expire after it
  const serviceLimiter = createServiceLimiter({ redisUrl: common.redis.url, prefix: common.redis.prefix, settings: limits, holdMs: buildTimeoutMs + 60_000, metrics, logger });
  const limiter = serviceLimiter.limiter;
  const delivered = new Counter({ name: 'image_factory_assets_delivered_total', help: 'Asset requests by whether the asset was already stored', labelNames: ['cached'], registers: [metrics] });
  const verifier = new AssetVerifier({
    store,
    publicKey: async () => createPublicKey((await jobs.call('signing.publicKey', { key: 'cosign' })).pem),
    events: integrityEvents(metrics, logger),
    // S3 assigns a new ETag/Last-Modified to every write: a version the signing service checked is not downloaded again.
    trustSignedVersion: store.kind === 's3',
  });
  const catalog = new QueuedCatalogView(jobs);
  const assets = new AssetRoutes({
    jobs,
    catalog,
    store,
    verifier,
    externalUrl: external.externalUrl,
    externalPxeUrl: external.externalPxeUrl,
    noRedirectHost: external.noRedirectHost,
    presignTtlSeconds: common.storage.kind === 's3' ? common.storage.presignTtlSeconds : 3600,
    buildTimeoutMs,
    redirectCacheMs,
    serverTag,
    onDelivered: (cached) => delivered.inc({ cached: String(cached) }),
    onAccess: (objectKey) => access.touch(objectKey),
    beforeBuild: (req, jobId) => buildTicket(limiter, requestClient(req, limits.trustProxy), jobId),
  });
  const talosctl = new TalosctlRoutes({ jobs, catalog, assets, externalUrl: external.externalUrl });
  const app = createApp({
    jobs, assets, logger, metrics, serverTag, allowedOrigins, maxSchematicBytes, maxSchematicBytesInFlight, limits: { limiter, clientOf: (req) => requestClient(req, limits.trustProxy) },
    talosctl, llmsText: llmsText(external),
    ui: { jobs, catalog, store, talosctlFiles: (tag) => talosctl.files(tag), externalUrl: external.externalUrl, externalPxeUrl: external.externalPxeUrl, serverTag },
  });

  const registry = createRegistryProxy({
    target: registryUrl,
    logger,
    timeoutMs: buildTimeoutMs,
    handoff: store.kind === 'local' && handoffSecret ? { store, secret: handoffSecret } : undefined,
    client: handoffSecret ? { of: (req) => requestClient(req, limits.trustProxy), proof: handoffSecret } : undefined,
  });
  const server = createBoundedServer(
    (req, res) => {
      // Draining: the load balancer's readiness probe sees it first and stops sending requests here.
      if (drain.draining && (req.url === '/readyz' || req.url?.startsWith('/readyz?'))) {
        res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not ready: shutting down\n');
        return;
      }
      if (isRegistryPath(req.url)) registry(req, res);
      else if (!assets.fastRedirect(req, res)) app(req, res);
    },
    { maxBodyBytes: maxSchematicBytes, ...receive, readsBody: (req) => req.method === 'POST' && BODY_ROUTES.has((req.url ?? '').split('?')[0]) },
  );
  const drain = drainable(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => logger.error({ err }, 'http server error'));
  logger.info({ port, host }, 'gateway listening');
  onShutdown(logger, [
    // A rolling restart loses no request: refuse new connections, finish what is in flight, end keep-alive
    // connections with `Connection: close` (README, "Scaling out").
    () => drain.drain(),
    () => jobs.close(),
    () => accessConnection.quit(),
    async () => serviceLimiter.close(),
  ]);
}

main().catch((err) => fatal('gateway', err));
