/**
 * @factory/budget: the storage budget. Artifacts (built assets) are evicted least recently used first when the
 * object store holds more than the budget; schematics and OCI content are counted, never evicted. Last accesses are
 * kept cluster-wide in Redis (AccessTracker); the planner is pure (planEviction); one pass (runEvictionPass) runs
 * at a time cluster-wide as a `maintenance.evict` job.
 */
export * from './plan';
export * from './tracker';
export * from './evict';
export * from './metrics';
