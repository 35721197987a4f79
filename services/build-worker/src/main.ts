/**
 * build-worker: builds boot assets (and later disk images and installers) from `build.asset` jobs and writes them
 * to object storage. Builds run in sandboxed child processes with bounded concurrency. This process is the
 * horizontal scaling unit: run as many as the load needs; they share Redis and storage, and the deterministic job
 * IDs make N concurrent requests for one asset one build cluster-wide.
 */
import { statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { ASSET_OBJECT_PREFIX, ASSET_SIGNATURE_SUFFIX, AssetRecord, integrityEvents, QUARANTINE_PREFIX } from '@factory/asset';
import { AccessTracker, BudgetSettings, registerBudgetMetrics, runEvictionPass, TOUCH_INTERVAL_MS } from '@factory/budget';
import { BuildStore, PREWARM_PRIORITY } from '@factory/builds';
import { EnvReader, readBuildRetention, readCommon, readExternal, readUpstream, StorageSettings } from '@factory/config';
import { BUILD_JOB_LOCKING, BUILD_SANDBOX_NODE_FLAGS, JobClient, PayloadOf, redisConnection, Reply, serveQueue } from '@factory/queue';
import { OCI_KEY_PREFIX } from '@factory/registry';
import { SCHEMATICS_PREFIX } from '@factory/schematic';
import { fatal, onShutdown } from '@factory/runtime';
import { createObjectStore } from '@factory/storage';
import { removeOrphanedScratch } from './scratch';
import { recordBuilds } from './build-records';
import { scheduleScrubs, scrubHandler } from './scrub';
import { Counter, createLogger, createMetricsRegistry, Histogram, startMetricsServer } from '@factory/telemetry';

async function main(): Promise<void> {
  const env = new EnvReader();
  const common = readCommon(env);
  readUpstream(env);
  const external = readExternal(env);
  const buildRetentionMs = readBuildRetention(env);
  const concurrency = env.int('BUILD_CONCURRENCY', 2, 1, 64);
  // On SIGTERM, how long running builds may take to finish before they are handed back to the queue (README,
  // "Scaling out"): within Kubernetes' default 30 s termination grace, with time left to hand back and close.
  const shutdownGraceMs = env.duration('BUILD_SHUTDOWN_GRACE', 20_000);
  // How often every stored asset is verified at rest (one scrub per period cluster-wide); 0 turns the schedule off.
  const scrubIntervalMs = env.duration('FACTORY_SCRUB_INTERVAL', 24 * 3600_000);
  const budgetText = env.string('FACTORY_STORAGE_BUDGET');
  const configuredBudget = budgetText?.toLowerCase() === 'unlimited' ? Infinity : env.bytes('FACTORY_STORAGE_BUDGET', undefined);
  const graceMs = env.duration('FACTORY_STORAGE_EVICTION_GRACE', 10 * 60_000);
  const evictionIntervalMs = env.duration('FACTORY_STORAGE_EVICTION_INTERVAL', 5 * 60_000);
  if (evictionIntervalMs < 1000) env.problem('FACTORY_STORAGE_EVICTION_INTERVAL must be at least 1s');
  env.done();

  const logger = createLogger('build-worker', common.logLevel);
  const metrics = createMetricsRegistry('build-worker');
  const built = new Counter({ name: 'image_factory_assets_built_total', help: 'Assets built', labelNames: ['kind', 'outcome'], registers: [metrics] });
  const latency = new Histogram({ name: 'image_factory_assets_build_latency_seconds', help: 'Build time', labelNames: ['kind'], buckets: [1, 10, 60, 180, 600], registers: [metrics] });
  const store = createObjectStore(common.storage);
  await store.ping();
  const budget: BudgetSettings = { budgetBytes: configuredBudget ?? defaultBudget(common.storage), graceMs };
  if (graceMs < TOUCH_INTERVAL_MS) logger.warn({ graceMs }, `FACTORY_STORAGE_EVICTION_GRACE is shorter than the ${TOUCH_INTERVAL_MS / 1000}s between recorded accesses: an artifact being served may be evicted`);
  const orphaned = await removeOrphanedScratch(undefined, undefined, (dir, err) => logger.warn({ dir, err }, 'could not remove a dead build\'s scratch directory'));
  if (orphaned.length) logger.warn({ removed: orphaned }, 'removed scratch directories of builds whose sandbox died');

  const builds = serveQueue('build', { processorFile: path.join(__dirname, 'processor.js') }, {
    redisUrl: common.redis.url,
    prefix: common.redis.prefix,
    logger,
    metrics,
    concurrency,
    // A dead worker's build is found stalled and taken over by another worker; its clients keep waiting for the job.
    locking: BUILD_JOB_LOCKING,
    sandboxNodeFlags: BUILD_SANDBOX_NODE_FLAGS,
  });
  const { worker, connection } = builds;
  // Asset metrics by output kind, on top of the queue's job metrics.
  const kindOf = (job: Job<PayloadOf<'build.asset'>> | undefined) => (job?.name === 'build.talosctl' ? 'talosctl' : job?.data?.spec?.kind ?? 'unknown');
  worker.on('completed', (job: Job<PayloadOf<'build.asset'>>) => {
    const reply = job.returnvalue as Reply<unknown> | undefined;
    built.inc({ kind: kindOf(job), outcome: reply?.ok ? 'ok' : String(reply?.status ?? 'error') });
    if (reply?.ok && job.processedOn && job.finishedOn) latency.observe({ kind: kindOf(job) }, (job.finishedOn - job.processedOn) / 1000);
  });
  worker.on('failed', (job: Job<PayloadOf<'build.asset'>> | undefined) => built.inc({ kind: kindOf(job), outcome: 'failed' }));
  // How long builds waited for a worker, by who asked (user requests or pre-warming): first attempts only.
  const queueWait = new Histogram({ name: 'factory_build_queue_wait_seconds', help: 'Time from queueing to the start of a build', labelNames: ['priority'], buckets: [0.1, 1, 10, 60, 300, 1800], registers: [metrics] });
  worker.on('active', (job: Job<PayloadOf<'build.asset'>>) => {
    if (job.name === 'build.asset' && job.attemptsMade === 0 && job.timestamp) queueWait.observe({ priority: (job.opts.priority ?? 0) >= PREWARM_PRIORITY ? 'prewarm' : 'user' }, Math.max(0, Date.now() - job.timestamp) / 1000);
  });
  // Build records (GET /builds, its events): written from this worker's job events.
  const recordsConnection = redisConnection(common.redis.url, 'producer', `${common.redis.prefix}-builds`);
  recordBuilds(worker, {
    builds: new BuildStore(recordsConnection, common.redis.prefix, buildRetentionMs),
    externalUrl: external.externalUrl,
    logger,
    workerName: `${os.hostname()}/${process.pid}`,
  });

  // Maintenance of what is stored, on one queue served one job at a time per worker: the scrub (scheduled and on
  // demand, `npm run scrub`) and the storage budget's eviction passes (one at a time cluster-wide, on a schedule and
  // after a publish that pushes the estimate of bytes stored over the budget).
  const jobs = new JobClient(common.redis.url, common.redis.prefix, logger);
  const budgetMetrics = registerBudgetMetrics(metrics);
  const tracker = new AccessTracker(redisConnection(common.redis.url, 'producer', `${common.redis.prefix}-storage-access`), common.redis.prefix, logger);
  // Quarantined copies are kept for inspection (counted, removed by the operator); signature files go with their asset.
  const layout = {
    artifacts: ASSET_OBJECT_PREFIX,
    companionSuffixes: [ASSET_SIGNATURE_SUFFIX],
    pinned: { schematics: SCHEMATICS_PREFIX, oci: OCI_KEY_PREFIX, quarantine: QUARANTINE_PREFIX },
  };
  const maintenance = serveQueue(
    'maintenance',
    {
      'maintenance.scrub': scrubHandler({
        store,
        publicKeyPem: async () => (await jobs.call('signing.publicKey', { key: 'cosign' })).pem,
        events: integrityEvents(metrics, logger),
        logger,
      }),
      'maintenance.evict': () => runEvictionPass({ store, tracker, layout, settings: budget, metrics: budgetMetrics, logger }),
    },
    { redisUrl: common.redis.url, prefix: common.redis.prefix, logger, metrics, concurrency: 1 },
  );
  const schedule = scrubIntervalMs > 0 ? scheduleScrubs(scrubIntervalMs, (jobId) => jobs.queue('maintenance').add('maintenance.scrub', {}, { jobId }), logger) : undefined;
  const requestEviction = (reason: 'schedule' | 'publish') =>
    // Deterministic per 5 s window: a burst of publishes is one pass, wherever it is asked for.
    jobs
      .queue('maintenance')
      .add('maintenance.evict', { reason }, { jobId: `storage-evict-${reason}-${Math.floor(Date.now() / 5000)}`, removeOnComplete: true, removeOnFail: true, attempts: 1 })
      .catch((err: unknown) => logger.warn({ err }, 'could not ask for an eviction pass'));
  await jobs
    .queue('maintenance')
    .upsertJobScheduler('storage-evict', { every: evictionIntervalMs }, { name: 'maintenance.evict', data: { reason: 'schedule' }, opts: { removeOnComplete: true, removeOnFail: true, attempts: 1 } });
  void requestEviction('schedule');
  worker.on('completed', (job: Job<PayloadOf<'build.asset'>>) => {
    const reply = job.returnvalue as Reply<AssetRecord> | undefined;
    if (!reply?.ok) return;
    tracker
      .recordPublish(reply.value.key, reply.value.size)
      .then((stored) => {
        if (stored > budget.budgetBytes) void requestEviction('publish');
      })
      .catch((err: unknown) => logger.warn({ err }, 'could not record a published artifact'));
  });

  const server = await startMetricsServer({ port: common.metricsPort, host: common.metricsHost, registry: metrics, logger, ready: () => store.ping() });
  logger.info({ concurrency, storage: common.storage.kind, scrubIntervalMs, storageBudgetBytes: budget.budgetBytes, evictionGraceMs: graceMs }, 'build-worker ready');
  onShutdown(
    logger,
    [
      () => schedule?.stop(),
      // Builds finish within the grace or go back to the queue for another worker; never half-published: an object
      // appears in storage whole or not at all, and the asset only counts as published once its signature file is.
      () => builds.stop(shutdownGraceMs),
      () => maintenance.worker.close(),
      () => connection.quit(),
      () => maintenance.connection.quit(),
      () => recordsConnection.quit(),
      () => jobs.close(),
      () => server && new Promise((r) => server.close(r)),
    ],
    // the grace, then handing back and closing connections; a maintenance pass in progress may need the rest
    shutdownGraceMs + 30_000,
  );
}

/**
 * Without FACTORY_STORAGE_BUDGET: S3 is unlimited (a bucket grows as needed and is paid for; operators bound it with
 * lifecycle rules), a local directory gets half of its filesystem — the factory must never fill the disk it shares
 * with its build scratch (up to twice an asset while building), the embedded Redis and the system.
 */
function defaultBudget(storage: StorageSettings): number {
  if (storage.kind !== 'local') return Infinity;
  const fs = statfsSync(storage.dir);
  return Math.floor((fs.blocks * fs.bsize) / 2);
}

main().catch((err) => fatal('build-worker', err));
