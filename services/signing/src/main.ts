/**
 * signing: the only process that holds private keys. Other services ask it over the `signing` queue for public
 * material and for signatures; key files never leave this process.
 */
import path from 'node:path';
import { EnvReader, readCommon, readExternal, readSecureBoot } from '@factory/config';
import { OciContentStore } from '@factory/registry';
import { createObjectStore } from '@factory/storage';
import { serveQueue } from '@factory/queue';
import { fatal, onShutdown } from '@factory/runtime';
import { createLogger, createMetricsRegistry, startMetricsServer } from '@factory/telemetry';
import { registerSigningMetrics, signingHandlers } from './handlers';
import { loadOrCreateEcKey } from './keys';
import { secureBootKeyHandlers } from './pcr-handlers';
import { secureBootHandlers } from './secureboot-handlers';
import { loadSecureBootKeys, SecureBootKeys } from './secureboot-keys';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const external = readExternal(env);
  const keyDir = path.resolve(env.string('FACTORY_SIGNING_KEY_DIR', path.join(common.dataDir, 'keys')));
  const cosignKeyFile = env.string('FACTORY_COSIGN_KEY_FILE');
  const secureBootSettings = readSecureBoot(env);
  env.done();

  const logger = createLogger('signing', common.logLevel);
  const metrics = createMetricsRegistry('signing');
  const signingMetrics = registerSigningMetrics(metrics);

  // A configured key file must exist; without one, the embedded default generates a key on first start.
  const cosign = loadOrCreateEcKey(cosignKeyFile ?? path.join(keyDir, 'cosign.key'), !cosignKeyFile);
  logger.info({ file: cosign.file, generated: cosign.generated }, 'cosign signing key loaded');
  // Secure Boot keys (paths only in the log, never key material); undefined when Secure Boot is off.
  const secureBoot = await loadSecureBootKeys(secureBootSettings, keyDir);
  if (secureBoot) logger.info({ files: secureBoot.files }, 'secure boot keys loaded');
  else logger.info('secure boot is disabled (no Secure Boot keys configured)');
  /** What the Secure Boot handlers take: the loaded keys, or undefined when Secure Boot is off. */
  const secureBootKeys: SecureBootKeys | undefined = secureBoot?.keys;

  // Reads only: what is signed must be the factory's own content.
  const store = createObjectStore(common.storage);
  const { worker, connection } = serveQueue(
    'signing',
    {
      ...signingHandlers({
        cosign,
        metrics: signingMetrics,
        content: new OciContentStore(store),
        objects: store,
        registryHost: new URL(external.externalUrl).host,
      }),
      ...secureBootKeyHandlers({ keys: secureBootKeys, metrics: signingMetrics }),
      ...secureBootHandlers(secureBootKeys, signingMetrics),
    },
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 16 },
  );
  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger });
  logger.info('signing ready');
  onShutdown(logger, [() => worker.close(), () => connection.quit(), () => server && new Promise((r) => server.close(r))]);
}

main().catch((err) => fatal('signing', err));
