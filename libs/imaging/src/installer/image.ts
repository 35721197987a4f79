/**
 * Installer image assembly (talos-formats §1.4, anchor-api §5.3): base installer layers + an artifacts layer
 * (+ an overlay layer), a Docker image config and a Docker schema2 manifest, all deterministic for a given input.
 *
 * Layer tars hold regular files only (no directory entries), sorted by path in byte order, uid/gid 0, mtime 0;
 * artifacts have mode 0 (as the upstream imager writes them), overlay files keep their source mode. Layers are
 * streamed to `workDir` as `<hex>.tar.gz`; see ./layer.ts for the gzip header bytes.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { goJsonMarshal } from '@factory/gocompat';
import { getOptionsRequest } from '../overlay/protocol';
import { InstallerImageError } from './errors';
import { INSTALLER_GZIP_LEVEL, writeGzipLayer } from './layer';
import { InstallerArch } from './paths';
import { TarFileEntry, tarStream } from './tar';

export const DOCKER_MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG_MEDIA_TYPE = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER_GZIP_MEDIA_TYPE = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** Image paths of the overlay layer (talos-formats §1.4 step 5). */
export const OVERLAY_ARTIFACTS_PREFIX = 'overlay/artifacts';
export const OVERLAY_INSTALLER_PATH = 'overlay/installers/default';
export const OVERLAY_EXTRA_OPTIONS_PATH = 'overlay/extra-options';

export interface InstallerBaseLayer {
  /** sha256:<hex> of the compressed blob */
  digest: string;
  size: number;
  /** the compressed (gzip) layer blob on disk, exactly as pulled */
  file: string;
}

export interface InstallerImageInput {
  arch: InstallerArch;
  base: {
    /** raw image config JSON of the base image for this arch */
    config: Buffer;
    layers: InstallerBaseLayer[];
  };
  /** files of the artifacts layer, e.g. `{ path: 'usr/install/amd64/vmlinuz.efi', file: '/tmp/x/uki.efi' }` */
  artifacts: Array<{ path: string; file: string }>;
  overlay?: {
    /** extracted overlay image root (holding `artifacts/` and `installers/`) */
    root: string;
    /** `installers/<installerName>` becomes `overlay/installers/default` */
    installerName: string;
    /** the schematic's `overlay.options`, written as YAML to `overlay/extra-options` */
    options: unknown;
  };
  /** RFC 3339 creation time for the config (fixed by the caller for determinism) */
  created: string;
  /** directory the new layer blobs are written to (created when missing) */
  workDir: string;
  /** gzip level of the new layers (default 1, go-containerregistry's default) */
  gzipLevel?: number;
}

export interface InstallerImageBlob {
  bytes: Buffer;
  digest: string;
  size: number;
}

export interface InstallerImageLayer {
  /** sha256:<hex> of the compressed blob */
  digest: string;
  size: number;
  /** sha256:<hex> of the uncompressed tar */
  diffId: string;
  /** the compressed blob on disk (base layers: the input file; new layers: `<workDir>/<hex>.tar.gz`) */
  file: string;
}

export interface InstallerImage {
  config: InstallerImageBlob;
  layers: InstallerImageLayer[];
  manifest: InstallerImageBlob & { mediaType: string };
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function invalid(msg: string): InstallerImageError {
  return new InstallerImageError('INVALID_INPUT', msg);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A relative, normalized, '/'-separated file path (no '.', '..' or empty segments, no trailing '/'). */
function checkImagePath(p: string, what: string): void {
  if (typeof p !== 'string' || p === '' || p.includes('\0') || p.startsWith('/') || p.endsWith('/')) {
    throw invalid(`${what}: invalid path ${JSON.stringify(p)} (must be relative, without a trailing '/')`);
  }
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw invalid(`${what}: invalid path ${JSON.stringify(p)}`);
  }
}

async function statRegular(file: string, what: string): Promise<fs.Stats> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InstallerImageError('MISSING_FILE', `${what}: cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : String(err)}`);
  }
  if (!st.isFile()) throw new InstallerImageError('MISSING_FILE', `${what}: ${file} is not a regular file`);
  return st;
}

