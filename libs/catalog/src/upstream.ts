/**
 * The upstream Talos content a factory is built from (ghcr.io/siderolabs or a mirror): which versions exist, and
 * each version's extensions and overlays catalogs. Every image is resolved tag → digest and its cosign signature
 * verified (when a public key is configured) before anything is read from it.
 */
import { readFileSync } from 'node:fs';
import type { UpstreamSettings } from '@factory/config';
import { RegistryClient, verifyCosignSignature, readImageFiles, listImageFiles, OciError, FetchedManifest } from '@factory/oci';
import { FactoryError } from '@factory/errors';
import { BoundedMap, memoPromise } from '@factory/runtime';
import { formatSemver, isTalosctlFileName, offeredVersions, parseRequestVersion, SemVer, supportsOverlays, supportsTalosctl } from '@factory/talos';
import type { Logger } from '@factory/telemetry';
import { CatalogExtension, CatalogOverlay, parseExtensionsCatalog, parseOverlaysCatalog } from './parse';

const CATALOG_FILE_LIMIT = 4 * 1024 * 1024;
/** Digest-pinned resolutions remembered per process (each holds one small manifest). */
const PINNED_CACHE_ENTRIES = 1000;
/** Versions whose catalogs are remembered per process. */
const CATALOG_VERSIONS_REMEMBERED = 1000;

export class UpstreamCatalog {
  readonly client: RegistryClient;
  private readonly publicKey?: string;
  private versionsCache?: { at: number; versions: string[] };
  private versionsInflight?: Promise<string[]>;
  // Catalogs are immutable per version: remembered (bounded), single-flight, failures forgotten so they are retried.
  private readonly extensionsCache = new BoundedMap<string, Promise<CatalogExtension[]>>(CATALOG_VERSIONS_REMEMBERED);
  private readonly overlaysCache = new BoundedMap<string, Promise<CatalogOverlay[]>>(CATALOG_VERSIONS_REMEMBERED);
  private readonly talosctlCache = new BoundedMap<string, Promise<TalosctlRelease>>(CATALOG_VERSIONS_REMEMBERED);
  private readonly pinned = new BoundedMap<string, Promise<{ digest: string; manifest: FetchedManifest }>>(PINNED_CACHE_ENTRIES);

  constructor(
    private readonly settings: UpstreamSettings,
    private readonly logger: Logger,
    client?: RegistryClient,
  ) {
    this.client =
      client ??
      new RegistryClient({
        registry: settings.registry,
        insecure: settings.insecure,
        auth: settings.username ? { username: settings.username, password: settings.password ?? '' } : undefined,
        userAgent: 'talos-image-factory',
      });
    this.publicKey = settings.publicKeyFile ? readFileSync(settings.publicKeyFile, 'utf8') : undefined;
  }

  /** The upstream registry host (`ghcr.io` or a mirror). */
  get registry(): string {
    return this.settings.registry;
  }

  /** Repository paths of the upstream images (imager, installer-base, installer, ...), without the namespace. */
  get components(): UpstreamSettings['components'] {
    return this.settings.components;
  }

  /** Repository path on the configured registry for a component (`siderolabs/imager` → `<ns>/siderolabs/imager`). */
  repo(component: string): string {
    return this.settings.namespace ? `${this.settings.namespace}/${component}` : component;
  }

  /** Offered versions, ascending, `v`-prefixed; refreshed every versionRecheckMs, single-flight. */
  async versions(): Promise<string[]> {
    const c = this.versionsCache;
    if (c && Date.now() - c.at < this.settings.versionRecheckMs) return c.versions;
    if (!this.versionsInflight) {
      this.versionsInflight = (async () => {
        try {
          const tags = await this.client.listTags(this.repo(this.settings.components.imager));
          const versions = offeredVersions(tags, { min: this.settings.minTalosVersion, broken: this.settings.brokenTalosVersions });
          this.versionsCache = { at: Date.now(), versions };
          return versions;
        } catch (err) {
          if (c) {
            this.logger.warn({ err }, 'could not refresh Talos versions; serving the previous list');
            return c.versions;
          }
          throw upstreamError(err, 'listing Talos versions');
        } finally {
          this.versionsInflight = undefined;
        }
      })();
    }
    return this.versionsInflight;
  }

