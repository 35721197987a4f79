/**
 * registry-proxy: the factory's window on OCI registries.
 * - Upstream: reads Talos content (ghcr.io/siderolabs or a mirror) — versions, extensions and overlays catalogs —
 *   verifying cosign signatures, and answers `upstream.*` jobs.
 * - Its own registry: serves the OCI distribution API (`/v2`, the gateway forwards it) over the OCI content in the
 *   object store, and publishes installer images (`registry.installer` jobs: one build however many pullers).
 */
import { EnvReader, readCommon, readExternal, readHandoffSecret, readLimits, readReceiveTimeouts, readUpstream } from '@factory/config';
import { createBoundedServer } from '@factory/http';
import { createServiceLimiter } from '@factory/ratelimit';
import { CatalogView, secureBootOfferSource } from '@factory/asset';
import { UpstreamCatalog } from '@factory/catalog';
import { AccessTracker } from '@factory/budget';
import { JobClient, redisConnection, serveQueue } from '@factory/queue';
import { drainable, fatal, onShutdown } from '@factory/runtime';
import { OciContentStore } from '@factory/registry';
import { createObjectStore, withStorageFaults } from '@factory/storage';
import { createLogger, createMetricsRegistry, startMetricsServer } from '@factory/telemetry';
import { createRegistryApp } from './http';
import { Installers } from './installers';
import { createSourceProxy } from './source-proxy';
import { upstreamHandlers } from './upstream-handlers';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const upstream = readUpstream(env);
  const external = readExternal(env);
  const port = env.port('REGISTRY_PORT', 8081);
  // Its own setting: `npm start` binds it to loopback beside a public gateway; run alone (compose, Kubernetes) it
  // follows HOST, so other containers and an ingress reach it.
  const host = env.string('REGISTRY_HOST', env.string('HOST', '0.0.0.0'));
  const handoffSecret = readHandoffSecret(env);
  const limits = readLimits(env);
  const serverTag = env.string('FACTORY_SERVER_TAG', 'v0.1.0');
  const buildTimeoutMs = env.duration('BUILD_TIMEOUT', 20 * 60_000) + 60_000;
  const receive = readReceiveTimeouts(env);
  env.done();

  const logger = createLogger('registry-proxy', common.logLevel);
  const metrics = createMetricsRegistry('registry-proxy');
  const catalog = new UpstreamCatalog(upstream, logger);
  const objects = createObjectStore(common.storage);
  const oci = new OciContentStore(objects);
  const jobs = new JobClient(common.redis.url, common.redis.prefix, logger, 30_000);
  const accessConnection = redisConnection(common.redis.url, 'producer', `${common.redis.prefix}-storage-access`);
  const access = new AccessTracker(accessConnection, common.redis.prefix, logger);
  // What installer profiles are resolved against: the upstream catalog, and the signing service's Secure Boot offer.
  const profileCatalog: CatalogView = {
    versions: () => catalog.versions(),
    extensions: (tag) => catalog.extensions(tag),
    overlays: (tag) => catalog.overlays(tag),
    secureBoot: secureBootOfferSource(() => jobs.call('signing.secureBootPublic', {})),
  };
  const installers = new Installers({
    jobs,
    catalog: profileCatalog,
    objects,
    oci,
    // Signatures name the repository as clients pull it: the factory's external host.
    registryHost: new URL(external.externalUrl).host,
    buildTimeoutMs,
    logger,
    onAssetAccess: (objectKey) => access.touch(objectKey),
  });

  const upstreamQueue = serveQueue(
    'upstream',
    upstreamHandlers(catalog),
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 32 },
  );
  // Publishing waits on builds (minutes) but does little work itself.
  const registryQueue = serveQueue('registry', { 'registry.installer': (ref, job) => withStorageFaults(() => installers.publish(ref, job.opts.priority || undefined), (err) => logger.warn({ err }, 'storage fault')) }, { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 16 });

  // the longest a pull waits for its build, plus slack: entries of a registry-proxy that died expire after it
  const serviceLimiter = createServiceLimiter({ redisUrl: common.redis.url, prefix: common.redis.prefix, settings: limits, holdMs: buildTimeoutMs + 60_000, metrics, logger });
  const app = createRegistryApp({
    oci,
    catalog,
    profileCatalog,
    installers,
    jobs,
    buildTimeoutMs,
    presignTtlSeconds: common.storage.kind === 's3' ? common.storage.presignTtlSeconds : 3600,
    sourceProxy: createSourceProxy(upstream, logger),
    serverTag,
    logger,
    handoffSecret,
    limits: { limiter: serviceLimiter.limiter, trustProxy: limits.trustProxy },
  });
  // The distribution API is read-only: no route reads a body, so a small one is all a client may send (and it is
  // not read); a pull that waits for an installer build is not cut by the receive deadlines.
  const server = createBoundedServer(app, { maxBodyBytes: 64 * 1024, ...receive });
  const drain = drainable(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => logger.error({ err }, 'http server error'));

  const metricsServer = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger, ready: () => catalog.ping() });
  logger.info({ registry: upstream.registry, namespace: upstream.namespace, verify: upstream.verifySignatures, port, host }, 'registry-proxy ready');
  onShutdown(logger, [
    // the gateway's keep-alive connections to it lose no pull either (see the gateway)
    () => drain.drain(),
    () => upstreamQueue.worker.close(),
    () => registryQueue.worker.close(),
    async () => serviceLimiter.close(),
    () => upstreamQueue.connection.quit(),
    () => registryQueue.connection.quit(),
    () => jobs.close(),
    () => accessConnection.quit(),
    () => metricsServer && new Promise((r) => metricsServer.close(r)),
  ]);
}

main().catch((err) => fatal('registry-proxy', err));
