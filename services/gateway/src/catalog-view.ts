/**
 * The upstream catalog as the gateway sees it: answers of the registry-proxy's `upstream.*` jobs, remembered so that
 * resolving an asset profile at the edge costs no queue round trip on the warm path. Catalogs are immutable per
 * version (remembered, bounded; failures are not); the version list is re-read after a short TTL.
 */
import { CatalogView, secureBootOfferSource } from '@factory/asset';
import type { ExtensionEntry, OverlayEntry } from '@factory/catalog';
import { BoundedMap, memoPromise } from '@factory/runtime';
import type { JobCaller } from './app';

const MAX_VERSIONS_REMEMBERED = 1000;

export class QueuedCatalogView implements CatalogView {
  private versionList?: { at: number; versions: Promise<string[]> };
  private readonly extensionLists = new BoundedMap<string, Promise<ExtensionEntry[]>>(MAX_VERSIONS_REMEMBERED);
  private readonly overlayLists = new BoundedMap<string, Promise<OverlayEntry[]>>(MAX_VERSIONS_REMEMBERED);

  /** The signing service's Secure Boot offer (is it on, with which certificate), re-read after the same TTL. */
  readonly secureBoot: NonNullable<CatalogView['secureBoot']>;

  constructor(
    private readonly jobs: Pick<JobCaller, 'call'>,
    private readonly versionsTtlMs = 30_000,
  ) {
    this.secureBoot = secureBootOfferSource(() => this.jobs.call('signing.secureBootPublic', {}), versionsTtlMs);
  }

  versions(): Promise<string[]> {
    const now = Date.now();
    if (!this.versionList || now - this.versionList.at >= this.versionsTtlMs) {
      const versions = this.jobs.call('upstream.versions', { broken: false }).then((r) => r.versions);
      const entry = { at: now, versions };
      this.versionList = entry;
      versions.catch(() => {
        if (this.versionList === entry) this.versionList = undefined;
      });
    }
    return this.versionList.versions;
  }

  extensions(versionTag: string): Promise<ExtensionEntry[]> {
    return memoPromise(this.extensionLists, versionTag, () => this.jobs.call('upstream.extensions', { version: versionTag }).then((r) => r.extensions));
  }

  overlays(versionTag: string): Promise<OverlayEntry[]> {
    return memoPromise(this.overlayLists, versionTag, () => this.jobs.call('upstream.overlays', { version: versionTag }).then((r) => r.overlays));
  }
}