  brokenVersions(): string[] {
    return this.settings.brokenTalosVersions.map((v) => `v${v}`);
  }

  /** Parses a request version and requires it to be offered (404 `version X is not available` otherwise). */
  async requireAvailable(raw: string): Promise<SemVer> {
    const v = parseVersionOrThrow(raw);
    const versions = await this.versions();
    if (!versions.includes(`v${formatSemver(v)}`)) throw new FactoryError(404, `version ${formatSemver(v)} is not available`);
    return v;
  }

  async extensions(rawVersion: string): Promise<CatalogExtension[]> {
    const v = await this.requireAvailable(rawVersion);
    const tag = `v${formatSemver(v)}`;
    return memoPromise(this.extensionsCache, tag, async () => {
      const repo = this.repo(this.settings.components.extensions);
      const files = await this.readVerified(repo, tag, (p) => p === 'image-digests' || p === 'descriptions.yaml');
      const digests = files.get('image-digests');
      if (!digests) throw new FactoryError(502, `upstream image ${repo}:${tag} has no image-digests file`);
      try {
        return parseExtensionsCatalog(digests.toString('utf8'), files.get('descriptions.yaml')?.toString('utf8'), this.settings.registry);
      } catch (err) {
        throw new FactoryError(502, `upstream image ${repo}:${tag}: ${(err as Error).message}`);
      }
    });
  }

  async overlays(rawVersion: string): Promise<CatalogOverlay[]> {
    const v = parseVersionOrThrow(rawVersion);
    // Overlays exist from Talos 1.7; older versions answer [] without checking availability, like the anchor.
    if (!supportsOverlays(v)) return [];
    await this.requireAvailable(rawVersion);
    const tag = `v${formatSemver(v)}`;
    return memoPromise(this.overlaysCache, tag, async () => {
      const repo = this.repo(this.settings.components.overlays);
      const files = await this.readVerified(repo, tag, (p) => p === 'overlays.yaml');
      const yaml = files.get('overlays.yaml');
      if (!yaml) throw new FactoryError(502, `upstream image ${repo}:${tag} has no overlays.yaml file`);
      try {
        return parseOverlaysCatalog(yaml.toString('utf8'));
      } catch (err) {
        throw new FactoryError(502, `upstream image ${repo}:${tag}: ${(err as Error).message}`);
      }
    });
  }

