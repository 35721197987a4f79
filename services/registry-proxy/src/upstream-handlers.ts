/**
 * The `upstream.*` job handlers: the upstream catalog (versions, extensions, overlays) as the other services see it.
 * Answers carry only the contract's fields, never the catalog's internal ones (repository paths, tags).
 */
import type { UpstreamCatalog } from '@factory/catalog';
import type { PayloadOf, ResultOf } from '@factory/queue';

/** What the handlers read of the upstream catalog. */
export type CatalogReader = Pick<UpstreamCatalog, 'registry' | 'versions' | 'brokenVersions' | 'extensions' | 'overlays' | 'ping' | 'talosctl'>;

type UpstreamJob = 'upstream.versions' | 'upstream.extensions' | 'upstream.overlays' | 'upstream.ping' | 'upstream.talosctl';
/** Assignable to the queue's `Handlers`; the handlers do not use the BullMQ job, so tests call them with a payload only. */
export type UpstreamHandlers = { [K in UpstreamJob]: (payload: PayloadOf<K>) => Promise<ResultOf<K>> };

export function upstreamHandlers(catalog: CatalogReader): UpstreamHandlers {
  return {
    'upstream.versions': async ({ broken }) => ({ versions: broken ? catalog.brokenVersions() : await catalog.versions() }),
    'upstream.extensions': async ({ version }) => ({
      extensions: (await catalog.extensions(version)).map(({ name, ref, digest, author, description }) => ({ name, ref, digest, author, description })),
    }),
    'upstream.overlays': async ({ version }) => ({
      overlays: (await catalog.overlays(version)).map(({ name, image, ref, digest }) => ({ name, image, ref, digest })),
    }),
    'upstream.ping': async () => {
      await catalog.ping();
      return { registry: catalog.registry };
    },
    'upstream.talosctl': async ({ version }) => {
      const { version: tag, digest, files } = await catalog.talosctl(version);
      return { version: tag, digest, files: files.map(({ name, size }) => ({ name, size })) };
    },
  };
}
