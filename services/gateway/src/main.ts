/**
 * gateway: the HTTP API (and later UI and PXE). Stateless; scale it freely behind a load balancer.
 */
import { EnvReader, readCommon, readExternal, readHandoffSecret, readLimits } from '@factory/config';
import { createObjectStore } from '@factory/storage';
import { JobClient } from '@factory/queue';
import { fatal, onShutdown } from '@factory/runtime';
import { Counter, createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp } from './app';
import { QueuedCatalogView } from './catalog-view';
import { AssetRoutes } from './assets';
import { buildTicket, createServiceLimiter, requestClient } from '@factory/ratelimit';
import { createRegistryProxy, isRegistryPath } from './registry';
import { createGatewayServer, DEFAULT_RECEIVE_LIMITS } from './server';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const port = env.port('PORT', 8080);
  const host = env.string('HOST', '0.0.0.0');
  const allowedOrigins = env.list('FACTORY_ALLOWED_ORIGINS', ['*']);
  const maxSchematicBytes = env.int('FACTORY_MAX_SCHEMATIC_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024);
  const jobTimeoutMs = env.duration('FACTORY_JOB_TIMEOUT', 30_000);
  const serverTag = env.string('FACTORY_SERVER_TAG', 'v0.1.0');
  const external = readExternal(env);
  const buildTimeoutMs = env.duration('BUILD_TIMEOUT', 20 * 60_000) + 60_000;
  const redirectCacheMs = env.duration('FACTORY_REDIRECT_CACHE_TTL', 60_000);
  // Deadlines for receiving a request (not for answering it: asset requests may wait for a build).
  const headersTimeoutMs = env.duration('FACTORY_HEADERS_TIMEOUT', DEFAULT_RECEIVE_LIMITS.headersTimeoutMs);
  const requestTimeoutMs = env.duration('FACTORY_REQUEST_TIMEOUT', DEFAULT_RECEIVE_LIMITS.requestTimeoutMs);
  // The registry-proxy's HTTP side (OCI distribution API), served under /v2 on this host and port.
  const registryUrl = env.url('FACTORY_REGISTRY_URL', 'http://127.0.0.1:8081') as string;
  const handoffSecret = readHandoffSecret(env);
  const limits = readLimits(env);
  env.done();

  const logger = createLogger('gateway', common.logLevel);
  const metrics = createMetricsRegistry('gateway');
  const jobs = new JobClient(common.redis.url, common.redis.prefix, logger, jobTimeoutMs);
  const store = createObjectStore(common.storage);
  // the longest a build is waited for, plus slack: outstanding entries of a gateway that died expire after it
  const serviceLimiter = createServiceLimiter({ redisUrl: common.redis.url, prefix: common.redis.prefix, settings: limits, holdMs: buildTimeoutMs + 60_000, metrics, logger });
  const limiter = serviceLimiter.limiter;
  const delivered = new Counter({ name: 'image_factory_assets_delivered_total', help: 'Asset requests by whether the asset was already stored', labelNames: ['cached'], registers: [metrics] });
  const assets = new AssetRoutes({
    jobs,
    catalog: new QueuedCatalogView(jobs),
    store,
    externalUrl: external.externalUrl,
    externalPxeUrl: external.externalPxeUrl,
    noRedirectHost: external.noRedirectHost,
    presignTtlSeconds: common.storage.kind === 's3' ? common.storage.presignTtlSeconds : 3600,
    buildTimeoutMs,
    redirectCacheMs,
    serverTag,
    onDelivered: (cached) => delivered.inc({ cached: String(cached) }),
    beforeBuild: (req, jobId) => buildTicket(limiter, requestClient(req, limits.trustProxy), jobId),
  });
  const app = createApp({ jobs, assets, logger, metrics, serverTag, allowedOrigins, maxSchematicBytes, limits: { limiter, clientOf: (req) => requestClient(req, limits.trustProxy) } });

  const registry = createRegistryProxy({
    target: registryUrl,
    logger,
    timeoutMs: buildTimeoutMs,
    handoff: store.kind === 'local' && handoffSecret ? { store, secret: handoffSecret } : undefined,
    client: handoffSecret ? { of: (req) => requestClient(req, limits.trustProxy), proof: handoffSecret } : undefined,
  });
  const server = createGatewayServer(
    (req, res) => {
      if (isRegistryPath(req.url)) registry(req, res);
      else if (!assets.fastRedirect(req, res)) app(req, res);
    },
    { maxBodyBytes: maxSchematicBytes, headersTimeoutMs: Math.min(headersTimeoutMs, requestTimeoutMs), requestTimeoutMs },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => logger.error({ err }, 'http server error'));
  logger.info({ port, host }, 'gateway listening');
  onShutdown(logger, [
    () => {
      // Stop accepting, let in-flight requests finish, and drop idle keep-alive connections instead of waiting.
      const closed = new Promise((r) => server.close(r));
      server.closeIdleConnections();
      return closed;
    },
    () => jobs.close(),
    async () => serviceLimiter.close(),
  ]);
}

main().catch((err) => fatal('gateway', err));