  /**
   * The talosctl binaries of a version: the root files `talosctl-<os>-<arch>[.exe]` of its verified
   * `siderolabs/talosctl-all` image (amd64 variant, like the anchor), with sizes, listed from the layers' tar headers
   * (nothing is extracted or kept in memory), sorted by name, and the image digest they are pinned to. 404 `version X is
   * not available` when the version is not offered, or has no talosctl-all image; `[]` before Talos 1.11.
   */
  async talosctl(rawVersion: string): Promise<TalosctlRelease> {
    const v = await this.requireAvailable(rawVersion);
    const tag = `v${formatSemver(v)}`;
    if (!supportsTalosctl(v)) return { version: tag, digest: '', files: [] };
    return memoPromise(this.talosctlCache, tag, async () => {
      const repo = this.repo(this.settings.components.talosctl);
      let resolved;
      try {
        resolved = await this.resolveVerified(repo, tag);
      } catch (err) {
        if (err instanceof FactoryError && err.status === 404) throw new FactoryError(404, `version ${formatSemver(v)} is not available`);
        throw err;
      }
      let listed: Map<string, number>;
      try {
        listed = await listImageFiles(this.client, repo, resolved.manifest);
      } catch (err) {
        throw upstreamError(err, `listing ${repo}:${tag}`);
      }
      const files = [...listed]
        .filter(([name]) => !name.includes('/') && isTalosctlFileName(name))
        .map(([name, size]) => ({ name, size }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { version: tag, digest: resolved.digest, files };
    });
  }

  /**
   * Resolves repo:ref to a digest, verifies its signature, and returns the image manifest for the architecture
   * (linux/amd64 by default: the imager and the catalogs are read from their amd64 variant, like the anchor does).
   */
  async resolveVerified(repo: string, ref: string, architecture: 'amd64' | 'arm64' = 'amd64'): Promise<{ digest: string; manifest: FetchedManifest }> {
    // Content named by digest cannot change: remember it (bounded), so warm builds make no registry round trips.
    if (!ref.startsWith('sha256:')) return this.resolveUncached(repo, ref, architecture);
    const key = `${repo}@${ref}/${architecture}`;
    return memoPromise(this.pinned, key, () => this.resolveUncached(repo, ref, architecture));
  }

  private async resolveUncached(repo: string, ref: string, architecture: 'amd64' | 'arm64'): Promise<{ digest: string; manifest: FetchedManifest }> {
    let top;
    try {
      top = await this.client.getManifest(repo, ref);
    } catch (err) {
      throw upstreamError(err, `fetching ${repo}:${ref}`);
    }
    if (this.settings.verifySignatures && this.publicKey) {
      try {
        await verifyCosignSignature(this.client, repo, top.digest, this.publicKey);
      } catch (err) {
        this.logger.error({ err, repo, ref, digest: top.digest }, 'upstream signature verification failed');
        throw new FactoryError(502, `upstream image ${repo}:${ref} failed signature verification: ${(err as Error).message}`);
      }
    }
    try {
      const manifest = await this.client.resolveImage(repo, top.digest, { os: 'linux', architecture });
      return { digest: top.digest, manifest };
    } catch (err) {
      throw upstreamError(err, `resolving ${repo}:${ref}`);
    }
  }

  private async readVerified(repo: string, tag: string, wanted: (p: string) => boolean): Promise<Map<string, Buffer>> {
    const { manifest } = await this.resolveVerified(repo, tag);
    try {
      return await readImageFiles(this.client, repo, manifest, wanted, { maxFileBytes: CATALOG_FILE_LIMIT, maxTotalBytes: 4 * CATALOG_FILE_LIMIT });
    } catch (err) {
      throw upstreamError(err, `reading ${repo}:${tag}`);
    }
  }

  /** Readiness: the registry answers and the imager repository can be listed. */
  async ping(): Promise<void> {
    await this.versions();
  }
}

/** The talosctl binaries of one Talos version (UpstreamCatalog.talosctl). */
export interface TalosctlRelease {
  /** `vX.Y.Z` */
  version: string;
  /** digest of the `talosctl-all` image (index) they come from; '' when there are none */
  digest: string;
  /** sorted by name */
  files: Array<{ name: string; size: number }>;
}

export function parseVersionOrThrow(raw: string): SemVer {
  const v = parseRequestVersion(raw);
  // The anchor answers 500 for a malformed version; a malformed version is the client's mistake, so we say 400.
  if (!v) throw new FactoryError(400, `invalid version ${JSON.stringify(raw)}: expected a semantic version such as v1.11.0`);
  return v;
}

function upstreamError(err: unknown, what: string): FactoryError {
  if (err instanceof FactoryError) return err;
  if (err instanceof OciError) {
    if (err.code === 'NOT_FOUND') return new FactoryError(404, `upstream content not found while ${what}`);
    return new FactoryError(503, `upstream registry unavailable while ${what}: ${err.message}`);
  }
  return new FactoryError(503, `upstream registry unavailable while ${what}: ${String((err as Error)?.message ?? err)}`);
}
