/**
 * The build record (contract-14 "Build"): what a build of one asset is doing, as every build route answers it. Pure
 * transitions here; the Redis store (store.ts) applies them atomically and keeps each version as an event.
 *
 * A change is a function of the current record (undefined: none yet) returning the next one, or undefined when
 * nothing changed (no event is written then). Writers are the gateway (queued, already stored, queue position) and
 * the build-worker running the job (running, stages, bytes, done, failed, retrying).
 */
import { assetKey, AssetIdentity } from '@factory/asset';

export type BuildState = 'queued' | 'running' | 'done' | 'failed';
export type BuildPriority = 'user' | 'prewarm';

export interface BuildStage {
  name: string;
  startedAt: string;
  /** absent on the stage under way */
  durationMs?: number;
}

export interface Build {
  /** the asset key (64 hex): the build job is `asset-<id>` */
  id: string;
  schematic: string;
  version: string;
  asset: string;
  state: BuildState;
  /** queued only: builds that start before this one (0 = next) */
  queuePosition?: number;
  stage?: string;
  percent?: number;
  /** bytes written so far, while running, when known */
  bytes?: number;
  size?: number;
  sha256?: string;
  url: string;
  error?: { status: number; message: string };
  priority: BuildPriority;
  createdAt: string;
  updatedAt: string;
  stages: BuildStage[];
  /** the last MAX_LOG_LINES lines, `<ISO> <text>` */
  log: string[];
}

/** What names a build: its asset. */
export interface BuildSubject {
  id: string;
  schematic: string;
  version: string;
  asset: string;
  url: string;
}

export type BuildChange = (current: Build | undefined, now: Date) => Build | undefined;

export const MAX_LOG_LINES = 50;
/** BullMQ priorities (lower runs first): user requests get 1 (+ their fair share, see @factory/ratelimit), pre-warm 100. */
export const USER_PRIORITY = 1;
export const PREWARM_PRIORITY = 100;
export const BUILD_ID = /^[0-9a-f]{64}$/;

export const isTerminal = (b: Pick<Build, 'state'> | undefined): boolean => b?.state === 'done' || b?.state === 'failed';

/** The subject of an asset profile's build; `externalUrl` is FACTORY_EXTERNAL_URL. */
export function buildSubject(identity: AssetIdentity, externalUrl: string): BuildSubject {
  const base = externalUrl.replace(/\/+$/, '');
  return {
    id: assetKey(identity),
    schematic: identity.schematicId,
    version: identity.version,
    asset: identity.path,
    url: `${base}/image/${identity.schematicId}/${identity.version}/${identity.path}`,
  };
}

function fresh(subject: BuildSubject, state: BuildState, priority: BuildPriority, at: string, line: string): Build {
  return { ...subject, state, priority, createdAt: at, updatedAt: at, stages: [], log: [`${at} ${line}`] };
}

/** The record with a log line added (the oldest dropped beyond MAX_LOG_LINES) and updatedAt set. */
function touched(b: Build, at: string, line?: string): Build {
  const log = line === undefined ? b.log : [...b.log, `${at} ${line}`].slice(-MAX_LOG_LINES);
  return { ...b, updatedAt: at, log };
}

/** The stages with the one under way closed at `at`. */
function closeStage(stages: BuildStage[], at: string): BuildStage[] {
  const last = stages[stages.length - 1];
  if (!last || last.durationMs !== undefined) return stages;
  return [...stages.slice(0, -1), { ...last, durationMs: Math.max(0, Date.parse(at) - Date.parse(last.startedAt)) }];
}

/** Drops the fields that only describe another state. */
function only(b: Build, keep: Array<keyof Build>): Build {
  const out = { ...b };
  for (const k of ['queuePosition', 'stage', 'percent', 'bytes', 'size', 'sha256', 'error'] as const) if (!keep.includes(k)) delete out[k];
  return out;
}

/**
 * A build was asked for: a new record (none yet, or the last build of this asset ended: it is built again), else the
 * one under way, taken over by a user request when only a pre-warm had asked for it.
 */
export function queued(subject: BuildSubject, priority: BuildPriority): BuildChange {
  return (current, now) => {
    const at = now.toISOString();
    if (!current || isTerminal(current)) return fresh(subject, 'queued', priority, at, `queued (${priority})`);
    if (current.priority === 'prewarm' && priority === 'user') return touched({ ...current, priority }, at, 'requested by a user');
    return undefined;
  };
}

