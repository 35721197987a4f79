/**
 * docker-save style tarball of an installer image (`installer-<arch>[-secureboot].tar`), in the layout
 * go-containerregistry's `tarball.Write` produces and `docker load` / `skopeo ... docker-archive:` read:
 *
 *   sha256:<config hex>        the config JSON
 *   <layer hex>.tar.gz         each compressed layer blob (once per distinct digest), in manifest order
 *   manifest.json              [{"Config":"sha256:<hex>","RepoTags":[<tag>],"Layers":["<hex>.tar.gz",...]}]
 *
 * Members in that order, mode 0644, uid/gid 0, mtime 0 (./tar.ts), so the bytes depend only on the image and tag.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { goJsonMarshal } from '@factory/gocompat';
import type { FileDigest } from '../digest';
import { InstallerImageError } from './errors';
import { InstallerImage } from './image';
import { TarFileEntry, tarStream } from './tar';

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

function hexOf(digest: string, what: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new InstallerImageError('INVALID_INPUT', `${what}: invalid digest ${JSON.stringify(digest)}`);
  return m[1];
}

/** The `manifest.json` of the archive. */
export function dockerArchiveManifest(image: InstallerImage, repoTag: string): Buffer {
  return Buffer.from(goJsonMarshal([
    {
      Config: `sha256:${hexOf(image.config.digest, 'config')}`,
      RepoTags: [repoTag],
      Layers: image.layers.map((l, i) => `${hexOf(l.digest, `layer ${i}`)}.tar.gz`),
    },
  ]), 'utf8');
}

/**
 * Write the archive to `out` (a file path, created or truncated, or a writable stream, which is ended when done).
 * Returns the SHA-256, SHA-512 (hex) and size of the archive bytes.
 */
export async function writeDockerArchive(
  image: InstallerImage,
  repoTag: string,
  out: NodeJS.WritableStream | string,
): Promise<FileDigest> {
  if (typeof repoTag !== 'string' || repoTag === '' || /\s/.test(repoTag)) {
    throw new InstallerImageError('INVALID_INPUT', `invalid repo tag ${JSON.stringify(repoTag)}`);
  }
  const manifestJson = dockerArchiveManifest(image, repoTag);
  const entries: TarFileEntry[] = [{ name: `sha256:${hexOf(image.config.digest, 'config')}`, mode: 0o644, data: image.config.bytes, size: image.config.bytes.length }];
  const written = new Set<string>();
  for (const [i, l] of image.layers.entries()) {
    const name = `${hexOf(l.digest, `layer ${i}`)}.tar.gz`;
    if (written.has(name)) continue;
    written.add(name);
    let st: fs.Stats;
    try {
      st = await fsp.stat(l.file);
    } catch {
      throw new InstallerImageError('MISSING_FILE', `layer ${i} (${l.digest}): blob ${l.file} does not exist`);
    }
    if (!st.isFile() || st.size !== l.size) {
      throw new InstallerImageError('INVALID_INPUT', `layer ${i} (${l.digest}): ${l.file} has ${st.size} bytes, descriptor says ${l.size}`);
    }
    entries.push({ name, mode: 0o644, file: l.file, size: l.size });
  }
  entries.push({ name: 'manifest.json', mode: 0o644, data: manifestJson, size: manifestJson.length });

  const hash = createHash('sha256');
  let size = 0;
  const sink = typeof out === 'string' ? fs.createWriteStream(out) : out;
  await pipeline(
    tarStream(entries),
    async function* count(src: AsyncIterable<Buffer>) {
      for await (const b of src) {
        hash.update(b);
        size += b.length;
        yield b;
      }
    },
    sink,
  );
  return { sha256: hash.digest('hex'), size };
}
