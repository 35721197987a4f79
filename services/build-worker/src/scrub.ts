/**
 * The scrub as the build-worker runs it: the `maintenance.scrub` job (scheduled every FACTORY_SCRUB_INTERVAL, or
 * enqueued on demand), verifying every stored asset at rest with the signing service's public key.
 */
import { createPublicKey, KeyObject } from 'node:crypto';
import { IntegrityEvents, scrubAssets, ScrubReport } from '@factory/asset';
import type { ResultOf } from '@factory/queue';
import type { ObjectStore } from '@factory/storage';
import type { Logger } from '@factory/telemetry';

/**
 * When the next scheduled scrub is due and its job ID. Periods are aligned to multiples of the interval since the
 * epoch, so every build-worker enqueues the same job ID at about the same time: one scrub per period cluster-wide.
 */
export function nextScrub(intervalMs: number, nowMs: number): { delayMs: number; jobId: string } {
  const period = Math.floor(nowMs / intervalMs) + 1;
  return { delayMs: period * intervalMs - nowMs, jobId: `scrub-${intervalMs}-${period}` };
}

/** Enqueues `maintenance.scrub` at every period boundary until stopped. */
export function scheduleScrubs(intervalMs: number, enqueue: (jobId: string) => Promise<unknown>, logger: Logger): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const { delayMs, jobId } = nextScrub(intervalMs, Date.now());
    timer = setTimeout(() => {
      enqueue(jobId).catch((err) => logger.warn({ err, jobId }, 'could not enqueue the scheduled scrub'));
      arm();
    }, delayMs);
    timer.unref();
  };
  arm();
  return { stop: () => clearTimeout(timer) };
}

/** The `maintenance.scrub` handler: the public key is asked of the signing service once. */
export function scrubHandler(o: { store: ObjectStore; publicKeyPem: () => Promise<string>; events: IntegrityEvents; logger: Logger }): () => Promise<ResultOf<'maintenance.scrub'>> {
  let publicKey: KeyObject | undefined;
  return async () => {
    publicKey ??= createPublicKey(await o.publicKeyPem());
    const report = await scrubAssets(o.store, publicKey, o.events);
    o.logger[report.corrupt ? 'warn' : 'info']({ problems: report.problems }, summary(report));
    return report;
  };
}

export function summary(r: ScrubReport): string {
  return `scrub: ${r.checked} asset(s) verified, ${r.corrupt} corrupt, ${r.quarantined} quarantined, ${r.unpublished} unpublished, in ${r.ms} ms`;
}