/** The asset is already stored: a done build (unless the record already says so, or a build of it is under way). */
export function alreadyStored(subject: BuildSubject, stored: { size: number; sha256: string }): BuildChange {
  return (current, now) => {
    if (current && !isTerminal(current)) return undefined;
    if (current?.state === 'done' && current.sha256 === stored.sha256 && current.size === stored.size) return undefined;
    const at = now.toISOString();
    return { ...fresh(subject, 'done', current?.priority ?? 'user', at, 'already stored'), percent: 100, size: stored.size, sha256: stored.sha256 };
  };
}

/** A worker took the job (attempt n, from 1). Creates the record when no gateway wrote one (e.g. an installer pull). */
export function started(subject: BuildSubject, attempt: number, priority: BuildPriority, worker: string): BuildChange {
  return (current, now) => {
    const at = now.toISOString();
    const base = current && !isTerminal(current) ? current : fresh(subject, 'queued', priority, at, `queued (${priority})`);
    const b = only({ ...base, state: 'running', stage: 'starting', percent: 0 }, ['stage', 'percent']);
    return touched({ ...b, stages: [...closeStage(b.stages, at), { name: 'starting', startedAt: at }] }, at, `started on ${worker} (attempt ${attempt})`);
  };
}

/**
 * Progress reported by the build (its stage and percent, bytes when known). Percent never goes down within a run;
 * a new stage closes the previous one and is logged. Only a running job reports progress: a record that says queued
 * (written again by a gateway after it had expired while the job ran) is running.
 */
export function progressed(p: { stage?: string; percent?: number; bytes?: number }): BuildChange {
  return (found, now) => {
    if (!found || isTerminal(found)) return undefined;
    const current = found.state === 'running' ? found : only({ ...found, state: 'running' }, ['stage', 'percent', 'bytes']);
    const at = now.toISOString();
    const percent = typeof p.percent === 'number' && Number.isFinite(p.percent) ? Math.max(current.percent ?? 0, Math.min(100, Math.round(p.percent))) : current.percent;
    const stage = typeof p.stage === 'string' && p.stage ? p.stage : current.stage;
    const bytes = typeof p.bytes === 'number' && Number.isFinite(p.bytes) ? p.bytes : stage === current.stage ? current.bytes : undefined;
    if (current === found && stage === current.stage && percent === current.percent && bytes === current.bytes) return undefined;
    const next: Build = { ...current, stage, percent };
    if (bytes === undefined) delete next.bytes;
    else next.bytes = bytes;
    if (stage !== current.stage && stage !== undefined) {
      next.stages = [...closeStage(current.stages, at), { name: stage, startedAt: at }];
      return touched(next, at, stage);
    }
    return touched(next, at);
  };
}

/** The attempt failed unexpectedly and the job will run again. */
export function retrying(attempt: number): BuildChange {
  return (current, now) => {
    if (!current || isTerminal(current)) return undefined;
    const at = now.toISOString();
    const b = only({ ...current, state: 'queued' }, []);
    return touched({ ...b, stages: closeStage(b.stages, at) }, at, `attempt ${attempt} failed; retrying`);
  };
}

/** The build published the asset. */
export function succeeded(subject: BuildSubject, stored: { size: number; sha256: string }, priority: BuildPriority): BuildChange {
  return (current, now) => {
    const at = now.toISOString();
    const base = current && !isTerminal(current) ? current : fresh(subject, 'running', priority, at, 'built');
    const b = only({ ...base, state: 'done', percent: 100, size: stored.size, sha256: stored.sha256 }, ['stage', 'percent', 'size', 'sha256']);
    return touched({ ...b, stages: closeStage(b.stages, at) }, at, `done: ${stored.size} bytes, sha256 ${stored.sha256}`);
  };
}

/** The build ended without an asset: a permanent error (the reply's status and message) or failed for good. */
export function failed(subject: BuildSubject, error: { status: number; message: string }, priority: BuildPriority): BuildChange {
  return (current, now) => {
    const at = now.toISOString();
    const base = current && !isTerminal(current) ? current : fresh(subject, 'queued', priority, at, `queued (${priority})`);
    const b = only({ ...base, state: 'failed', error }, ['stage', 'percent', 'error']);
    return touched({ ...b, stages: closeStage(b.stages, at) }, at, `failed: ${error.status} ${error.message}`);
  };
}

/** The build's place in the queue changed (while queued only). */
export function positioned(position: number): BuildChange {
  return (current, now) => {
    if (!current || current.state !== 'queued' || current.queuePosition === position) return undefined;
    return touched({ ...current, queuePosition: position }, now.toISOString());
  };
}
