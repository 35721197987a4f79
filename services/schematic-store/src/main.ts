/**
 * schematic-store: parses, canonicalizes and durably stores schematics; answers `schematic.*` jobs.
 */
import { EnvReader, readCommon } from '@factory/config';
import { FactoryError } from '@factory/errors';
import { serveQueue } from '@factory/queue';
import { fatal, onShutdown } from '@factory/runtime';
import { canonicalYaml, parseSchematic, schematicId, SchematicError } from '@factory/schematic';
import { createObjectStore } from '@factory/storage';
import { Counter, createLogger, createMetricsRegistry, Gauge, startMetricsServer } from '@factory/telemetry';
import { SchematicRepository } from './repository';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const capacity = env.int('SCHEMATIC_CACHE_CAPACITY', 100_000, 1);
  const negativeTtlMs = env.duration('SCHEMATIC_NEGATIVE_TTL', 30_000);
  env.done();

  const logger = createLogger('schematic-store', common.logLevel);
  const metrics = createMetricsRegistry('schematic-store');
  const getTotal = new Counter({ name: 'image_factory_schematic_get_total', help: 'Schematic lookups', registers: [metrics] });
  const createTotal = new Counter({ name: 'image_factory_schematic_create_total', help: 'Schematic creations', registers: [metrics] });
  const duplicateTotal = new Counter({ name: 'image_factory_schematic_duplicate_create_total', help: 'Creations of an already stored schematic', registers: [metrics] });
  const cacheSize = new Gauge({ name: 'image_factory_schematic_cache_size', help: 'Schematics in the in-memory cache', registers: [metrics] });

  const store = createObjectStore(common.storage);
  const repo = new SchematicRepository(store, capacity, negativeTtlMs, { cacheSize: (n) => cacheSize.set(n) });
  await repo.ping();

  const { worker, connection } = serveQueue(
    'schematic',
    {
      'schematic.create': async ({ body }) => {
        let schematic;
        try {
          schematic = parseSchematic(body);
        } catch (err) {
          if (err instanceof SchematicError) throw new FactoryError(400, err.message);
          throw err;
        }
        const yaml = canonicalYaml(schematic);
        const id = schematicId(schematic);
        const created = await repo.put(id, yaml);
        (created ? createTotal : duplicateTotal).inc();
        return { id, yaml, created };
      },
      'schematic.get': async ({ id }) => {
        getTotal.inc();
        const yaml = await repo.get(id);
        if (yaml === null) throw new FactoryError(404, 'schematic not found');
        return { yaml };
      },
      'schematic.ping': async () => {
        await repo.ping();
        return { storage: common.storage.kind };
      },
    },
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 32 },
  );
  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger, ready: () => repo.ping() });
  logger.info({ storage: common.storage.kind }, 'schematic-store ready');
  onShutdown(logger, [() => worker.close(), () => connection.quit(), () => server && new Promise((r) => server.close(r))]);
}

main().catch((err) => fatal('schematic-store', err));
