/**
 * The sandboxed build processor: BullMQ runs this file in child processes, so a crashing or runaway build cannot
 * take the worker (or other builds) down. Each child sets up its own dependencies once and reuses them.
 */
import { createReadStream, lstatSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { SandboxedJob } from 'bullmq';
import { UpstreamCatalog } from '@factory/catalog';
import { EnvReader, readCommon, readExternal, readUpstream } from '@factory/config';
import { FactoryError, isFactoryError } from '@factory/errors';
import { AssetClaims, AssetRecord, assetMetadata, assetObjectKey, assetSignatureKey, completeProfile, encodeSignatureFile, findAsset, talosctlAssetKey } from '@factory/asset';
import { JobClient, PayloadOf, sandboxedProcessor } from '@factory/queue';
import { OciContentStore } from '@factory/registry';
import { parseSchematic, readStoredSchematic } from '@factory/schematic';
import { createObjectStore, isStorageError, ObjectStore, withStorageFaults } from '@factory/storage';
import { hashFileSync, md5FileSync } from '@factory/imaging';
import { contentTypeFor, isTalosctlFileName, talosctlContentType } from '@factory/talos';
import { createLogger, Logger } from '@factory/telemetry';
import { buildAsset, BuiltFile } from './recipes';
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
/** How often an upload reports the bytes sent. */
const UPLOAD_PROGRESS_MS = 1000;

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
  const contentType = contentTypeFor(profile.path);
  try {
    // A signature file left from an earlier version would vouch for this one before it is checked: it goes first,
    // before any byte of this build is stored.
    await ctx.store.delete(assetSignatureKey(objectKey));
    const s3 = ctx.store.kind === 's3';
    const built = await buildAsset(
      {
        catalog: ctx.catalog,
        inputs: ctx.inputs,
        oci: ctx.oci,
        externalUrl: ctx.externalUrl,
        md5: s3,
        secureBoot: ctx.secureBoot,
        progress: (next, percent) => {
          enter(next);
          void job.updateProgress({ stage: next, percent }).catch(() => undefined);
        },
        // S3: an output that declares its size while it is written (a GPT ISO) is uploaded meanwhile, in one
        // PutObject without checksum headers (nobody knows its digests yet): the upload overlaps the write instead of
        // following it. The server's ETag (its MD5 of the stored bytes) then vouches for them to the signing service.
        // (The local store copies a finished file: it gains nothing from a stream.)
        ...(s3
          ? {
              storeWhileWritten: async (size: number, body: Readable) => {
                if (size > ctx.maxAssetBytes) {
                  body.destroy();
                  throw assetTooLarge(ctx.maxAssetBytes, { path: profile.path, size });
                }
                await ctx.store.put(objectKey, body, { contentType, size, digestRecordedElsewhere: true, removeOnFailure: true, maxBytes: ctx.maxAssetBytes, metadata: assetMetadata() });
              },
            }
          : {}),
      },
      profile,
      workDir,
    );
    const record = await publishBuilt(ctx, job, { objectKey, contentType, path: profile.path, built, enter });
    enter('done');
    ctx.logger.info({ key, path: profile.path, version: profile.version, size: record.size, ms: Date.now() - started, stages, streamed: built.streamed === true }, 'asset built');
    return record;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * A talosctl binary: the file as it is in the verified `talosctl-all` image pinned by digest (the whole image is
 * extracted once into the input cache), published like any built asset.
 */
async function runTalosctl(job: SandboxedJob<PayloadOf<'build.talosctl'>>): Promise<AssetRecord> {
  const ctx = setup();
  const { version, digest, file, key } = job.data;
  // The edge named a file of the listing; the worker checks the name again: it becomes a path under the cache.
  if (!isTalosctlFileName(file) || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new FactoryError(400, `invalid talosctl file ${JSON.stringify(file)}`);
  if (key !== talosctlAssetKey({ version, digest, file })) throw new Error('build.talosctl: the key does not match the binary it names');
  const objectKey = assetObjectKey(key);
  const contentType = talosctlContentType(file);
  const existing = await findAsset(ctx.store, objectKey, contentType);
  if (existing) return existing.record;
  const started = Date.now();
  await ctx.store.delete(assetSignatureKey(objectKey));
  await job.updateProgress({ stage: 'fetching talosctl', percent: 5 }).catch(() => undefined);
  const root = await ctx.inputs.talosctl(digest);
  const source = path.join(root, file);
  // a regular file of the image itself: never a link out of the extracted tree
  const info = lstatSync(source, { throwIfNoEntry: false });
  if (!info?.isFile()) throw new FactoryError(404, `talosctl file ${JSON.stringify(file)} is not available for Talos version ${version}`);
  const record = await publishBuilt(ctx, job, { objectKey, contentType, path: file, built: { file: source }, enter: () => undefined });
  ctx.logger.info({ key, path: file, version, size: record.size, ms: Date.now() - started }, 'talosctl extracted');
  return record;
}

/**
 * Publishes a built file as the asset `objectKey`: size limit, digests (once, from the bytes stored), upload (unless
 * it was stored while written), the signing service's check and signature, and the signature file last — only then
 * is the asset visible. The same path for every asset, built or extracted.
 */
async function publishBuilt(
  ctx: Context,
  job: { updateProgress(p: object): Promise<unknown> },
  o: { objectKey: string; contentType: string; path: string; built: BuiltFile; enter: (stage: string) => void },
): Promise<AssetRecord> {
  const { objectKey, contentType, built, enter } = o;
  const s3 = ctx.store.kind === 's3';
  // Nothing bigger than the limit is hashed, uploaded or published; the client gets a 4xx, never a retry.
  const builtSize = built.digest?.size ?? statSync(built.file).size;
  if (builtSize > ctx.maxAssetBytes) throw assetTooLarge(ctx.maxAssetBytes, { path: o.path, size: builtSize });
  enter('hashing');
  await job.updateProgress({ stage: 'hashing', percent: 93 }).catch(() => undefined);
  // The SHA-256 is computed once, from the bytes stored (or about to be): it becomes the asset's record through the
  // signed statement (the SHA-512 is derived on request from stored bytes that hash to it). S3: the MD5 too, in the
  // same pass (the ISO builder computes both while the image is written), which the S3 server's ETag of the stored
  // bytes is, so the signing service can check them without downloading them.
  const digest = built.digest ?? hashFileSync(built.file, { md5: s3 });
  const { sha256, size } = digest;
  const md5 = s3 ? (digest.md5 ?? md5FileSync(built.file)) : undefined;
  enter('uploading');
  await job.updateProgress({ stage: 'uploading', percent: 95 }).catch(() => undefined);
  if (!built.streamed) {
    // The store verifies the uploaded bytes against the digest before the object becomes visible. Size and digest
    // are known: S3 takes the file in one streamed PutObject with x-amz-checksum-sha256 and Content-MD5 (see
    // @factory/storage). On failure nothing is left under the key (it is unpublished anyway: its signature file went
    // first).
    const upload = createReadStream(built.file, { highWaterMark: UPLOAD_CHUNK });
    // Bytes read so far, reported once a second (the build's record shows them): cheap, and no listener on the stream.
    const reporter = setInterval(() => {
      const bytes = upload.bytesRead;
      void job.updateProgress({ stage: 'uploading', percent: 95 + Math.floor((4 * bytes) / Math.max(1, size)), bytes }).catch(() => undefined);
    }, UPLOAD_PROGRESS_MS);
    try {
      await ctx.store.put(objectKey, upload, {
        contentType,
        expectedSha256: sha256,
        size,
        ...(md5 ? { expectedMd5: md5 } : {}),
        removeOnFailure: true,
        maxBytes: ctx.maxAssetBytes,
        metadata: assetMetadata(built.image),
      });
    } finally {
      clearInterval(reporter);
    }
  }
  enter('signing');
  await job.updateProgress({ stage: 'signing', percent: 99 }).catch(() => undefined);
  // The signing service checks the stored object against these claims (the storage server's own digest of it, else
  // by reading it) and signs them only if they match; the signature file, written last, publishes the asset.
  const claims: AssetClaims = { key: objectKey, size, sha256, ...(md5 ? { md5 } : {}) };
  const { statement, signatureBase64 } = await ctx.jobs.call('signing.asset', claims, { timeoutMs: ctx.timeoutMs }).catch((err: unknown) => {
    // Refused: the stored bytes do not match what was uploaded. Not the client's fault: the job fails and its retry
    // uploads again (a permanent reply would answer the client with the refusal).
    if (isFactoryError(err) && err.status < 500) throw new Error(`the signing service refused the stored asset: ${err.message}`);
    throw err;
  });
  await ctx.store.put(assetSignatureKey(objectKey), encodeSignatureFile(statement, signatureBase64), { contentType: 'application/json' });
  return { key: objectKey, size, sha256, contentType, ...(built.image ? { image: built.image } : {}) };
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
// Each handler is chosen by its job's name, so the job carries that name's payload.
export default sandboxedProcessor<SandboxedJob>(
  {
    'build.asset': (_payload: PayloadOf<'build.asset'>, job: SandboxedJob) => guarded(job, () => run(job as SandboxedJob<PayloadOf<'build.asset'>>)),
    'build.talosctl': (_payload: PayloadOf<'build.talosctl'>, job: SandboxedJob) => guarded(job, () => runTalosctl(job as SandboxedJob<PayloadOf<'build.talosctl'>>)),
  },
  (err, job) => setup().logger.error({ err, jobId: job.id }, 'build failed'),
);

/** A build under its deadline, with storage faults and the store's size refusal answered as the client's replies. */
async function guarded<T>(job: { id?: string }, build: () => Promise<T>): Promise<T> {
  const ctx = setup();
  const timer = setTimeout(() => {
    ctx.logger.error({ jobId: job.id, timeoutMs: ctx.timeoutMs }, 'build deadline exceeded, killing sandbox');
    process.exit(70);
  }, ctx.timeoutMs);
  try {
    // Storage that cannot take the asset is a 503 naming the cause, not three failed attempts and a bare 500.
    return await withStorageFaults(build, (err) => ctx.logger.warn({ err, jobId: job.id }, 'storage fault'));
  } catch (err) {
    // The store refused more than maxBytes (the file grew after it was measured): the same 4xx, never retried.
    if (isStorageError(err, 'TOO_LARGE')) throw assetTooLarge(ctx.maxAssetBytes);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
