/**
 * How one asset is made from a schematic, a Talos version and the upstream inputs — the factory's equivalent of the
 * anchor's "enhance profile, then run the imager" step. Validation errors carry the anchor's texts and statuses.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CatalogExtension, EXTENSION_ALIASES, UpstreamCatalog } from '@factory/catalog';
import {
  assembleInitramfs,
  buildIso,
  buildUki,
  ExtensionCompatibilityError,
  ExtensionDir,
  writeEmbeddedConfigExtension,
  writeSchematicExtension,
} from '@factory/imaging';
import { AssetSpec, FactoryError, isFactoryError } from '@factory/queue';
import { extensionsOf, Schematic } from '@factory/schematic';
import {
  atLeast,
  buildFactoryCmdline,
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
  externalUrl: string;
  progress(stage: string, percent: number): void;
}

const ENHANCE = 'error enhancing profile from schematic';

const enhanceError = (status: number, msg: string) => new FactoryError(status, `${ENHANCE}: ${msg}`);

/** Builds the asset into a file under workDir and returns its path. */
export async function buildAsset(ctx: BuildContext, spec: AssetSpec, schematic: Schematic, canonicalYaml: string, workDir: string): Promise<string> {
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
  if (schematic.overlay?.name && takesExtensions) {
    const overlays = await ctx.catalog.overlays(tag);
    if (!overlays.some((o) => o.name === schematic.overlay!.name)) {
      throw enhanceError(400, `overlay "${schematic.overlay.name}" is not available for Talos version ${tag}`);
    }
    // Running the overlay installer (get-options/install) is part of disk-image support.
    throw new FactoryError(501, `assets for schematics with an overlay are not supported yet`);
  }
  if (spec.kind === 'installer' || spec.kind === 'image') {
    throw new FactoryError(501, `${spec.kind === 'image' ? 'disk images' : 'installer images'} are not supported yet`);
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
  const out = path.join(workDir, 'out');

  switch (spec.kind) {
    case 'kernel':
      await copyFile(imager.kernel, out);
      return out;
    case 'cmdline':
      await writeFile(out, cmdlineFor(spec, schematic, version, 'cmdline'));
      return out;
    case 'initramfs':
      await initramfsWithExtensions(ctx, spec, schematic, canonicalYaml, extensions, imager, workDir, out);
      return out;
    case 'uki': {
      const initrd = path.join(workDir, 'initramfs.xz');
      await initramfsWithExtensions(ctx, spec, schematic, canonicalYaml, extensions, imager, workDir, initrd);
      ctx.progress('assembling UKI', 80);
      const cmdline = cmdlineFor(spec, schematic, version, 'uki');
      await buildUki({
        stub: imager.stub,
        kernel: imager.kernel,
        initrd,
        cmdline,
        osRelease: osRelease(tag),
        profiles: atLeast(version, 1, 10, 0) ? [{ profile: 'ID=main' }] : undefined,
        out,
      });
      return out;
    }
    case 'iso': {
      const initrd = path.join(workDir, 'initramfs.xz');
      await initramfsWithExtensions(ctx, spec, schematic, canonicalYaml, extensions, imager, workDir, initrd);
      const cmdline = cmdlineFor(spec, schematic, version, 'iso');
      const flavour = isoFlavour({ version, arch: spec.arch, secureboot: spec.secureboot, bootloader: c.bootloader });
      let uki: string | undefined;
      if (flavour !== 'grub') {
        ctx.progress('assembling UKI', 70);
        uki = path.join(workDir, 'talos.efi');
        await buildUki({
          stub: imager.stub,
          kernel: imager.kernel,
          initrd,
          cmdline,
          osRelease: osRelease(tag),
          profiles: atLeast(version, 1, 10, 0)
            ? [{ profile: 'ID=main' }, { profile: 'ID=reset\nTITLE=Reset system disk', cmdline: resetCmdline(cmdline, 'iso') }]
            : undefined,
          out: uki,
        });
      }
      ctx.progress('writing ISO', 85);
      const isoWork = path.join(workDir, 'iso');
      await mkdir(isoWork, { recursive: true });
      await buildIso({
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
      return out;
    }
    default:
      throw new FactoryError(400, `unsupported asset kind ${spec.kind}`);
  }
}

function cmdlineFor(spec: AssetSpec, schematic: Schematic, version: SemVer, kind: 'cmdline' | 'uki' | 'iso'): string {
  // Which outputs take extra args and META is the per-output rule table of @factory/talos.
  return buildFactoryCmdline({
    platform: spec.platform,
    arch: spec.arch,
    version,
    kind,
    secureboot: spec.secureboot,
    meta: schematic.customization.meta,
    extraArgs: schematic.customization.extraKernelArgs,
  });
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

async function initramfsWithExtensions(
  ctx: BuildContext,
  spec: AssetSpec,
  schematic: Schematic,
  canonicalYaml: string,
  extensions: CatalogExtension[],
  imager: ImagerFiles,
  workDir: string,
  out: string,
): Promise<void> {
  const dirs: ExtensionDir[] = [];
  for (const [i, ext] of extensions.entries()) {
    ctx.progress(`fetching extension ${ext.name}`, 10 + Math.round((40 * i) / Math.max(1, extensions.length)));
    dirs.push({ dir: await ctx.inputs.extension(ext, spec.arch) });
  }
  const schematicDir = path.join(workDir, 'ext-schematic');
  await writeSchematicExtension(schematicDir, { id: spec.schematicId, canonicalYaml, externalUrl: ctx.externalUrl, version: spec.version });
  dirs.push({ dir: schematicDir });
  const config = schematic.customization.embeddedMachineConfiguration;
  const version = parseRequestVersion(spec.version)!;
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
