/**
 * gateway: the HTTP API (and later UI and PXE). Stateless; scale it freely behind a load balancer.
 */
import { createPublicKey } from 'node:crypto';
import { AssetVerifier, integrityEvents } from '@factory/asset';
import { EnvReader, readBuildRetention, readCommon, readExternal, readHandoffSecret, readLimits, readNotify, readReceiveTimeouts } from '@factory/config';
import { BuildStore, BuildWatcher } from '@factory/builds';
import { createBoundedServer } from '@factory/http';
import { createObjectStore } from '@factory/storage';
import { AccessTracker } from '@factory/budget';
import { JobClient, redisConnection, serveQueue } from '@factory/queue';
import { drainable, fatal, onShutdown } from '@factory/runtime';
import { Counter, createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp } from './app';
import { QueuedCatalogView } from './catalog-view';
import { AssetRoutes } from './assets';
import { buildTicket, createServiceLimiter, requestClient } from '@factory/ratelimit';
import { createRegistryProxy, isRegistryPath } from './registry';
import { TalosctlRoutes } from './talosctl';
import { llmsText } from './llms';
import { BuildRoutes, GatewayBuilds } from './builds';
import { NotifyStore } from './notify/store';
import { Notifier } from './notify/service';
import { webhookRetryDelayMs } from './notify/delivery';
import { lookup } from 'node:dns/promises';

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
  const buildRetentionMs = readBuildRetention(env);
  const maxBuildsPerRequest = env.int('FACTORY_MAX_BUILDS_PER_REQUEST', 32, 1, 1000);
  const maxBuildStreams = env.int('FACTORY_MAX_BUILD_STREAMS', 1000, 1, 100_000);
  const notifySettings = readNotify(env);
  // the version check runs as often as the upstream catalog re-reads its tag list
  const versionCheckMs = env.duration('FACTORY_VERSION_RECHECK_INTERVAL', 15 * 60_000);
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
  // never an older version list than the version check's (which reads this very list, so that a version it finds new
  // resolves at once for its pre-warm builds)
  const catalog = new QueuedCatalogView(jobs, Math.min(30_000, versionCheckMs));
  // Build records (issue 14): read and written in Redis, followed live through a subscriber connection of their own.
  const buildsConnection = redisConnection(common.redis.url, 'producer', `${common.redis.prefix}-builds`);
  const buildStore = new BuildStore(buildsConnection, common.redis.prefix, buildRetentionMs);
  const buildWatcher = new BuildWatcher(redisConnection(common.redis.url, 'blocking', `${common.redis.prefix}-builds-watch`), buildStore);
  const gatewayBuilds = new GatewayBuilds({
    builds: buildStore,
    jobs,
    objects: store,
    queueKey: `${common.redis.prefix}:build`,
    externalUrl: external.externalUrl,
    logger,
    buildTimeoutMs,
    admit: (req, jobId) => buildTicket(limiter, requestClient(req, limits.trustProxy), jobId),
    promote: (jobId, priority) => jobs.changePriority('build', jobId, priority),
  });
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
    builds: gatewayBuilds,
  });
  const buildRoutes = new BuildRoutes({ requests: gatewayBuilds, assets, watcher: buildWatcher, maxBuildsPerRequest, maxStreams: maxBuildStreams, metrics, logger });
  const talosctl = new TalosctlRoutes({ jobs, catalog, assets, externalUrl: external.externalUrl });

  // Pre-warm and webhooks (issue 14): records in the object store, deliveries and the version check on the `notify`
  // queue, served here (see notify/service.ts for why the gateway delivers).
  const notifyStore = new NotifyStore(store);
  const notifyConnection = redisConnection(common.redis.url, 'producer', `${common.redis.prefix}-notify`);
  const notifier = new Notifier({
    store: notifyStore,
    redis: notifyConnection,
    notifyQueue: jobs.queue('notify'),
    prefix: common.redis.prefix,
    settings: notifySettings,
    versions: () => catalog.versions(),
    queuePrewarmBuild: (schematic, version, asset) => buildRoutes.queueBuild(schematic, version, asset, { priority: 'prewarm' }),
    buildFeedKey: buildStore.feedKey,
    userAgent: `Image Factory ${serverTag}`,
    metrics,
    logger,
    blockingConnection: () => redisConnection(common.redis.url, 'blocking', `${common.redis.prefix}-notify-build-feed`),
  });
  notifier.watchBuilds();
  const notifyWorker = serveQueue(
    'notify',
    {
      'notify.deliver': (payload, job) => notifier.deliver(payload, job),
      'notify.versionCheck': () => notifier.checkVersions(),
    },
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 8, backoffStrategy: (attemptsMade) => webhookRetryDelayMs(attemptsMade, notifySettings.retryBaseDelayMs) },
  );
  // one check per interval cluster-wide: every gateway upserts the same scheduler (retried until Redis answers: the
  // gateway starts, and says it is not ready, without Redis)
  const scheduleVersionChecks = (): void => {
    jobs
      .queue('notify')
      .upsertJobScheduler('talos-version-check', { every: versionCheckMs }, { name: 'notify.versionCheck', data: {}, opts: { removeOnComplete: true, removeOnFail: true, attempts: 1 } })
      .catch((err: unknown) => {
        logger.warn({ err }, 'could not schedule the version check; retrying');
        setTimeout(scheduleVersionChecks, 2000).unref();
      });
  };
  scheduleVersionChecks();

  const app = createApp({
    jobs, assets, logger, metrics, serverTag, allowedOrigins, maxSchematicBytes, maxSchematicBytesInFlight, limits: { limiter, clientOf: (req) => requestClient(req, limits.trustProxy) },
    talosctl, llmsText: llmsText(external), builds: buildRoutes,
    notify: {
      notifier,
      store: notifyStore,
      requireSchematic: (id) => assets.requireSchematic(id),
      allowPrivateTargets: notifySettings.allowPrivateTargets,
      resolve: async (host) => (await lookup(host, { all: true })).map((a) => a.address),
    },
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
    { maxBodyBytes: maxSchematicBytes, ...receive, readsBody: (req) => readsBody(req.method, (req.url ?? '').split('?')[0]) },
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
    () => {
      const drained = drain.drain();
      // Build event streams never end on their own: once the listener is closed they are ended, and their clients
      // reconnect to another gateway with Last-Event-ID.
      buildRoutes.closeStreams();
      return drained;
    },
    () => notifyWorker.stop(10_000).then(() => notifyWorker.connection.quit()),
    () => notifier.close(),
    () => jobs.close(),
    () => buildWatcher.close(),
    () => buildsConnection.quit(),
    () => notifyConnection.quit(),
    () => accessConnection.quit(),
    async () => serviceLimiter.close(),
  ]);
}

/** The requests a route reads the body of (the others' bodies close the connection after the answer). */
function readsBody(method: string | undefined, path: string): boolean {
  if (method === 'POST' && (path === '/schematics' || path === '/builds' || path === '/ui/wizard' || path === '/ui/extensions-list')) return true;
  return (method === 'PUT' && path.startsWith('/prewarm/')) || (method === 'POST' && path === '/webhooks');
}

main().catch((err) => fatal('gateway', err));
