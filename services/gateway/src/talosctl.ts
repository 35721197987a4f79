/**
 * `GET /talosctl/:version` and `GET|HEAD /talosctl/:version/:path` (anchor-api §1.6, §10.1): the binaries of the
 * version's `siderolabs/talosctl-all` image. The listing is the registry-proxy's (`upstream.talosctl`: the verified
 * image's root files, read from its layer tar headers), remembered here per version; a binary is an asset like any
 * other: extracted once by a build-worker (`build.talosctl`), stored and signed, verified before it is served, then
 * redirected to or streamed as `/image` assets are.
 */
import type { Request, Response } from 'express';
import { CatalogView, parseVersionParam, talosctlTarget } from '@factory/asset';
import type { TalosctlRelease } from '@factory/catalog';
import { FactoryError } from '@factory/errors';
import { goJsonEncode } from '@factory/gocompat';
import { BoundedMap, memoPromise } from '@factory/runtime';
import { formatSemver, tagOf } from '@factory/talos';
import type { JobCaller } from './app';
import type { AssetRoutes } from './assets';
import { sendBody } from './compat';

const MAX_VERSIONS_REMEMBERED = 1000;
/** The first listing of a version downloads its talosctl-all layers (a few hundred MB from ghcr.io). */
const LISTING_TIMEOUT_MS = 10 * 60_000;

export interface TalosctlRouteOptions {
  jobs: JobCaller;
  /** offered versions (re-read after a short TTL), so a version withdrawn upstream stops being listed here too */
  catalog: Pick<CatalogView, 'versions'>;
  /** serves the binaries: found, built or verified as every stored asset */
  assets: AssetRoutes;
  /** `FACTORY_EXTERNAL_URL`: the listing's URLs are absolute */
  externalUrl: string;
}

export class TalosctlRoutes {
  // A version's talosctl-all image is immutable: its listing is remembered (bounded); failures are asked again.
  private readonly releases = new BoundedMap<string, Promise<TalosctlRelease>>(MAX_VERSIONS_REMEMBERED);
  private readonly base: string;

  constructor(private readonly o: TalosctlRouteOptions) {
    this.base = o.externalUrl.replace(/\/+$/, '');
  }

  /** 400 for a malformed version (the anchor: 500), 404 `version X is not available` for one not offered. */
  private async release(rawVersion: string): Promise<TalosctlRelease> {
    const version = parseVersionParam(rawVersion);
    const tag = tagOf(version);
    if (!(await this.o.catalog.versions()).includes(tag)) throw new FactoryError(404, `version ${formatSemver(version)} is not available`);
    // Listing reads every layer of the image once (headers only, no content kept): ~100 MB per binary upstream.
    return memoPromise(this.releases, tag, () => this.o.jobs.call('upstream.talosctl', { version: tag }, { timeoutMs: LISTING_TIMEOUT_MS }));
  }

  /** The binaries' file names of an offered version, sorted (none before Talos 1.11). */
  async files(versionTag: string): Promise<string[]> {
    return (await this.release(versionTag)).files.map((f) => f.name).sort();
  }

  /** JSON array of absolute download URLs, sorted; `[]` before Talos 1.11. */
  async list(req: Request, res: Response): Promise<void> {
    const release = await this.release(req.params.version);
    const urls = release.files.map((f) => `${this.base}/talosctl/${release.version}/${f.name}`).sort();
    sendBody(res, 200, 'application/json', goJsonEncode(urls));
  }

  /** One binary: only names of the listing are served (no other path reaches storage or a build). */
  async download(req: Request, res: Response): Promise<void> {
    const release = await this.release(req.params.version);
    // The anchor answers 404 `version X is not available` when the version has no talosctl-all image.
    if (!release.files.length) throw new FactoryError(404, `version ${release.version.slice(1)} is not available`);
    const file = release.files.find((f) => f.name === req.params.path);
    // The anchor answers 500 for a name that is not in the image; it is the client's mistake: 404 naming it.
    if (!file) throw new FactoryError(404, `talosctl file ${JSON.stringify(req.params.path)} is not available for Talos version ${release.version}`);
    const target = talosctlTarget(this.o.jobs, { version: release.version, digest: release.digest, file: file.name });
    await this.o.assets.serveTarget(req, res, target, file.name);
  }
}
