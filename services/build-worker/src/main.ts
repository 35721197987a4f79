/**
 * build-worker: builds boot assets, disk images and installers from BullMQ jobs and writes them to object storage.
 * This process is the horizontal scaling unit: run as many as the load needs, they share Redis and storage.
 */
import { EnvReader, readCommon } from '@factory/config';
import { fatal, onShutdown, serveQueue } from '@factory/queue';
import { createObjectStore } from '@factory/storage';
import { createLogger, createMetricsRegistry, startMetricsServer } from '@factory/telemetry';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const concurrency = env.int('BUILD_CONCURRENCY', 2, 1, 64);
  env.done();

  const logger = createLogger('build-worker', common.logLevel);
  const metrics = createMetricsRegistry('build-worker');
  const store = createObjectStore(common.storage);
  await store.ping();

  // Build jobs (`build.*`) are declared in @factory/queue as they are implemented; until then this worker is
  // connected and visible to readiness checks, and answers unknown job names with an error reply.
  const { worker, connection } = serveQueue('build', {}, { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency });
  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger, ready: () => store.ping() });
  logger.info({ concurrency, storage: common.storage.kind }, 'build-worker ready');
  onShutdown(logger, [() => worker.close(), () => connection.quit(), () => server && new Promise((r) => server.close(r))]);
}

main().catch((err) => fatal('build-worker', err));
