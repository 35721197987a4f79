/** The least-recently-used planner: what goes, in which order, and what never does. */
import { planEviction, StoredArtifact } from '../src';

const MIN = 60_000;
const NOW = 1_000 * MIN;
const art = (key: string, size: number, minutesAgo: number): StoredArtifact => ({ key, size, lastAccess: NOW - minutesAgo * MIN });
const keys = (a: StoredArtifact[]) => a.map((x) => x.key);

test('within budget: nothing is evicted', () => {
  const plan = planEviction({ artifacts: [art('a', 10, 60), art('b', 10, 30)], pinnedBytes: 5, budgetBytes: 25, now: NOW, graceMs: 0 });
  expect(plan).toEqual({ evict: [], storedBytes: 25, remainingBytes: 25, overBudget: false });
});

test('over budget: least recently used first, only as many as needed', () => {
  const artifacts = [art('recent', 40, 1 * 60), art('oldest', 30, 5 * 60), art('middle', 20, 3 * 60), art('older', 25, 4 * 60)];
  const plan = planEviction({ artifacts, pinnedBytes: 0, budgetBytes: 70, now: NOW, graceMs: 0 });
  expect(keys(plan.evict)).toEqual(['oldest', 'older']);
  expect(plan.remainingBytes).toBe(60);
  expect(plan.overBudget).toBe(false);
});

test('pinned bytes (schematics, OCI content) count against the budget but are never candidates', () => {
  const plan = planEviction({ artifacts: [art('a', 10, 10), art('b', 10, 5)], pinnedBytes: 100, budgetBytes: 105, now: NOW, graceMs: 0 });
  expect(keys(plan.evict)).toEqual(['a', 'b']);
  expect(plan.remainingBytes).toBe(100);
  expect(plan.overBudget).toBe(false);
  const worse = planEviction({ artifacts: [art('a', 10, 10)], pinnedBytes: 200, budgetBytes: 105, now: NOW, graceMs: 0 });
  expect(keys(worse.evict)).toEqual(['a']);
  expect(worse.overBudget).toBe(true);
});

test('an artifact accessed within the grace period is never evicted, even over budget', () => {
  const artifacts = [art('old', 10, 60), art('just-served', 50, 2), art('mid', 10, 20)];
  const plan = planEviction({ artifacts, pinnedBytes: 0, budgetBytes: 10, now: NOW, graceMs: 10 * MIN });
  expect(keys(plan.evict)).toEqual(['old', 'mid']);
  expect(plan.remainingBytes).toBe(50);
  expect(plan.overBudget).toBe(true);
});

test('equal access times are evicted in key order (every planner decides alike); the input is not reordered', () => {
  const artifacts = [art('c', 10, 5), art('a', 10, 5), art('b', 10, 5)];
  const plan = planEviction({ artifacts, pinnedBytes: 0, budgetBytes: 15, now: NOW, graceMs: 0 });
  expect(keys(plan.evict)).toEqual(['a', 'b']);
  expect(keys(artifacts)).toEqual(['c', 'a', 'b']);
});

test('no budget (Infinity) never evicts; a zero budget evicts everything outside the grace period', () => {
  const artifacts = [art('a', 10 ** 12, 10 ** 4), art('b', 1, 0)];
  expect(planEviction({ artifacts, pinnedBytes: 0, budgetBytes: Infinity, now: NOW, graceMs: 0 }).evict).toEqual([]);
  expect(keys(planEviction({ artifacts, pinnedBytes: 0, budgetBytes: 0, now: NOW, graceMs: MIN }).evict)).toEqual(['a']);
});
