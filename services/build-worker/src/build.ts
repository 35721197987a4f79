/**
 * How one asset is made from a schematic, a Talos version and the upstream inputs — the factory's equivalent of the
 * anchor's "enhance profile, then run the imager" step. Validation errors carry the anchor's texts and statuses.
 */
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CatalogExtension, CatalogOverlay, EXTENSION_ALIASES, UpstreamCatalog } from '@factory/catalog';
import {
  assembleInitramfs,
  buildDiskImage,
  buildInstallerImage,
  buildIso,
  buildUki,
  compressOutput,
  convertDisk,
  overlayGetOptions,
  overlayInstall,
  planDisk,
  readOverlayProfile,
  ExtensionCompatibilityError,
  ExtensionDir,
  FileDigest,
  installerArtifactPaths,
  writeDockerArchive,
  writeEmbeddedConfigExtension,
  writeSchematicExtension,
} from '@factory/imaging';
import { FactoryError, isFactoryError } from '@factory/errors';
import { AssetSpec, OciDescriptor } from '@factory/queue';
import type { OciContentStore } from '@factory/registry';
import { extensionsOf, Schematic } from '@factory/schematic';
import {
  atLeast,
  buildFactoryCmdline,
  diskBootloader,
  isoFlavour,
  isoVolumeId,
  isoVolumeSetId,
  osRelease,
  parseRequestVersion,
  resetCmdline,
  SemVer,
} from '@factory/talos';
import type { ImagerFiles, InputCache } from './inputs';

export interface BuildContext {
  catalog: UpstreamCatalog;
  inputs: InputCache;
  /** the factory's own OCI content (installer image blobs go there as they are built) */
  oci: OciContentStore;
  externalUrl: string;
  progress(stage: string, percent: number): void;
}

/** Everything one build has resolved before the output-specific steps run. */
interface BuildJob {
  ctx: BuildContext;
  spec: AssetSpec;
  schematic: Schematic;
  canonicalYaml: string;
  version: SemVer;
  extensions: CatalogExtension[];
  overlay: ResolvedOverlay | undefined;
  imager: ImagerFiles;
  workDir: string;
}

const ENHANCE = 'error enhancing profile from schematic';

const enhanceError = (status: number, msg: string) => new FactoryError(status, `${ENHANCE}: ${msg}`);

/** A built asset: its file under the work directory, and its digest when the builder computed it on the way. */
export interface BuiltFile {
  file: string;
  digest?: FileDigest;
  /** installer tarballs: the same image as a manifest whose blobs are already in the OCI store */
  image?: OciDescriptor;
}