interface ParsedBase {
  config: Record<string, unknown>;
  diffIds: string[];
  history?: unknown[];
}

function parseBaseConfig(raw: Buffer, arch: InstallerArch, layerCount: number): ParsedBase {
  let cfg: unknown;
  try {
    cfg = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw invalid(`base image config is not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(cfg)) throw invalid('base image config is not a JSON object');
  if (cfg.architecture !== undefined && cfg.architecture !== arch) {
    throw invalid(`base image config is for architecture ${JSON.stringify(cfg.architecture)}, wanted ${arch}`);
  }
  if (cfg.os !== undefined && cfg.os !== 'linux') throw invalid(`base image config is for os ${JSON.stringify(cfg.os)}, wanted linux`);
  const rootfs = cfg.rootfs;
  const diffIds = isRecord(rootfs) ? rootfs.diff_ids : undefined;
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && DIGEST_RE.test(d))) {
    throw invalid('base image config has no valid rootfs.diff_ids');
  }
  if (diffIds.length !== layerCount) {
    throw invalid(`base image config lists ${diffIds.length} diff_ids but ${layerCount} layers were given`);
  }
  const inner = cfg.config === undefined || cfg.config === null ? {} : cfg.config;
  if (!isRecord(inner)) throw invalid('base image config: "config" is not an object');
  return { config: inner, diffIds: diffIds as string[], history: Array.isArray(cfg.history) ? cfg.history : undefined };
}

/**
 * History of the new image: the base history without the entry of a dropped layer, plus one entry per new layer.
 * Omitted when the base has none, or when its non-empty entries do not match its layers (inconsistent history is
 * worse than none for tools that pair them up).
 */
function newHistory(base: ParsedBase, baseLayers: number, kept: number, added: string[], created: string): unknown[] | undefined {
  if (!base.history) return undefined;
  const isEmpty = (h: unknown) => isRecord(h) && h.empty_layer === true;
  if (base.history.filter((h) => !isEmpty(h)).length !== baseLayers) return undefined;
  const out: unknown[] = [];
  let layer = 0;
  for (const h of base.history) {
    if (isEmpty(h)) {
      out.push(h);
      continue;
    }
    if (layer < kept) out.push(h);
    layer++;
  }
  for (const what of added) out.push({ created, created_by: what });
  return out;
}

async function checkGzipBlob(file: string, what: string): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    if (bytesRead !== 2 || b[0] !== 0x1f || b[1] !== 0x8b) {
      throw invalid(`${what}: ${file} is not a gzip-compressed layer (Docker schema2 installers need tar+gzip layers)`);
    }
  } finally {
    await fh.close();
  }
}

async function artifactEntries(artifacts: InstallerImageInput['artifacts']): Promise<TarFileEntry[]> {
  if (!Array.isArray(artifacts) || artifacts.length === 0) throw invalid('installer image needs at least one artifact');
  const seen = new Set<string>();
  const out: TarFileEntry[] = [];
  for (const a of artifacts) {
    checkImagePath(a.path, 'installer artifact');
    if (seen.has(a.path)) throw invalid(`installer artifact ${a.path} given twice`);
    seen.add(a.path);
    const st = await statRegular(a.file, `installer artifact ${a.path}`);
    out.push({ name: a.path, mode: 0, file: a.file, size: st.size });
  }
  return out.sort((x, y) => byteOrder(x.name, y.name));
}

/** Real path of `abs`, which must exist and lie inside `rootReal`. */
async function realInside(abs: string, rootReal: string, rel: string): Promise<string> {
  let real: string;
  try {
    real = await fsp.realpath(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new InstallerImageError('UNSAFE_OVERLAY', `overlay: ${rel} is a dangling symlink`);
    }
    throw err;
  }
  if (real !== rootReal && !real.startsWith(rootReal + path.sep)) {
    throw new InstallerImageError('UNSAFE_OVERLAY', `overlay: ${rel} resolves outside the overlay root (${real})`);
  }
  return real;
}

/**
 * Regular files below `dirAbs` as layer entries named `<prefix>/<rel>`. Symlinks to regular files inside the overlay
 * root are stored as the file they point to; symlinks leaving the root, dangling or pointing to directories, and
 * special files are rejected.
 */
async function walkOverlayDir(dirAbs: string, relDir: string, prefix: string, rootReal: string, out: TarFileEntry[]): Promise<void> {
  const names = (await fsp.readdir(dirAbs)).sort(byteOrder);
  for (const name of names) {
    const abs = path.join(dirAbs, name);
    const rel = `${relDir}/${name}`;
    const lst = await fsp.lstat(abs);
    if (lst.isDirectory()) {
      await walkOverlayDir(abs, rel, `${prefix}/${name}`, rootReal, out);
      continue;
    }
    let file = abs;
    let st = lst;
    if (lst.isSymbolicLink()) {
      file = await realInside(abs, rootReal, rel);
      st = await fsp.stat(file);
      if (st.isDirectory()) throw new InstallerImageError('UNSAFE_OVERLAY', `overlay: ${rel} is a symlink to a directory (not supported)`);
    }
    if (!st.isFile()) throw new InstallerImageError('UNSAFE_OVERLAY', `overlay: ${rel} is not a regular file`);
    out.push({ name: `${prefix}/${name}`, mode: st.mode & 0o7777, file, size: st.size });
  }
}

async function overlayEntries(ov: NonNullable<InstallerImageInput['overlay']>): Promise<TarFileEntry[]> {
  let rootReal: string;
  try {
    rootReal = await fsp.realpath(ov.root);
  } catch {
    throw new InstallerImageError('MISSING_FILE', `overlay root ${ov.root} does not exist`);
  }
  if (!(await fsp.stat(rootReal)).isDirectory()) throw new InstallerImageError('MISSING_FILE', `overlay root ${ov.root} is not a directory`);
  const name = ov.installerName;
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw invalid(`invalid overlay installer name ${JSON.stringify(name)}`);
  }
  const out: TarFileEntry[] = [];

  // artifacts/ (an overlay without artifacts just contributes none)
  const artAbs = path.join(rootReal, 'artifacts');
  const artLst = await fsp.lstat(artAbs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (artLst) {
    const artReal = artLst.isSymbolicLink() ? await realInside(artAbs, rootReal, 'artifacts') : artAbs;
    if (!(await fsp.stat(artReal)).isDirectory()) throw new InstallerImageError('UNSAFE_OVERLAY', 'overlay: artifacts is not a directory');
    await walkOverlayDir(artReal, 'artifacts', OVERLAY_ARTIFACTS_PREFIX, rootReal, out);
  }

  // installers/<name> -> overlay/installers/default
  const instRel = `installers/${name}`;
  const instAbs = path.join(rootReal, 'installers', name);
  try {
    await fsp.lstat(instAbs);
  } catch {
    throw new InstallerImageError('MISSING_FILE', `overlay installer ${instRel} not found in ${ov.root}`);
  }
  const instReal = await realInside(instAbs, rootReal, instRel);
  const instSt = await fsp.stat(instReal);
  if (!instSt.isFile()) throw new InstallerImageError('UNSAFE_OVERLAY', `overlay: ${instRel} is not a regular file`);
  out.push({ name: OVERLAY_INSTALLER_PATH, mode: instSt.mode & 0o7777, file: instReal, size: instSt.size });

  // extra-options: YAML of the options map, as the imager's yaml.Marshal writes it
  let yaml: Buffer;
  try {
    yaml = Buffer.from(getOptionsRequest(ov.options), 'utf8');
  } catch (err) {
    throw invalid(`overlay options: ${(err as Error).message}`);
  }
  out.push({ name: OVERLAY_EXTRA_OPTIONS_PATH, mode: 0o644, data: yaml, size: yaml.length });

  return out.sort((x, y) => byteOrder(x.name, y.name));
}

/** Build the installer image for one architecture. New layers are written to `input.workDir`. */
export async function buildInstallerImage(input: InstallerImageInput): Promise<InstallerImage> {
  if (input.arch !== 'amd64' && input.arch !== 'arm64') throw invalid(`unsupported arch ${JSON.stringify(input.arch)}`);
  if (typeof input.created !== 'string' || !RFC3339_RE.test(input.created)) {
    throw invalid(`created must be an RFC 3339 timestamp, got ${JSON.stringify(input.created)}`);
  }
  const baseLayers = input.base.layers;
  if (!Array.isArray(baseLayers) || baseLayers.length === 0) throw invalid('base image has no layers');
  const base = parseBaseConfig(input.base.config, input.arch, baseLayers.length);

  // legacy installer (exactly two layers): drop its artifacts layer
  const kept = baseLayers.length === 2 ? 1 : baseLayers.length;
  const layers: InstallerImageLayer[] = [];
  for (let i = 0; i < kept; i++) {
    const l = baseLayers[i];
    const what = `base layer ${i}`;
    if (typeof l.digest !== 'string' || !DIGEST_RE.test(l.digest)) throw invalid(`${what}: invalid digest ${JSON.stringify(l.digest)}`);
    if (!Number.isSafeInteger(l.size) || l.size < 0) throw invalid(`${what}: invalid size ${String(l.size)}`);
    const st = await statRegular(l.file, what);
    if (st.size !== l.size) throw invalid(`${what}: ${l.file} has ${st.size} bytes, descriptor says ${l.size}`);
    await checkGzipBlob(l.file, what);
    layers.push({ digest: l.digest, size: l.size, diffId: base.diffIds[i], file: l.file });
  }

  // collect (and validate) everything before writing anything
  const artifacts = await artifactEntries(input.artifacts);
  const overlay = input.overlay ? await overlayEntries(input.overlay) : undefined;

  const level = input.gzipLevel ?? INSTALLER_GZIP_LEVEL;
  const added = ['image-factory: installer artifacts'];
  layers.push(await writeGzipLayer(tarStream(artifacts), input.workDir, level));
  if (overlay) {
    added.push('image-factory: overlay');
    layers.push(await writeGzipLayer(tarStream(overlay), input.workDir, level));
  }

  // field order of go-containerregistry's ConfigFile (architecture, created, history, os, rootfs, config)
  const config: Record<string, unknown> = { architecture: input.arch, created: input.created };
  const history = newHistory(base, baseLayers.length, kept, added, input.created);
  if (history) config.history = history;
  config.os = 'linux';
  config.rootfs = { type: 'layers', diff_ids: layers.map((l) => l.diffId) };
  config.config = base.config;
  const configBytes = Buffer.from(goJsonMarshal(config), 'utf8');
  const configBlob = { bytes: configBytes, digest: sha256(configBytes), size: configBytes.length };

  const manifestBytes = Buffer.from(goJsonMarshal({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_MEDIA_TYPE,
    config: { mediaType: DOCKER_CONFIG_MEDIA_TYPE, size: configBlob.size, digest: configBlob.digest },
    layers: layers.map((l) => ({ mediaType: DOCKER_LAYER_GZIP_MEDIA_TYPE, size: l.size, digest: l.digest })),
  }), 'utf8');
  return {
    config: configBlob,
    layers,
    manifest: { bytes: manifestBytes, digest: sha256(manifestBytes), size: manifestBytes.length, mediaType: DOCKER_MANIFEST_MEDIA_TYPE },
  };
}
