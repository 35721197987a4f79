/**
 * signing: the only process that holds private keys. Other services ask it over the `signing` queue for public
 * material and for signatures; key files never leave this process.
 */
import path from 'node:path';
import { EnvReader, readCommon } from '@factory/config';
import { badRequest } from '@factory/errors';
import { serveQueue } from '@factory/queue';
import { fatal, onShutdown } from '@factory/runtime';
import { Counter, createLogger, createMetricsRegistry, startMetricsServer } from '@factory/telemetry';
import { loadOrCreateEcKey, signEcdsa } from './keys';

const MAX_SIGN_BYTES = 1024 * 1024;

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  const keyDir = path.resolve(env.string('FACTORY_SIGNING_KEY_DIR', path.join(common.dataDir, 'keys')));
  const cosignKeyFile = env.string('FACTORY_COSIGN_KEY_FILE');
  env.done();

  const logger = createLogger('signing', common.logLevel);
  const metrics = createMetricsRegistry('signing');
  const signatures = new Counter({ name: 'factory_signatures_total', help: 'Signatures made', labelNames: ['key'], registers: [metrics] });

  // A configured key file must exist; without one, the embedded default generates a key on first start.
  const cosign = loadOrCreateEcKey(cosignKeyFile ?? path.join(keyDir, 'cosign.key'), !cosignKeyFile);
  logger.info({ file: cosign.file, generated: cosign.generated }, 'cosign signing key loaded');

  const { worker, connection } = serveQueue(
    'signing',
    {
      'signing.publicKey': async ({ key }) => {
        if (key !== 'cosign') throw badRequest(`unknown key ${JSON.stringify(key)}`);
        return { pem: cosign.publicPem };
      },
      'signing.sign': async ({ key, dataBase64 }) => {
        if (key !== 'cosign') throw badRequest(`unknown key ${JSON.stringify(key)}`);
        const data = Buffer.from(dataBase64, 'base64');
        if (data.length > MAX_SIGN_BYTES) throw badRequest('payload to sign is too large');
        signatures.inc({ key });
        return { signatureBase64: signEcdsa(cosign.privateKey, data).toString('base64') };
      },
    },
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 16 },
  );
  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger });
  logger.info('signing ready');
  onShutdown(logger, [() => worker.close(), () => connection.quit(), () => server && new Promise((r) => server.close(r))]);
}

main().catch((err) => fatal('signing', err));