/** Builds the asset into a file under workDir. */
export async function buildAsset(ctx: BuildContext, spec: AssetSpec, schematic: Schematic, canonicalYaml: string, workDir: string): Promise<BuiltFile> {
  const version = parseRequestVersion(spec.version);
  if (!version) throw new FactoryError(400, `invalid version ${JSON.stringify(spec.version)}`);
  const tag = spec.version;
  const c = schematic.customization;

  // --- enhancement checks, in the anchor's order --------------------------------------------------------------
  if (spec.secureboot) throw enhanceError(400, 'secure boot is disabled');
  const takesExtensions = spec.kind !== 'kernel' && spec.kind !== 'cmdline';
  if (schematic.overlay && (schematic.overlay.name || schematic.overlay.image) && takesExtensions && !atLeast(version, 1, 7, 0)) {
    throw enhanceError(400, `overlay is not supported for Talos version ${tag}`);
  }
  if (c.embeddedMachineConfiguration && takesExtensions && !atLeast(version, 1, 12, 0)) {
    throw enhanceError(400, `embedding configuration is not supported for Talos version ${tag}`);
  }
  const extensions = takesExtensions ? await resolveExtensions(ctx.catalog, schematic, tag) : [];
  let overlay: ResolvedOverlay | undefined;
  if (schematic.overlay?.name && takesExtensions) {
    const overlays = await ctx.catalog.overlays(tag);
    // Only overlay.name selects the overlay; overlay.image is never pulled (it is user input).
    const entry = overlays.find((o) => o.name === schematic.overlay!.name);
    if (!entry) throw enhanceError(400, `overlay "${schematic.overlay.name}" is not available for Talos version ${tag}`);
    overlay = await resolveOverlay(ctx, entry, schematic.overlay.options ?? {});
  }

  // --- inputs ------------------------------------------------------------------------------------------------------
  try {
    await ctx.catalog.requireAvailable(tag);
  } catch (err) {
    if (isFactoryError(err) && err.status === 404) throw new FactoryError(404, `failed to get kernel: ${err.message}`);
    throw err;
  }
  ctx.progress('fetching imager', 5);
  const imager = await ctx.inputs.imager(tag, spec.arch);
  const job: BuildJob = { ctx, spec, schematic, canonicalYaml, version, extensions, overlay, imager, workDir };
  const out = path.join(workDir, 'out');

  switch (spec.kind) {
    case 'kernel':
      await copyFile(imager.kernel, out);
      return { file: out };
    case 'cmdline':
      await writeFile(out, cmdlineFor(spec, schematic, version, 'cmdline'));
      return { file: out };
    case 'initramfs':
      await initramfsWithExtensions(job, out);
      return { file: out };
    case 'uki': {
      const initrd = path.join(workDir, 'initramfs.xz');
      await initramfsWithExtensions(job, initrd);
      ctx.progress('assembling UKI', 80);
      const cmdline = cmdlineFor(spec, schematic, version, 'uki', overlay);
      await ukiFor(imager, initrd, cmdline, tag, version, undefined, out);
      return { file: out };
    }
    case 'iso': {
      const initrd = path.join(workDir, 'initramfs.xz');
      await initramfsWithExtensions(job, initrd);
      const cmdline = cmdlineFor(spec, schematic, version, 'iso', overlay);
      const flavour = isoFlavour({ version, arch: spec.arch, secureboot: spec.secureboot, bootloader: c.bootloader ?? overlay?.bootloader });
      let uki: string | undefined;
      if (flavour !== 'grub') {
        ctx.progress('assembling UKI', 70);
        uki = path.join(workDir, 'talos.efi');
        await ukiFor(imager, initrd, cmdline, tag, version, 'iso', uki);
      }
      ctx.progress('writing ISO', 85);
      const isoWork = path.join(workDir, 'iso');
      await mkdir(isoWork, { recursive: true });
      const iso = await buildIso({
        flavour,
        arch: spec.arch,
        version: tag,
        kernel: imager.kernel,
        initramfs: initrd,
        cmdline,
        resetEntry: atLeast(version, 1, 4, 0),
        uki,
        sdBoot: flavour !== 'grub' ? imager.sdBoot : undefined,
        enrollKeys: 'off',
        volumeId: isoVolumeId(tag),
        volumeSetId: isoVolumeSetId(tag),
        out,
        workDir: isoWork,
      });
      return { file: out, digest: { sha256: iso.sha256, size: iso.size } };
    }
    case 'installer':
      return buildInstaller(job);
    case 'image':
      return { file: await buildImage(job) };
    default:
      throw new FactoryError(400, `unsupported asset kind ${spec.kind}`);
  }
}

function cmdlineFor(spec: AssetSpec, schematic: Schematic, version: SemVer, kind: 'cmdline' | 'uki' | 'iso' | 'image' | 'installer', overlay?: ResolvedOverlay): string {
  // Which outputs take extra args and META is the per-output rule table of @factory/talos; overlay arguments
  // (the installer's get-options) replace same-named platform arguments.
  const extra = [...(overlay?.extraKernelArgs ?? []), ...(schematic.customization.extraKernelArgs ?? [])];
  return buildFactoryCmdline({
    platform: spec.platform,
    arch: spec.arch,
    version,
    kind,
    secureboot: spec.secureboot,
    overlayArgs: overlay?.kernelArgs,
    meta: schematic.customization.meta,
    extraArgs: extra.length ? extra : undefined,
  });
}

/**
 * The UKI of the imager's stub and kernel with the rebuilt initramfs. From Talos 1.10 it carries profiles: `main`,
 * plus a reset profile with the wipe argument for ISOs (`reset`) and disk images (`reset-maintenance`).
 */
