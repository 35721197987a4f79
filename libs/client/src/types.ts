/**
 * The JSON objects of the factory's HTTP API as clients see them, declared once here (contract of issue 14): the
 * gateway's build routes, the UI and the CLI import these instead of restating them.
 */

export type BuildState = 'queued' | 'running' | 'done' | 'failed';
export type BuildPriority = 'user' | 'prewarm';

export interface BuildStage {
  name: string;
  /** ISO-8601 */
  startedAt: string;
  /** absent on the stage that is still running */
  durationMs?: number;
}

export interface BuildError {
  status: number;
  message: string;
}

/** One asset's build; `id` is the asset's identity (the same build a `GET /image` of that asset waits on). */
export interface Build {
  /** asset key: 64 lowercase hex */
  id: string;
  schematic: string;
  version: string;
  /** asset path as in `/image/<schematic>/<version>/<asset>` */
  asset: string;
  state: BuildState;
  /** only when queued (0 = next to start) */
  queuePosition?: number;
  /** running; kept on done */
  stage?: string;
  /** 0..100; running, kept on done (100) */
  percent?: number;
  /** bytes written so far, when known (running) */
  bytes?: number;
  /** done */
  size?: number;
  /** done: hex digest of the asset's bytes */
  sha256?: string;
  /** where the asset is (or will be) served */
  url: string;
  /** failed only */
  error?: BuildError;
  priority: BuildPriority;
  createdAt: string;
  updatedAt: string;
  stages: BuildStage[];
  /** last ≤ 50 lines, each `<ISO> <text>` */
  log: string[];
}

/** `POST /builds`: exactly one of `version` and `versions`. */
export type CreateBuildsRequest = { schematic: string; assets: string[] } & ({ version: string; versions?: never } | { versions: string[]; version?: never });

export interface ListBuildsFilter {
  schematic?: string;
  version?: string;
  /** ≤ 100, default 20 */
  limit?: number;
}

/** `POST /schematics` answer. */
export interface SchematicCreated {
  id: string;
  /** canonical YAML */
  schematic: string;
}

/** An element of `/version/<v>/extensions/official`. */
export interface Extension {
  name: string;
  ref: string;
  digest: string;
  author: string;
  description: string;
}

/** An element of `/version/<v>/overlays/official`. */
export interface Overlay {
  name: string;
  image: string;
  ref: string;
  digest: string;
}

export function isFinished(build: Build): boolean {
  return build.state === 'done' || build.state === 'failed';
}
