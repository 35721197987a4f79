/**
 * The least-recently-used eviction planner: pure, so every rule of what may go is tested without storage or Redis.
 * Only artifacts are candidates; everything else stored (schematics, OCI content) counts against the budget.
 */

/** A stored artifact as the planner sees it. */
export interface StoredArtifact {
  key: string;
  size: number;
  /** Last access, ms since the epoch (the last time it was published or served). */
  lastAccess: number;
}

export interface EvictionInput {
  artifacts: readonly StoredArtifact[];
  /** Bytes stored that are never evicted (schematics, OCI content). */
  pinnedBytes: number;
  /** Total bytes allowed; Infinity = no budget. */
  budgetBytes: number;
  now: number;
  /**
   * An artifact accessed this recently is never evicted: a client may have just been redirected to it (a presigned
   * URL), or be between the gateway's lookup and its read.
   */
  graceMs: number;
}

export interface EvictionPlan {
  /** In eviction order: least recently used first. */
  evict: StoredArtifact[];
  /** Bytes stored before (artifacts + pinned). */
  storedBytes: number;
  /** Bytes stored once the plan is carried out. */
  remainingBytes: number;
  /** Still over budget after the plan: what is left is pinned or inside the grace period. */
  overBudget: boolean;
}

/** Least recently used first; equal access times in key order, so every planner run decides alike. */
export function lruOrder(a: StoredArtifact, b: StoredArtifact): number {
  return a.lastAccess - b.lastAccess || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

export function planEviction(input: EvictionInput): EvictionPlan {
  const artifactBytes = input.artifacts.reduce((n, a) => n + a.size, 0);
  const storedBytes = artifactBytes + input.pinnedBytes;
  let remainingBytes = storedBytes;
  const evict: StoredArtifact[] = [];
  if (remainingBytes > input.budgetBytes) {
    for (const a of [...input.artifacts].sort(lruOrder)) {
      if (remainingBytes <= input.budgetBytes) break;
      // Sorted by access: once one is inside the grace period, so is every later one.
      if (input.now - a.lastAccess < input.graceMs) break;
      evict.push(a);
      remainingBytes -= a.size;
    }
  }
  return { evict, storedBytes, remainingBytes, overBudget: remainingBytes > input.budgetBytes };
}
