/**
 * The OCI distribution API of the factory's registry (anchor-api §5): express app with the `/v2` router over the
 * OCI store. Manifest requests for version tags find or build the installer index; everything else is served from
 * the store after the schematic and image-name checks.
 */
import express from 'express';
import type { UpstreamCatalog } from '@factory/catalog';
import { FactoryError, isFactoryError } from '@factory/errors';
import type { InstallerRef } from '@factory/queue';
import { BoundedMap } from '@factory/runtime';
import { createRegistryRouter, invalidImageMessage, ManifestRequest, OciContentStore, RegistryRouterDeps, RepositoryRequest } from '@factory/registry';
import { parseRequestVersion, tagOf } from '@factory/talos';
import type { Logger } from '@factory/telemetry';
import type { BuildTicket, CatalogView } from '@factory/asset';
import type { TrustProxy } from '@factory/config';
import { buildTicket, forwardedClient, RateLimitedError, RateLimiter } from '@factory/ratelimit';
import { installerJobId, installerProfiles, Installers, requestInstaller } from './installers';

export interface RegistryAppOptions {
  oci: OciContentStore;
  catalog: UpstreamCatalog;
  /** what installer profiles are resolved against (the upstream catalog and the Secure Boot offer) */
  profileCatalog: CatalogView;
  installers: Installers;
  jobs: {
    call(name: 'schematic.get', payload: { id: string }): Promise<{ yaml: string }>;
    call(name: 'registry.installer', payload: InstallerRef, opts: { jobId: string; timeoutMs: number; removeWhenDone: boolean }): Promise<{ mediaType: string; digest: string; size: number }>;
  };
  buildTimeoutMs: number;
  presignTtlSeconds: number;
  /** `/v2/siderolabs/…` source-image proxy (anchor-api §5.6) */
  sourceProxy?: RegistryRouterDeps['proxy'];
  serverTag: string;
  logger: Logger;
  /** the gateway's proof for the blob hand-off (FACTORY_HANDOFF_SECRET; only used on local storage) and for the client it names */
  handoffSecret?: string;
  /** per-client limits on the installer builds a pull starts (absent: none) */
  limits?: { limiter: RateLimiter; trustProxy: TrustProxy };
}

const SCHEMATIC_ID = /^[0-9a-f]{64}$/;
/** How long a verified tag is answered from memory (a second pull is then one store read for the manifest). */
const VERIFIED_TTL_MS = 60_000;
const MAX_REMEMBERED = 10_000;
const MAX_REMEMBERED_SCHEMATIC_BYTES = 64 * 1024;

export function createRegistryApp(o: RegistryAppOptions): express.Express {
  // canonical YAML of schematics known to exist
  const knownSchematics = new BoundedMap<string, string>(MAX_REMEMBERED);
  const verified = new BoundedMap<string, { descriptor: { mediaType: string; digest: string; size: number }; expires: number }>(MAX_REMEMBERED);

  /** The schematic's canonical YAML; 404 in the anchor's text when unknown. */
  async function schematicYaml(id: string): Promise<string> {
    const known = knownSchematics.get(id);
    if (known !== undefined) return known;
    const notFound = new FactoryError(404, `schematic ID ${JSON.stringify(id)} not found`);
    if (!SCHEMATIC_ID.test(id)) throw notFound;
    let yaml: string;
    try {
      ({ yaml } = await o.jobs.call('schematic.get', { id }));
    } catch (err) {
      if (isFactoryError(err) && err.status === 404) throw notFound;
      throw err;
    }
    // Memory stays bounded by entries × size: unusually large schematics are asked for again instead.
    if (yaml.length <= MAX_REMEMBERED_SCHEMATIC_BYTES) knownSchematics.set(id, yaml);
    return yaml;
  }

  async function checkRepository(req: RepositoryRequest): Promise<void> {
    await schematicYaml(req.schematicId);
    if (req.platform === null) throw new FactoryError(400, invalidImageMessage(req.image));
  }

  /** `latest` → the newest offered version without a prerelease part. */
  async function versionOf(reference: string): Promise<string> {
    if (reference === 'latest') {
      const stable = (await o.catalog.versions()).filter((v) => !v.includes('-'));
      if (!stable.length) throw new FactoryError(404, 'no stable Talos version is available');
      return stable[stable.length - 1];
    }
    const v = parseRequestVersion(reference);
    // The anchor answers 500 here; a malformed version is the client's mistake.
    if (!v) throw new FactoryError(400, `invalid version ${JSON.stringify(reference)}: expected a semantic version such as v1.11.0`);
    const tag = tagOf(v);
    await o.catalog.requireAvailable(tag);
    return tag;
  }

  async function admitInstaller(limits: NonNullable<RegistryAppOptions['limits']>, req: ManifestRequest, ref: InstallerRef): Promise<BuildTicket> {
    try {
      return await buildTicket(limits.limiter, forwardedClient(req.request, limits.trustProxy, o.handoffSecret), installerJobId(ref), 'registry');
    } catch (err) {
      if (err instanceof RateLimitedError) req.request.res?.setHeader('Retry-After', String(err.retryAfterSeconds));
      throw err;
    }
  }

  async function resolveManifest(req: ManifestRequest) {
    await checkRepository(req);
    const version = await versionOf(req.reference);
    const ref: InstallerRef = { image: req.image, schematicId: req.schematicId, platform: req.platform!, secureboot: req.secureboot, version };
    const memoKey = `${req.image}/${req.schematicId}:${version}`;
    const hit = verified.get(memoKey);
    if (hit && hit.expires > Date.now()) return hit.descriptor;
    let descriptor = await o.installers.published(ref);
    if (!descriptor) {
      // Every permanent 4xx (secure boot, version gates, unknown extension or overlay) is answered here, before the
      // build is queued.
      await installerProfiles(ref, await schematicYaml(ref.schematicId), o.profileCatalog);
      // A pull that starts a build counts as the client's cold build, like an asset download; joining one is free.
      const ticket = o.limits ? await admitInstaller(o.limits, req, ref) : {};
      try {
        descriptor = await requestInstaller(o.jobs, o.installers, ref, o.buildTimeoutMs, ticket.priority);
      } finally {
        ticket.release?.();
      }
    }
    verified.set(memoKey, { descriptor, expires: Date.now() + VERIFIED_TTL_MS });
    return descriptor;
  }

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use((_req, res, next) => {
    res.setHeader('Server', `Image Factory ${o.serverTag}`);
    next();
  });
  app.use(
    '/v2',
    createRegistryRouter({
      // what registries answer when a client pulls too much (clients print the message)
      errorInfo: (err) => (err instanceof RateLimitedError ? { status: 429, message: err.message, ociCode: 'TOOMANYREQUESTS' } : undefined),
      store: o.oci,
      resolveManifest,
      checkRepository,
      proxy: o.sourceProxy,
      presignTtlSeconds: o.presignTtlSeconds,
      // a gateway sharing the local object directory (and the secret) reads blob bodies itself
      handoffSecret: o.oci.objects.kind === 'local' ? o.handoffSecret : undefined,
      onError: (err, req) => o.logger.error({ err, url: req.originalUrl }, 'registry request failed'),
    }),
  );
  app.use((_req, res) => {
    res.status(404).type('text/plain; charset=utf-8').send('404 page not found\n');
  });
  return app;
}
