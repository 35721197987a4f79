/**
 * Asking for a build without waiting for it: the one function behind `POST /builds`, `Prefer: respond-async` and
 * pre-warming. The asset's job is the same `asset-<key>` job a `GET /image` of it waits on (BullMQ keeps one job per
 * ID), so whoever asks first queues it and everyone else joins it.
 */
import { AssetLookup, assetJobId, assetObjectKey, AssetTarget, BuildTicket, findAsset } from '@factory/asset';
import { FactoryError, isFactoryError, JobVanishedError } from '@factory/errors';
import type { Logger } from '@factory/telemetry';
import { alreadyStored, Build, BuildPriority, BuildSubject, failed, PREWARM_PRIORITY, queued, USER_PRIORITY } from './record';
import type { BuildStore } from './store';

export interface BuildRequestDeps {
  builds: BuildStore;
  /** the object store: an asset already published is a done build */
  objects: AssetLookup;
  /** BullMQ key of the build queue (`<prefix>:build`), for queue positions */
  queueKey: string;
  logger: Logger;
  /** how long the background wait for the job lasts (the build timeout and then some) */
  timeoutMs: number;
  /** gives a queued job a new BullMQ priority (a user request taking over a pre-warm build) */
  promote?: (jobId: string, priority: number) => Promise<void>;
}

export interface BuildRequest {
  subject: BuildSubject;
  /** the asset's job (profileTarget): queued under `asset-<subject.id>` */
  target: AssetTarget;
  priority: BuildPriority;
  /**
   * Admission of a new build (per-client limits, may throw a 429) and its BullMQ priority; without it user builds get
   * USER_PRIORITY and pre-warm builds PREWARM_PRIORITY.
   */
  admit?: (jobId: string) => Promise<BuildTicket>;
}

/**
 * The build of `request.subject` as it stands once asked for: done when the asset is stored already (synthesised from
 * the stored record; no job), else queued (or running) — its job added, or joined when one exists. The job is waited
 * for in the background (so the client's admission is released when it ends); the record is kept by the worker.
 */
export async function requestBuild(deps: BuildRequestDeps, request: BuildRequest): Promise<Build> {
  const { subject, target } = request;
  const stored = await findAsset(deps.objects, assetObjectKey(target.key), target.contentType);
  if (stored) return (await deps.builds.change(subject.id, alreadyStored(subject, stored.record)))!.build;

  const jobId = assetJobId(target.key);
  const ticket: BuildTicket = request.admit ? await request.admit(jobId) : { priority: request.priority === 'prewarm' ? PREWARM_PRIORITY : USER_PRIORITY };
  let enqueued!: () => void;
  const added = new Promise<void>((resolve) => (enqueued = resolve));
  try {
    await recordQueued(deps, subject, request.priority, ticket.priority ?? USER_PRIORITY);
    const waited = target.build(jobId, { timeoutMs: deps.timeoutMs, ...(ticket.priority ? { priority: ticket.priority } : {}), onEnqueued: enqueued });
    const settled = waited.then(
      () => undefined,
      (err: unknown) => {
        // the worker recorded how its job ended; a wait that ended otherwise is only logged
        if (!(err instanceof JobVanishedError)) deps.logger.debug({ err, build: subject.id }, 'background wait for a build ended with an error');
        return err;
      },
    );
    void settled.finally(() => ticket.release?.());
    const notAdded = await Promise.race([added.then(() => undefined), settled]);
    if (notAdded !== undefined) throw notAdded;
  } catch (err) {
    const status = isFactoryError(err) ? err.status : 503;
    const message = isFactoryError(err) ? err.message : 'service temporarily unavailable';
    // The job was not queued: the record says so rather than waiting forever (a 429 never got this far).
    await deps.builds.change(subject.id, failed(subject, { status, message }, request.priority)).catch(() => undefined);
    throw err instanceof FactoryError ? err : new FactoryError(503, message);
  }
  const build = await currentBuild(deps, subject.id);
  if (!build) throw new FactoryError(503, 'service temporarily unavailable');
  return build;
}

/**
 * The record says queued (a new build, or joined: unchanged). A user request joining a build only pre-warming had
 * asked for takes it over: its record says `user` and its job moves up to the user's priority (BullMQ keeps the first
 * options of a job ID otherwise, and the user would wait behind every pre-warm build).
 */
export async function recordQueued(deps: Pick<BuildRequestDeps, 'builds' | 'promote' | 'logger'>, subject: BuildSubject, priority: BuildPriority, jobPriority: number): Promise<void> {
  const before = await deps.builds.get(subject.id);
  await deps.builds.change(subject.id, queued(subject, priority));
  if (deps.promote && priority === 'user' && before?.build.state === 'queued' && before.build.priority === 'prewarm') {
    await deps.promote(assetJobId(subject.id), jobPriority).catch((err: unknown) => deps.logger.warn({ err, build: subject.id }, 'could not move a pre-warm build up'));
  }
}

/** The record with its live queue position (read, not written). */
export async function currentBuild(deps: Pick<BuildRequestDeps, 'builds' | 'queueKey'>, id: string): Promise<Build | undefined> {
  const current = await deps.builds.get(id);
  if (!current) return undefined;
  if (current.build.state !== 'queued') return current.build;
  const position = await deps.builds.queuePosition(deps.queueKey, assetJobId(id)).catch(() => undefined);
  if (position !== undefined) return { ...current.build, queuePosition: position };
  // not waiting right now (a retry's backoff): no position rather than an old one
  const { queuePosition: _stale, ...build } = current.build;
  return build;
}
