/**
 * build-worker: builds boot assets (and later disk images and installers) from `build.asset` jobs and writes them
 * to object storage. Builds run in sandboxed child processes with bounded concurrency. This process is the
 * horizontal scaling unit: run as many as the load needs; they share Redis and storage, and the deterministic job
 * IDs make N concurrent requests for one asset one build cluster-wide.
 */
import path from 'node:path';
import type { Job } from 'bullmq';
import { integrityEvents } from '@factory/asset';
import { EnvReader, readCommon, readExternal, readUpstream } from '@factory/config';
import { JobClient, PayloadOf, Reply, serveQueue } from '@factory/queue';
import { fatal, onShutdown } from '@factory/runtime';
import { createObjectStore } from '@factory/storage';
import { removeOrphanedScratch } from './scratch';
import { scheduleScrubs, scrubHandler } from './scrub';
import { Counter, createLogger, createMetricsRegistry, Histogram, startMetricsServer } from '@factory/telemetry';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  readUpstream(env);
  readExternal(env);
  const concurrency = env.int('BUILD_CONCURRENCY', 2, 1, 64);
  // How often every stored asset is verified at rest (one scrub per period cluster-wide); 0 turns the schedule off.
  const scrubIntervalMs = env.duration('FACTORY_SCRUB_INTERVAL', 24 * 3600_000);
  env.done();

  const logger = createLogger('build-worker', common.logLevel);
  const metrics = createMetricsRegistry('build-worker');
  const built = new Counter({ name: 'image_factory_assets_built_total', help: 'Assets built', labelNames: ['kind', 'outcome'], registers: [metrics] });
  const latency = new Histogram({ name: 'image_factory_assets_build_latency_seconds', help: 'Build time', labelNames: ['kind'], buckets: [1, 10, 60, 180, 600], registers: [metrics] });
  const store = createObjectStore(common.storage);
  await store.ping();
  const orphaned = await removeOrphanedScratch();
  if (orphaned.length) logger.warn({ removed: orphaned }, 'removed scratch directories of builds whose sandbox died');

  const { worker, connection } = serveQueue('build', { processorFile: path.join(__dirname, 'processor.js') }, {
    redisUrl: common.redis.url,
    prefix: common.redis.prefix,
    logger,
    metrics,
    concurrency,
    // The worker renews a running build's lock every lockDuration/2; a dead worker's build is found stalled (and
    // retried elsewhere) within about lockDuration + stalledInterval, while its client keeps waiting for the job.
    lockDuration: 20_000,
    stalledInterval: 10_000,
  });
  // Asset metrics by output kind, on top of the queue's job metrics.
  const kindOf = (job: Job<PayloadOf<'build.asset'>> | undefined) => job?.data?.profile?.kind ?? 'unknown';
  worker.on('completed', (job: Job<PayloadOf<'build.asset'>>) => {
    const reply = job.returnvalue as Reply<unknown> | undefined;
    built.inc({ kind: kindOf(job), outcome: reply?.ok ? 'ok' : String(reply?.status ?? 'error') });
    if (reply?.ok && job.processedOn && job.finishedOn) latency.observe({ kind: kindOf(job) }, (job.finishedOn - job.processedOn) / 1000);
  });
  worker.on('failed', (job: Job<PayloadOf<'build.asset'>> | undefined) => built.inc({ kind: kindOf(job), outcome: 'failed' }));

  // The scrub: on the maintenance queue (one at a time per worker), scheduled and on demand (`npm run scrub`).
  const jobs = new JobClient(common.redis.url, common.redis.prefix, logger);
  const maintenance = serveQueue(
    'maintenance',
    {
      'maintenance.scrub': scrubHandler({
        store,
        publicKeyPem: async () => (await jobs.call('signing.publicKey', { key: 'cosign' })).pem,
        events: integrityEvents(metrics, logger),
        logger,
      }),
    },
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 1 },
  );
  const schedule = scrubIntervalMs > 0 ? scheduleScrubs(scrubIntervalMs, (jobId) => jobs.queue('maintenance').add('maintenance.scrub', {}, { jobId }), logger) : undefined;

  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger, ready: () => store.ping() });
  logger.info({ concurrency, storage: common.storage.kind, scrubIntervalMs }, 'build-worker ready');
  onShutdown(
    logger,
    [
      () => schedule?.stop(),
      () => worker.close(),
      () => maintenance.worker.close(),
      () => connection.quit(),
      () => maintenance.connection.quit(),
      () => jobs.close(),
      () => server && new Promise((r) => server.close(r)),
    ],
    25 * 60_000,
  );
}

main().catch((err) => fatal('build-worker', err));
