/**
 * signing: the only process that holds private keys. Other services ask it over the `signing` queue for public
 * material and for signatures; key files never leave this process.
 */
import path from 'node:path';
import { EnvReader, readCommon, readExternal } from '@factory/config';
import { OciContentStore } from '@factory/registry';
import { createObjectStore } from '@factory/storage';
import { serveQueue } from '@factory/queue';
import { fatal, onShutdown } from '@factory/runtime';
import { createLogger, createMetricsRegistry, startMetricsServer } from '@factory/telemetry';
import { registerSigningMetrics, signingHandlers } from './handlers';
import { loadOrCreateEcKey } from './keys';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const external = readExternal(env);
  const keyDir = path.resolve(env.string('FACTORY_SIGNING_KEY_DIR', path.join(common.dataDir, 'keys')));
  const cosignKeyFile = env.string('FACTORY_COSIGN_KEY_FILE');
  env.done();

  const logger = createLogger('signing', common.logLevel);
  const metrics = createMetricsRegistry('signing');
  const signingMetrics = registerSigningMetrics(metrics);

  // A configured key file must exist; without one, the embedded default generates a key on first start.
  const cosign = loadOrCreateEcKey(cosignKeyFile ?? path.join(keyDir, 'cosign.key'), !cosignKeyFile);
  logger.info({ file: cosign.file, generated: cosign.generated }, 'cosign signing key loaded');

  // Reads only: what is signed must be the factory's own content.
  const store = createObjectStore(common.storage);
  const { worker, connection } = serveQueue(
    'signing',
    signingHandlers({
      cosign,
      metrics: signingMetrics,
      content: new OciContentStore(store),
      objects: store,
      registryHost: new URL(external.externalUrl).host,
    }),
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 16 },
  );
  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger });
  logger.info('signing ready');
  onShutdown(logger, [() => worker.close(), () => connection.quit(), () => server && new Promise((r) => server.close(r))]);
}

main().catch((err) => fatal('signing', err));
