/**
 * registry-proxy: the factory's window on OCI registries. It reads upstream Talos content (ghcr.io/siderolabs or a
 * mirror) — versions, extensions and overlays catalogs — verifying cosign signatures, and answers `upstream.*` jobs.
 * (Serving the factory's own OCI distribution API for installer pulls lands here too.)
 */
import { EnvReader, readCommon, readUpstream } from '@factory/config';
import { UpstreamCatalog } from '@factory/catalog';
import { fatal, onShutdown, serveQueue } from '@factory/queue';
import { createLogger, createMetricsRegistry, startMetricsServer } from '@factory/telemetry';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const upstream = readUpstream(env);
  env.done();

  const logger = createLogger('registry-proxy', common.logLevel);
  const metrics = createMetricsRegistry('registry-proxy');
  const catalog = new UpstreamCatalog(upstream, logger);

  const { worker, connection } = serveQueue(
    'upstream',
    {
      'upstream.versions': async ({ broken }) => ({ versions: broken ? catalog.brokenVersions() : await catalog.versions() }),
      'upstream.extensions': async ({ version }) => ({
        extensions: (await catalog.extensions(version)).map(({ name, ref, digest, author, description }) => ({ name, ref, digest, author, description })),
      }),
      'upstream.overlays': async ({ version }) => ({
        overlays: (await catalog.overlays(version)).map(({ name, image, ref, digest }) => ({ name, image, ref, digest })),
      }),
      'upstream.ping': async () => {
        await catalog.ping();
        return { registry: upstream.registry };
      },
    },
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 32 },
  );
  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger, ready: () => catalog.ping() });
  logger.info({ registry: upstream.registry, namespace: upstream.namespace, verify: upstream.verifySignatures }, 'registry-proxy ready');
  onShutdown(logger, [() => worker.close(), () => connection.quit(), () => server && new Promise((r) => server.close(r))]);
}

main().catch((err) => fatal('registry-proxy', err));
