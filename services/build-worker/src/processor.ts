/**
 * The sandboxed build processor: BullMQ runs this file in child processes, so a crashing or runaway build cannot
 * take the worker (or other builds) down. Each child sets up its own dependencies once and reuses them.
 */
import { createReadStream, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { SandboxedJob } from 'bullmq';
import { UpstreamCatalog } from '@factory/catalog';
import { EnvReader, readCommon, readExternal, readUpstream } from '@factory/config';
import { FactoryError, isFactoryError } from '@factory/errors';
import { AssetRecord, assetMetadata, assetObjectKey, assetSignatureKey, completeProfile, encodeSignatureFile, findAsset } from '@factory/asset';
import { JobClient, PayloadOf, sandboxedProcessor } from '@factory/queue';
import { OciContentStore } from '@factory/registry';
import { parseSchematic, readStoredSchematic } from '@factory/schematic';
import { createObjectStore, isStorageError, ObjectStore, withStorageFaults } from '@factory/storage';
import { hashFileSync, md5FileSync } from '@factory/imaging';
import { contentTypeFor } from '@factory/talos';
import { createLogger, Logger } from '@factory/telemetry';
import { buildAsset } from './recipes';
import { InputCache } from './inputs';
import { makeScratchDir } from './scratch';
import { queueSecureBootSigner, SecureBootSigner } from './secureboot';

interface Context {
  catalog: UpstreamCatalog;
  inputs: InputCache;
  oci: OciContentStore;
  store: ObjectStore;
  /** for `signing.asset` */
  jobs: JobClient;
  /** Secure Boot signatures (over the same job client) */
  secureBoot: SecureBootSigner;
  externalUrl: string;
  logger: Logger;
  timeoutMs: number;
  maxAssetBytes: number;
}

/** Default per-asset size limit: above the largest uncompressed disk image (openstack .raw, 4.45 GB). */
export const DEFAULT_MAX_ASSET_BYTES = 8 * 2 ** 30;

let context: Context | undefined;

// BullMQ forks this sandbox with an IPC channel to the worker. When the worker dies (kill -9, OOM), the channel
// closes: the sandbox goes too (its tools' process groups are killed on exit by @factory/process) instead of
// building on as an orphan; its scratch directory is removed by the next build-worker to start.
process.on('disconnect', () => process.exit(75));

/** Read size when streaming a built file to the store: fewer, larger reads than the 64 KiB default. */
const UPLOAD_CHUNK = 1024 * 1024;

function setup(): Context {
  if (context) return context;
  const env = new EnvReader();
  const common = readCommon(env);
  const upstream = readUpstream(env);
  const external = readExternal(env);
  const cacheDir = path.resolve(env.string('FACTORY_CACHE_DIR', path.join(common.dataDir, 'cache')));
  const timeoutMs = env.duration('BUILD_TIMEOUT', 20 * 60_000);
  const maxAssetBytes = env.bytes('FACTORY_MAX_ASSET_BYTES', DEFAULT_MAX_ASSET_BYTES);
  env.done();
  const logger = createLogger('build-worker', common.logLevel).child({ sandbox: process.pid });
  const catalog = new UpstreamCatalog(upstream, logger);
  const store = createObjectStore(common.storage);
  const jobs = new JobClient(common.redis.url, common.redis.prefix, logger);
  context = {
    catalog,
    inputs: new InputCache(catalog, cacheDir),
    oci: new OciContentStore(store),
    store,
    jobs,
    secureBoot: queueSecureBootSigner(jobs, timeoutMs),
    externalUrl: external.externalUrl.replace(/\/+$/, ''),
    logger,
    timeoutMs,
    maxAssetBytes,
  };
  return context;
}

async function run(job: SandboxedJob<PayloadOf<'build.asset'>>): Promise<AssetRecord> {
  const ctx = setup();
  const { spec, key } = job.data;
  const objectKey = assetObjectKey(key);

  // Idempotent: an earlier run (or another worker) may have published it already.
  const existing = await findAsset(ctx.store, objectKey, contentTypeFor(spec.path));
  if (existing) return existing.record;

  // The job names the schematic; its content comes from storage (verified against the ID), not from Redis.
  const schematicYaml = await readStoredSchematic(ctx.store, spec.schematicId);
  if (schematicYaml === null) throw new FactoryError(404, `schematic ID ${JSON.stringify(spec.schematicId)} not found`);
  const profile = completeProfile(spec, parseSchematic(schematicYaml), schematicYaml);

  const workDir = await makeScratchDir();
  const started = Date.now();
  // Time spent per stage, logged with the result: where a slow build spends its time.
  const stages: Record<string, number> = {};
  let stage = 'start';
  let stageAt = started;
  const enter = (next: string) => {
    const now = Date.now();
    stages[stage] = (stages[stage] ?? 0) + now - stageAt;
    stage = next;
    stageAt = now;
  };
  try {
    const built = await buildAsset(
      {
        catalog: ctx.catalog,
        inputs: ctx.inputs,
        oci: ctx.oci,
        externalUrl: ctx.externalUrl,
        md5: ctx.store.kind === 's3',
        secureBoot: ctx.secureBoot,
        progress: (next, percent) => {
          enter(next);
          void job.updateProgress({ stage: next, percent }).catch(() => undefined);
        },
      },
      profile,
      workDir,
    );
    // Nothing bigger than the limit is hashed, uploaded or published; the client gets a 4xx, never a retry.
    const builtSize = built.digest?.size ?? statSync(built.file).size;
    if (builtSize > ctx.maxAssetBytes) throw assetTooLarge(ctx.maxAssetBytes, { path: profile.path, size: builtSize });
    enter('hashing');
    await job.updateProgress({ stage: 'uploading', percent: 95 }).catch(() => undefined);
    // Both digests are computed once, here, from the file about to be uploaded; the store keeps them with the object
    // (S3 also takes the object in one verified pass when the digest is known before the upload).
    const digest = built.digest ?? hashFileSync(built.file);
    const { sha256, sha512, size } = digest;
    // S3: the MD5 too (the ISO builder computes it while the image is written), recorded with the object and sent as
    // Content-MD5. The S3 server's ETag of the stored bytes is then their MD5, which lets the signing service check
    // the stored bytes without downloading them.
    const md5 = ctx.store.kind === 's3' ? (digest.md5 ?? md5FileSync(built.file)) : undefined;
    enter('uploading');
    const contentType = contentTypeFor(profile.path);
    // A signature file left from an earlier version would vouch for this one before it is checked: it goes first.
    await ctx.store.delete(assetSignatureKey(objectKey));
    // The store verifies the uploaded bytes against the digest before the object becomes visible. Size and digest
    // are known: S3 takes the file in one streamed PutObject (see @factory/storage). On failure nothing is left under
    // the key (it is unpublished anyway: its signature file went first).
    await ctx.store.put(objectKey, createReadStream(built.file, { highWaterMark: UPLOAD_CHUNK }), {
      contentType,
      expectedSha256: sha256,
      size,
      ...(md5 ? { expectedMd5: md5 } : {}),
      removeOnFailure: true,
      maxBytes: ctx.maxAssetBytes,
      metadata: assetMetadata(sha512, built.image, md5),
    });
    enter('signing');
    // The signing service reads the stored object itself and signs its digests only if the bytes match them; the
    // signature file, written last, publishes the asset.
    const { statement, signatureBase64 } = await ctx.jobs.call('signing.asset', { key: objectKey }, { timeoutMs: ctx.timeoutMs }).catch((err: unknown) => {
      // Refused: the stored bytes do not match what was uploaded. Not the client's fault: the job fails and its retry
      // uploads again (a permanent reply would answer the client with the refusal).
      if (isFactoryError(err) && err.status < 500) throw new Error(`the signing service refused the stored asset: ${err.message}`);
      throw err;
    });
    await ctx.store.put(assetSignatureKey(objectKey), encodeSignatureFile(statement, signatureBase64), { contentType: 'application/json' });
    enter('done');
    ctx.logger.info({ key, path: profile.path, version: profile.version, size, ms: Date.now() - started, stages }, 'asset built');
    return { key: objectKey, size, sha256, sha512, contentType, ...(built.image ? { image: built.image } : {}) };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * 422: the request is well-formed and names things that exist, but the asset it asks for is larger than this factory
 * serves; asking again will fail again (the client must ask for something else, e.g. the `.raw.xz` of a `.raw`).
 * Not 413 (that is about the request's own content) and not 507 (a 5xx: the server's fault, worth retrying).
 */
function assetTooLarge(limit: number, built?: { path: string; size: number }): FactoryError {
  const what = built ? `asset ${built.path} is ${built.size} bytes,` : 'the asset is';
  return new FactoryError(422, `${what} larger than the factory's asset size limit of ${limit} bytes (FACTORY_MAX_ASSET_BYTES)`);
}

/**
 * The sandbox's entry (BullMQ runs this file in child processes): FactoryErrors become permanent replies through
 * the queue's sandboxedProcessor. A build that exceeds its deadline takes its sandbox down with it: BullMQ fails the
 * job and starts a fresh child.
 */
export default sandboxedProcessor(
  {
    'build.asset': async (_payload: PayloadOf<'build.asset'>, job: SandboxedJob<PayloadOf<'build.asset'>>) => {
      const ctx = setup();
      const timer = setTimeout(() => {
        ctx.logger.error({ jobId: job.id, timeoutMs: ctx.timeoutMs }, 'build deadline exceeded, killing sandbox');
        process.exit(70);
      }, ctx.timeoutMs);
      try {
        // Storage that cannot take the asset is a 503 naming the cause, not three failed attempts and a bare 500.
        return await withStorageFaults(() => run(job), (err) => ctx.logger.warn({ err, jobId: job.id }, 'storage fault'));
      } catch (err) {
        // The store refused more than maxBytes (the file grew after it was measured): the same 4xx, never retried.
        if (isStorageError(err, 'TOO_LARGE')) throw assetTooLarge(ctx.maxAssetBytes);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
  },
  (err, job) => setup().logger.error({ err, jobId: job.id }, 'build failed'),
);
