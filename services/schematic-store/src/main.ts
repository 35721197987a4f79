/**
 * schematic-store: parses, canonicalizes and durably stores schematics; answers `schematic.*` jobs.
 */
import { EnvReader, readCommon } from '@factory/config';
import { serveQueue } from '@factory/queue';
import { fatal, onShutdown } from '@factory/runtime';
import { createObjectStore } from '@factory/storage';
import { createLogger, createMetricsRegistry, startMetricsServer } from '@factory/telemetry';
import { registerSchematicMetrics, schematicHandlers } from './handlers';
import { DEFAULT_CACHE_BYTES, SchematicRepository } from './repository';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const capacity = env.int('SCHEMATIC_CACHE_CAPACITY', 100_000, 1);
  const cacheBytes = env.int('SCHEMATIC_CACHE_BYTES', DEFAULT_CACHE_BYTES, 1);
  const negativeTtlMs = env.duration('SCHEMATIC_NEGATIVE_TTL', 30_000);
  env.done();

  const logger = createLogger('schematic-store', common.logLevel);
  const metrics = createMetricsRegistry('schematic-store');
  const schematicMetrics = registerSchematicMetrics(metrics);

  const store = createObjectStore(common.storage);
  const repo = new SchematicRepository(store, capacity, negativeTtlMs, schematicMetrics, cacheBytes);
  await repo.ping();

  const { worker, connection } = serveQueue(
    'schematic',
    schematicHandlers({ storage: repo, storageKind: common.storage.kind, metrics: schematicMetrics }),
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 32 },
  );
  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger, ready: () => repo.ping() });
  logger.info({ storage: common.storage.kind }, 'schematic-store ready');
  onShutdown(logger, [() => worker.close(), () => connection.quit(), () => server && new Promise((r) => server.close(r))]);
}

main().catch((err) => fatal('schematic-store', err));
