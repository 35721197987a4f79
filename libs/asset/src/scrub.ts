/**
 * The scrub: every published asset verified at rest — signature over its recorded digests, then its bytes against
 * them (SHA-256 and SHA-512) — so corruption is found before a request meets it. A failing asset is quarantined; the
 * next request for it rebuilds it.
 */
import type { KeyObject } from 'node:crypto';
import type { ObjectStore } from '@factory/storage';
import { ASSET_OBJECT_KEY, findAsset, IntegrityEvents, IntegrityProblem, quarantineAsset, verifyStoredAsset } from './integrity';

export interface ScrubProblem {
  key: string;
  problem: IntegrityProblem;
  detail: string;
}

export interface ScrubReport {
  /** published assets verified */
  checked: number;
  /** assets under `assets/` that are not (completely) published: nothing vouches for them; a request rebuilds them */
  unpublished: number;
  corrupt: number;
  quarantined: number;
  problems: ScrubProblem[];
  ms: number;
}

/** At most this many problems are listed in a report (all are counted, quarantined and logged). */
const MAX_LISTED_PROBLEMS = 100;

export async function scrubAssets(store: ObjectStore, publicKey: KeyObject, events: IntegrityEvents = {}): Promise<ScrubReport> {
  const started = Date.now();
  const report: ScrubReport = { checked: 0, unpublished: 0, corrupt: 0, quarantined: 0, problems: [], ms: 0 };
  for await (const listed of store.list('assets/')) {
    if (!ASSET_OBJECT_KEY.test(listed.key)) continue;
    const asset = await findAsset(store, listed.key, 'application/octet-stream');
    if (!asset) {
      report.unpublished++;
      continue;
    }
    const verdict = await verifyStoredAsset(store, asset, publicKey, { sha512: true });
    if (verdict.ok) {
      report.checked++;
      events.verified?.('ok');
      continue;
    }
    // Replaced or removed while we looked: a rebuild or a quarantine by a request; the next scrub sees the result.
    if (verdict.problem === 'changed') continue;
    report.checked++;
    report.corrupt++;
    events.verified?.(verdict.problem);
    if (report.problems.length < MAX_LISTED_PROBLEMS) report.problems.push({ key: listed.key, problem: verdict.problem, detail: verdict.detail });
    const outcome = await quarantineAsset(store, { key: listed.key, validator: asset.validator }, `${verdict.problem}: ${verdict.detail}`);
    if (outcome !== 'skipped') {
      report.quarantined++;
      events.quarantined?.(listed.key, verdict.problem, verdict.detail, outcome === 'moved');
    }
  }
  report.ms = Date.now() - started;
  return report;
}