async function ukiFor(imager: ImagerFiles, initrd: string, cmdline: string, tag: string, version: SemVer, reset: 'iso' | 'image' | 'installer' | undefined, out: string): Promise<void> {
  const resetProfile =
    reset === 'iso'
      ? { profile: 'ID=reset\nTITLE=Reset system disk', cmdline: resetCmdline(cmdline, 'iso') }
      : reset === 'image' || reset === 'installer'
        ? { profile: 'ID=reset-maintenance\nTITLE=Reset to maintenance mode', cmdline: resetCmdline(cmdline, reset) }
        : undefined;
  await buildUki({
    stub: imager.stub,
    kernel: imager.kernel,
    initrd,
    cmdline,
    osRelease: osRelease(tag),
    profiles: atLeast(version, 1, 10, 0) ? [{ profile: 'ID=main' }, ...(resetProfile ? [resetProfile] : [])] : undefined,
    out,
  });
}

interface ResolvedOverlay {
  name: string;
  root: string;
  installer: string;
  options: unknown;
  kernelArgs: string[];
  offsetLba?: number;
  bootloader?: 'grub' | 'sd-boot' | 'dual-boot';
  extraKernelArgs?: string[];
}

/** Pulls the overlay by catalog digest, reads its profile fragment and asks its installer for options. */
async function resolveOverlay(ctx: BuildContext, entry: CatalogOverlay, options: unknown): Promise<ResolvedOverlay> {
  ctx.progress(`fetching overlay ${entry.name}`, 8);
  const root = await ctx.inputs.overlay(entry);
  const installer = path.join(root, 'installers', entry.name);
  const profile = await readOverlayProfile(path.join(root, 'profiles', `${entry.name}.yaml`)).catch(() => ({}) as Awaited<ReturnType<typeof readOverlayProfile>>);
  let got;
  try {
    got = await overlayGetOptions(installer, options);
  } catch (err) {
    throw new FactoryError(502, `overlay ${entry.name}: get-options failed: ${(err as Error).message}`);
  }
  return {
    name: entry.name,
    root,
    installer,
    options,
    kernelArgs: got.kernelArgs ?? [],
    offsetLba: got.partitionOptions?.offset,
    bootloader: profile.bootloader,
    extraKernelArgs: profile.extraKernelArgs,
  };
}

const MiB = 1024 * 1024;

