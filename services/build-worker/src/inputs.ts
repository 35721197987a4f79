/**
 * Upstream inputs of a build, pulled by digest with signature verification and cached on local disk: the imager's
 * boot files per Talos version, and extension image trees per digest and architecture. A cache entry is extracted
 * into a temporary directory and renamed into place when complete, so concurrent builds (even in other processes
 * on the same machine) never see half an entry.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ExtensionRef, OverlayRef } from '@factory/asset';
import type { UpstreamCatalog } from '@factory/catalog';
import { extractLayers, LayerCache } from '@factory/imaging';
import type { FetchedManifest } from '@factory/oci';

/** Generous bounds for upstream images: a real imager layer is ~150 MiB, extensions up to a few GiB (nvidia). */
const LIMITS = { maxEntryBytes: 4 * 1024 ** 3, maxTotalBytes: 8 * 1024 ** 3, maxEntries: 200_000 };

export interface ImagerFiles {
  kernel: string;
  initramfs: string;
  stub: string;
  sdBoot: string;
}

/** An upstream image for one architecture as raw parts: its config and its compressed layer blobs on disk. */
export interface RawImage {
  /** `repo@digest` of the (multi-arch) image that was resolved, for naming */
  reference: string;
  config: Buffer;
  layers: Array<{ digest: string; size: number; mediaType: string; file: string }>;
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export class InputCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly catalog: UpstreamCatalog,
    private readonly dir: string,
  ) {}

  /**
   * Where initramfs layers built from these inputs are kept across builds (@factory/imaging LayerCache): entries
   * derive only from the content-addressed entries below, so they live next to them.
   */
  get layerCache(): LayerCache {
    return { dir: path.join(this.dir, 'layers') };
  }

  /** `usr/install/<arch>/{vmlinuz,initramfs.xz,systemd-stub.efi,systemd-boot.efi}` of `siderolabs/imager:<tag>`. */
  async imager(versionTag: string, arch: 'amd64' | 'arm64'): Promise<ImagerFiles> {
    const repo = this.catalog.repo('siderolabs/imager');
    const { digest, manifest } = await this.catalog.resolveVerified(repo, versionTag);
    const root = await this.extracted(`imager/${digest.replace('sha256:', '')}`, repo, manifest);
    const base = path.join(root, 'usr/install', arch);
    return {
      kernel: path.join(base, 'vmlinuz'),
      initramfs: path.join(base, 'initramfs.xz'),
      stub: path.join(base, 'systemd-stub.efi'),
      sdBoot: path.join(base, 'systemd-boot.efi'),
    };
  }

  /** The flattened filesystem (`manifest.yaml` + `rootfs/`) of an official extension, pinned by catalog digest. */
  async extension(ext: ExtensionRef, arch: 'amd64' | 'arm64'): Promise<string> {
    // A catalog extension's name is its repository path.
    const repo = this.catalog.repo(ext.name);
    const { manifest } = await this.catalog.resolveVerified(repo, ext.digest, arch);
    return this.extracted(`extensions/${ext.digest.replace('sha256:', '')}-${arch}`, repo, manifest);
  }

  /**
   * The flattened overlay image (profiles/, installers/, artifacts/), pinned by catalog digest. Its installer runs on
   * this host, so the host's (amd64) variant is pulled; artifacts for every board architecture are inside it.
   */
  async overlay(o: OverlayRef): Promise<string> {
    const repo = this.catalog.repo(o.image);
    const { manifest } = await this.catalog.resolveVerified(repo, o.digest, 'amd64');
    return this.extracted(`overlays/${o.digest.replace('sha256:', '')}`, repo, manifest);
  }

  /**
   * The root directory of `siderolabs/talosctl-all` pinned by digest (its amd64 variant, as the anchor exports it):
   * every binary of the version is extracted once, so the other files of the version need no second pull.
   */
  async talosctl(digest: string): Promise<string> {
    const repo = this.catalog.repo(this.catalog.components.talosctl);
    const { manifest } = await this.catalog.resolveVerified(repo, digest, 'amd64');
    return this.extracted(`talosctl/${digest.replace('sha256:', '')}`, repo, manifest);
  }

  /**
   * An upstream image (e.g. installer-base:<tag>) for one architecture, unextracted: config JSON and layer blobs,
   * each blob downloaded once into `blobs/sha256/<hex>` (digest-verified while streaming, renamed into place).
   */
  async rawImage(component: string, tag: string, arch: 'amd64' | 'arm64'): Promise<RawImage> {
    const repo = this.catalog.repo(component);
    const { digest, manifest } = await this.catalog.resolveVerified(repo, tag, arch);
    const m = manifest.json as { config?: { digest: string }; layers?: Array<{ digest: string; size: number; mediaType: string }> };
    if (!m.config?.digest || !Array.isArray(m.layers)) throw new Error(`${repo}:${tag} (${arch}) is not an image manifest`);
    const config = await this.catalog.client.getBlob(repo, m.config.digest, MAX_CONFIG_BYTES);
    const layers = [];
    for (const l of m.layers) layers.push({ digest: l.digest, size: l.size, mediaType: l.mediaType, file: await this.blob(repo, l.digest) });
    return { reference: `${repo}@${digest}`, config, layers };
  }

  private blob(repo: string, digest: string): Promise<string> {
    const final = path.join(this.dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
    if (existsSync(final)) return Promise.resolve(final);
    let p = this.inflight.get(final);
    if (!p) {
      p = (async () => {
        await mkdir(path.dirname(final), { recursive: true });
        const tmp = `${final}.tmp-${randomUUID()}`;
        try {
          await pipeline(await this.catalog.client.getBlobStream(repo, digest, { maxBytes: LIMITS.maxEntryBytes }), createWriteStream(tmp));
          await rename(tmp, final);
          return final;
        } catch (err) {
          await rm(tmp, { force: true });
          throw err;
        } finally {
          this.inflight.delete(final);
        }
      })();
      this.inflight.set(final, p);
    }
    return p;
  }

  private extracted(rel: string, repo: string, manifest: FetchedManifest): Promise<string> {
    const final = path.join(this.dir, rel);
    if (existsSync(final)) return Promise.resolve(final);
    let p = this.inflight.get(final);
    if (!p) {
      p = (async () => {
        const tmp = `${final}.tmp-${randomUUID()}`;
        await mkdir(tmp, { recursive: true });
        try {
          const layers = (manifest.json.layers as Array<{ digest: string; size: number }>).map(
            (l) => () => this.catalog.client.getBlobStream(repo, l.digest, { maxBytes: LIMITS.maxEntryBytes }),
          );
          await extractLayers(layers, tmp, LIMITS);
          try {
            await rename(tmp, final);
          } catch (err) {
            // Another process published the same entry first: theirs is identical (same digest).
            if (!existsSync(final)) throw err;
            await rm(tmp, { recursive: true, force: true });
          }
          return final;
        } catch (err) {
          await rm(tmp, { recursive: true, force: true });
          throw err;
        } finally {
          this.inflight.delete(final);
        }
      })();
      this.inflight.set(final, p);
    }
    return p;
  }
}
