/** The scrub's schedule (one job per period cluster-wide) and its job handler. */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalStore } from '@factory/storage';
import { createLogger } from '@factory/telemetry';
import { nextScrub, scheduleScrubs, scrubHandler, summary } from '../src/scrub';

const DAY = 24 * 3600_000;
const logger = createLogger('scrub-test', 'silent');

test('periods are aligned to the interval: every worker names the same job for the same period', () => {
  const t = Date.UTC(2026, 0, 2, 13, 0, 0);
  expect(nextScrub(DAY, t)).toEqual({ delayMs: 11 * 3600_000, jobId: `scrub-${DAY}-${Date.UTC(2026, 0, 3) / DAY}` });
  expect(nextScrub(DAY, t + 3600_000).jobId).toBe(nextScrub(DAY, t).jobId);
  expect(nextScrub(DAY, Date.UTC(2026, 0, 3)).jobId).not.toBe(nextScrub(DAY, t).jobId);
});

test('scheduleScrubs enqueues at each period boundary until stopped', async () => {
  jest.useFakeTimers({ now: 10_500 });
  try {
    const enqueued: string[] = [];
    const schedule = scheduleScrubs(1000, async (id) => enqueued.push(id), logger);
    jest.advanceTimersByTime(499);
    expect(enqueued).toEqual([]);
    jest.advanceTimersByTime(1);
    jest.advanceTimersByTime(2000);
    expect(enqueued).toEqual(['scrub-1000-11', 'scrub-1000-12', 'scrub-1000-13']);
    schedule.stop();
    jest.advanceTimersByTime(5000);
    expect(enqueued).toHaveLength(3);
  } finally {
    jest.useRealTimers();
  }
});

test('the maintenance.scrub handler asks for the public key once and returns the report', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scrub-handler-'));
  try {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let asked = 0;
    const run = scrubHandler({ store: createLocalStore(dir), publicKeyPem: async () => (asked++, publicKey.export({ type: 'spki', format: 'pem' }).toString()), events: {}, logger });
    const report = await run();
    await run();
    expect(report).toMatchObject({ checked: 0, corrupt: 0, quarantined: 0, unpublished: 0 });
    expect(asked).toBe(1);
    expect(summary(report)).toMatch(/^scrub: 0 asset\(s\) verified, 0 corrupt, 0 quarantined, 0 unpublished, in \d+ ms$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