/** Disk image: partitions and filesystems, META, overlay, then disk format and output compression. */
async function buildImage(job: BuildJob): Promise<string> {
  const { ctx, spec, schematic, imager, workDir, version, overlay } = job;
  const c = schematic.customization;
  const sectorSize = c.diskImage?.sectorSize ?? 512;
  if (sectorSize !== 512 && sectorSize !== 4096) throw enhanceError(400, `unsupported disk sector size ${sectorSize}: use 512 or 4096`);
  const initrd = path.join(workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  const bootloader = diskBootloader({ version, arch: spec.arch, secureboot: spec.secureboot, bootloader: c.bootloader ?? overlay?.bootloader });
  const cmdline = cmdlineFor(spec, schematic, version, 'image', overlay);
  let uki: string | undefined;
  if (bootloader !== 'grub') {
    ctx.progress('assembling UKI', 60);
    uki = path.join(workDir, 'talos.efi');
    await ukiFor(imager, initrd, cmdline, spec.version, version, 'image', uki);
  }
  const plan = planDisk({
    version: spec.version,
    arch: spec.arch,
    bootloader,
    baseSizeMiB: spec.disk?.sizeMiB ?? 8192,
    sectorSize,
    firstPartitionOffsetLBA: overlay?.offsetLba,
  });
  const meta = new Map<number, string>((c.meta ?? []).map((m) => [m.key, m.value]));
  const raw = path.join(workDir, 'disk.raw');
  // The overlay installer writes SoC boot blobs to its install disk before the first partition: give it a scratch
  // disk and carry that gap over into the image afterwards.
  const overlayDisk = path.join(workDir, 'overlay-disk.raw');
  ctx.progress('writing disk image', 70);
  await mkdir(path.join(workDir, 'disk'), { recursive: true });
  await buildDiskImage({
    plan,
    contents: {
      kernel: imager.kernel,
      initramfs: initrd,
      cmdline,
      version: spec.version,
      arch: spec.arch,
      uki,
      sdBoot: uki ? imager.sdBoot : undefined,
      meta,
      overlayInstall: overlay
        ? async (mountPrefix) => {
            const fh = await open(overlayDisk, 'w');
            await fh.truncate(Number(plan.sizeBytes));
            await fh.close();
            try {
              await overlayInstall(overlay.installer, {
                installDisk: overlayDisk,
                mountPrefix,
                artifactsPath: path.join(overlay.root, 'artifacts'),
                extraOptions: overlay.options,
              });
            } catch (err) {
              throw new FactoryError(502, `overlay ${overlay.name}: install failed: ${(err as Error).message}`);
            }
          }
        : undefined,
    },
    out: raw,
    workDir: path.join(workDir, 'disk'),
  });
  if (overlay?.offsetLba) await copyBootBlobGap(overlayDisk, raw, plan.sectorSize, overlay.offsetLba);
  const format = (spec.disk?.format ?? 'raw') as 'raw' | 'qcow2' | 'vhd' | 'ova';
  let converted = raw;
  if (format !== 'raw') {
    ctx.progress(`converting to ${format}`, 85);
    converted = path.join(workDir, `disk.${format}`);
    await convertDisk({ raw, format, formatOptions: spec.disk?.formatOptions ?? '', diskSizeMiB: Number(plan.sizeBytes) / MiB, out: converted, workDir });
  }
  if (spec.outFormat === 'raw') return converted;
  ctx.progress(`compressing ${spec.outFormat}`, 90);
  const out = path.join(workDir, 'out');
  await compressOutput({ file: converted, outFormat: spec.outFormat as '.xz' | '.gz' | '.zst' | '.tar.gz', innerName: 'disk.raw', out });
  return out;
}

/**
 * Installer image (talos-formats §1.4): the installer-base image (>= 1.10; the legacy installer image before, without
 * its artifacts layer) plus an artifacts layer (UKI + systemd-boot, or kernel + initramfs) and the overlay layer.
 * Its blobs and manifest go into the OCI store first; the asset itself is the docker-save tarball of the same image.
 */
async function buildInstaller(job: BuildJob): Promise<BuiltFile> {
  const { ctx, spec, schematic, imager, workDir, version, overlay } = job;
  const unified = atLeast(version, 1, 10, 0);
  const component = unified ? ctx.catalog.components.installerBase : ctx.catalog.components.installer;
  ctx.progress(`fetching ${component}`, 20);
  let base;
  try {
    base = await ctx.inputs.rawImage(component, spec.version, spec.arch);
  } catch (err) {
    if (isFactoryError(err) && err.status === 404) throw new FactoryError(404, `failed to get installer base image: ${err.message}`);
    throw err;
  }
  const initrd = path.join(workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  const artifacts: Array<{ path: string; file: string }> = [];
  let uki: string | undefined;
  for (const a of installerArtifactPaths(version, spec.arch, spec.secureboot)) {
    switch (a.role) {
      case 'kernel':
        artifacts.push({ path: a.path, file: imager.kernel });
        break;
      case 'initramfs':
        artifacts.push({ path: a.path, file: initrd });
        break;
      case 'systemd-boot':
        artifacts.push({ path: a.path, file: imager.sdBoot });
        break;
      case 'uki':
        ctx.progress('assembling UKI', 60);
        uki = path.join(workDir, 'talos.efi');
        await ukiFor(imager, initrd, cmdlineFor(spec, schematic, version, 'installer', overlay), spec.version, version, 'installer', uki);
        artifacts.push({ path: a.path, file: uki });
        break;
    }
  }
  ctx.progress('assembling installer image', 70);
  // The base image's creation time: a fixed, meaningful timestamp, so rebuilding gives the same image digest.
  let created: string;
  try {
    created = String((JSON.parse(base.config.toString('utf8')) as { created?: unknown }).created ?? '');
  } catch {
    throw new FactoryError(502, `${base.reference}: image config is not JSON`);
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(created)) created = '1970-01-01T00:00:00Z';
  const image = await buildInstallerImage({
    arch: spec.arch,
    base: { config: base.config, layers: base.layers.map(({ digest, size, file }) => ({ digest, size, file })) },
    artifacts,
    overlay: overlay ? { root: overlay.root, installerName: overlay.name, options: overlay.options } : undefined,
    created,
    workDir: path.join(workDir, 'layers'),
  });
  ctx.progress('storing image blobs', 85);
  // Blobs first, the manifest last: a manifest in the store always has all its blobs.
  await ctx.oci.putBlob(image.config.digest, image.config.bytes, image.config.size);
  for (const l of image.layers) await ctx.oci.putBlob(l.digest, createReadStream(l.file, { highWaterMark: 1024 * 1024 }), l.size);
  const manifest = await ctx.oci.putManifest(image.manifest.bytes, image.manifest.mediaType);
  ctx.progress('writing installer tarball', 92);
  const out = path.join(workDir, 'out');
  const repoTag = `${ctx.catalog.registry}/${component}:${spec.version}`;
  const digest = await writeDockerArchive(image, repoTag, out);
  return { file: out, digest, image: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size } };
}

/** Copies what the overlay installer wrote between the GPT header (LBA 2) and the partition entries (LBA 2+offset). */
async function copyBootBlobGap(from: string, to: string, sectorSize: number, offsetLba: number): Promise<void> {
  const start = 2 * sectorSize;
  const length = Math.min(offsetLba * sectorSize, 64 * MiB);
  const src = await open(from, 'r');
  const dst = await open(to, 'r+');
  try {
    const buf = Buffer.alloc(Math.min(length, MiB));
    for (let done = 0; done < length; done += buf.length) {
      const n = Math.min(buf.length, length - done);
      const { bytesRead } = await src.read(buf, 0, n, start + done);
      const chunk = buf.subarray(0, bytesRead);
      if (chunk.some((b) => b !== 0)) await dst.write(chunk, 0, bytesRead, start + done);
    }
  } finally {
    await src.close();
    await dst.close();
  }
}

/** Official extensions by name (aliases for renamed ones), in schematic order; 400 for unknown ones. */
async function resolveExtensions(catalog: UpstreamCatalog, schematic: Schematic, tag: string): Promise<CatalogExtension[]> {
  const names = extensionsOf(schematic);
  if (!names.length) return [];
  let entries: CatalogExtension[];
  try {
    entries = await catalog.extensions(tag);
  } catch (err) {
    if (isFactoryError(err) && err.status === 404) throw enhanceError(404, `error getting official extensions: ${err.message}`);
    throw err;
  }
  return names.map((name) => {
    const found = entries.find((e) => e.name === name) ?? entries.find((e) => e.name === EXTENSION_ALIASES[name]);
    if (!found) throw enhanceError(400, `official extension "${name}" is not available for Talos version ${tag}`);
    return found;
  });
}

async function initramfsWithExtensions(job: BuildJob, out: string): Promise<void> {
  const { ctx, spec, schematic, canonicalYaml, extensions, imager, workDir, version } = job;
  ctx.progress(extensions.length ? `fetching ${extensions.length} extension(s)` : 'preparing extensions', 10);
  // Fetched concurrently (cache hits cost a stat; misses are independent pulls), kept in schematic order.
  const dirs: ExtensionDir[] = (await Promise.all(extensions.map((ext) => ctx.inputs.extension(ext, spec.arch)))).map((dir) => ({ dir }));
  const schematicDir = path.join(workDir, 'ext-schematic');
  await writeSchematicExtension(schematicDir, { id: spec.schematicId, canonicalYaml, externalUrl: ctx.externalUrl, version: spec.version });
  dirs.push({ dir: schematicDir });
  const config = schematic.customization.embeddedMachineConfiguration;
  if (config && atLeast(version, 1, 12, 0)) {
    const dir = path.join(workDir, 'ext-embedded-config');
    const { selinux } = await writeEmbeddedConfigExtension(dir, config);
    dirs.push({ dir, selinux });
  }
  ctx.progress('assembling initramfs', 50);
  const assembleWork = path.join(workDir, 'assemble');
  await mkdir(assembleWork, { recursive: true });
  try {
    await assembleInitramfs({ base: imager.initramfs, version: spec.version, extensions: dirs, workDir: assembleWork, out });
  } catch (err) {
    if (err instanceof ExtensionCompatibilityError) {
      throw enhanceError(400, `extension "${err.extension}" is not compatible with Talos version ${err.version}: ${err.message}`);
    }
    throw err;
  }
}
