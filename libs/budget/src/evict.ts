/**
 * One eviction pass: measure what is stored (sizes from the object store itself, never from a count that could
 * drift), join the artifacts with their last access, and delete the least recently used artifacts until the total
 * is within the budget. Schematics and OCI content are counted, never deleted. Runs in one place at a time
 * cluster-wide (a `maintenance.evict` job with a deterministic ID) — and deleting twice would be harmless anyway.
 */
import type { ObjectStore } from '@factory/storage';
import type { Logger } from '@factory/telemetry';
import { planEviction, StoredArtifact } from './plan';
import type { AccessTracker } from './tracker';
import type { BudgetMetrics } from './metrics';

export interface BudgetSettings {
  /** Total bytes allowed in the object store; Infinity = no budget (nothing is ever evicted). */
  budgetBytes: number;
  /** Artifacts accessed this recently are never evicted. */
  graceMs: number;
}

/** Where each class of stored content lives: artifacts are evictable, pinned prefixes are only counted. */
export interface StorageLayout {
  artifacts: string;
  /**
   * Small objects that belong to an artifact (`<artifact key><suffix>`, e.g. its signature file): counted with it and
   * deleted with it (first, so the artifact stops being published before its bytes go), never evicted on their own
   * while it exists — a lone one would unpublish a perfectly good artifact.
   */
  companionSuffixes?: string[];
  pinned: Record<string, string>;
}

interface ListedArtifact {
  key: string;
  size: number;
  lastModified?: Date;
  companions: string[];
}

/** Artifacts with their companions folded in; a companion whose artifact is gone is an artifact of its own. */
function groupCompanions(objects: Array<{ key: string; size: number; lastModified?: Date }>, suffixes: string[]): ListedArtifact[] {
  const byKey = new Map<string, ListedArtifact>();
  const companions: Array<{ owner: string; key: string; size: number; lastModified?: Date }> = [];
  for (const o of objects) {
    const suffix = suffixes.find((s) => o.key.endsWith(s) && o.key.length > s.length);
    if (suffix) companions.push({ owner: o.key.slice(0, -suffix.length), ...o });
    else byKey.set(o.key, { ...o, companions: [] });
  }
  for (const c of companions) {
    const owner = byKey.get(c.owner);
    if (owner) {
      owner.size += c.size;
      owner.companions.push(c.key);
    } else {
      byKey.set(c.key, { key: c.key, size: c.size, lastModified: c.lastModified, companions: [] });
    }
  }
  return [...byKey.values()];
}

export interface EvictionReport {
  /** Bytes per class (`artifacts` and each pinned class) before the pass. */
  bytes: Record<string, number>;
  objects: Record<string, number>;
  storedBytes: number;
  evictedBytes: number;
  evictedObjects: number;
  remainingBytes: number;
  overBudget: boolean;
}

export interface EvictionDeps {
  store: Pick<ObjectStore, 'list' | 'delete'>;
  tracker: Pick<AccessTracker, 'lastAccess' | 'forget' | 'recordedKeys' | 'setStoredBytes'>;
  layout: StorageLayout;
  settings: BudgetSettings;
  metrics?: BudgetMetrics;
  logger?: Logger;
  now?: () => number;
}

export async function runEvictionPass(d: EvictionDeps): Promise<EvictionReport> {
  const now = d.now ?? Date.now;
  const bytes: Record<string, number> = {};
  const objects: Record<string, number> = {};
  let pinnedBytes = 0;
  for (const [name, prefix] of Object.entries(d.layout.pinned)) {
    let n = 0;
    let count = 0;
    for await (const o of d.store.list(prefix)) {
      n += o.size;
      count++;
    }
    bytes[name] = n;
    objects[name] = count;
    pinnedBytes += n;
  }
  const objectsListed: Array<{ key: string; size: number; lastModified?: Date }> = [];
  for await (const o of d.store.list(d.layout.artifacts)) objectsListed.push({ key: o.key, size: o.size, lastModified: o.lastModified });
  const listed = groupCompanions(objectsListed, d.layout.companionSuffixes ?? []);
  const companionsOf = new Map(listed.map((o) => [o.key, o.companions]));
  const recorded = await d.tracker.lastAccess(listed.map((o) => o.key));
  // Never recorded (published before tracking, or Redis lost its data): the object's own age stands in.
  const artifacts: StoredArtifact[] = listed.map((o) => ({ key: o.key, size: o.size, lastAccess: recorded.get(o.key) ?? o.lastModified?.getTime() ?? now() }));
  bytes.artifacts = artifacts.reduce((n, a) => n + a.size, 0);
  objects.artifacts = objectsListed.length;

  const plan = planEviction({ artifacts, pinnedBytes, budgetBytes: d.settings.budgetBytes, now: now(), graceMs: d.settings.graceMs });
  let evictedBytes = 0;
  let evictedObjects = 0;
  const evicted: string[] = [];
  if (plan.evict.length) {
    // A reader may have come for one of them since the listing: ask again right before deleting.
    const fresh = await d.tracker.lastAccess(plan.evict.map((a) => a.key));
    for (const a of plan.evict) {
      const seen = fresh.get(a.key);
      if (seen !== undefined && now() - seen < d.settings.graceMs) continue;
      const companions = companionsOf.get(a.key) ?? [];
      for (const companion of companions) await d.store.delete(companion);
      await d.store.delete(a.key);
      evicted.push(a.key);
      evictedObjects += 1 + companions.length;
      evictedBytes += a.size;
    }
    await d.tracker.forget(evicted);
  }
  // Records of artifacts deleted behind the factory's back (or by an older pass that died) are dropped too.
  const stored = new Set(listed.map((o) => o.key));
  const stale = (await d.tracker.recordedKeys()).filter((k) => !stored.has(k));
  if (stale.length) await d.tracker.forget(stale);

  const remainingBytes = plan.storedBytes - evictedBytes;
  await d.tracker.setStoredBytes(remainingBytes);
  const report: EvictionReport = {
    bytes,
    objects,
    storedBytes: plan.storedBytes,
    evictedBytes,
    evictedObjects,
    remainingBytes,
    overBudget: remainingBytes > d.settings.budgetBytes,
  };
  d.metrics?.observe(report, d.settings.budgetBytes);
  if (evicted.length) d.logger?.info({ evicted: evicted.length, evictedBytes, remainingBytes, budgetBytes: d.settings.budgetBytes }, 'evicted least recently used artifacts');
  if (report.overBudget) {
    d.logger?.warn({ remainingBytes, budgetBytes: d.settings.budgetBytes, bytes }, 'storage is over budget: what is left is pinned (schematics, OCI content) or was accessed within the grace period');
  }
  return report;
}
