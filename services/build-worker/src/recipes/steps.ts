/** Steps several recipes share: the kernel command line, the initramfs with extensions, and the UKI. */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { FactoryError } from '@factory/errors';
import { assembleInitramfs, buildUki, ExtensionCompatibilityError, ExtensionDir, talosUkiProfiles, UkiResetFor, writeEmbeddedConfigExtension, writeSchematicExtension } from '@factory/imaging';
import { buildFactoryCmdline, cmdlineLengthProblem, osRelease, OutputKind, ukiProfiles } from '@factory/talos';
import type { BuildJob } from './context';

/**
 * The command line an output boots with. Which outputs take extra args and META is the per-output rule table of
 * @factory/talos; overlay arguments (the installer's get-options) replace same-named platform arguments.
 */
export function cmdlineFor(job: Pick<BuildJob, 'profile' | 'version' | 'overlay'>, kind: Extract<OutputKind, 'cmdline' | 'uki' | 'iso' | 'image' | 'installer'>): string {
  const { profile, version, overlay } = job;
  const extra = [...(overlay?.extraKernelArgs ?? []), ...profile.extraKernelArgs];
  const cmdline = buildFactoryCmdline({
    platform: profile.platform,
    arch: profile.arch,
    version,
    kind,
    secureboot: profile.secureboot,
    overlayArgs: overlay?.kernelArgs,
    meta: profile.meta.length ? profile.meta : undefined,
    extraArgs: extra.length ? extra : undefined,
  });
  // The edge checked this without the overlay's arguments, which only the build knows.
  const problem = cmdlineLengthProblem(cmdline);
  if (problem) throw new FactoryError(400, `error enhancing profile from schematic: ${problem}`);
  return cmdline;
}

/**
 * The imager's initramfs with the official extensions (pinned by digest, fetched concurrently, kept in schematic
 * order), the schematic extension and, from Talos 1.12, the embedded machine configuration.
 */
export async function initramfsWithExtensions(job: BuildJob, out: string): Promise<void> {
  const { ctx, profile, imager, workDir } = job;
  const { extensions } = profile;
  ctx.progress(extensions.length ? `fetching ${extensions.length} extension(s)` : 'preparing extensions', 10);
  const dirs: ExtensionDir[] = (await Promise.all(extensions.map((ext) => ctx.inputs.extension(ext, profile.arch)))).map((dir) => ({ dir }));
  const schematicDir = path.join(workDir, 'ext-schematic');
  await writeSchematicExtension(schematicDir, { id: profile.schematicId, canonicalYaml: profile.schematicYaml, externalUrl: ctx.externalUrl, version: profile.version });
  dirs.push({ dir: schematicDir });
  if (profile.embeddedConfig) {
    const dir = path.join(workDir, 'ext-embedded-config');
    const { selinux } = await writeEmbeddedConfigExtension(dir, profile.embeddedConfig);
    dirs.push({ dir, selinux });
  }
  ctx.progress('assembling initramfs', 50);
  const assembleWork = path.join(workDir, 'assemble');
  await mkdir(assembleWork, { recursive: true });
  try {
    await assembleInitramfs({ base: imager.initramfs, version: profile.version, extensions: dirs, workDir: assembleWork, out });
  } catch (err) {
    if (err instanceof ExtensionCompatibilityError) {
      throw new FactoryError(400, `error enhancing profile from schematic: extension "${err.extension}" is not compatible with Talos version ${err.version}: ${err.message}`);
    }
    throw err;
  }
}

/**
 * The UKI of the imager's stub and kernel with the rebuilt initramfs. With profiles (Talos ≥ 1.10) it carries `main`
 * plus, for the output it goes into, the reset profile with the wipe argument (talosUkiProfiles).
 */
export async function ukiFor(job: BuildJob, initrd: string, cmdline: string, reset: UkiResetFor, out: string): Promise<void> {
  const { imager, profile, version } = job;
  await buildUki({
    stub: imager.stub,
    kernel: imager.kernel,
    initrd,
    cmdline,
    osRelease: osRelease(profile.version),
    profiles: ukiProfiles(version) ? talosUkiProfiles(cmdline, reset) : undefined,
    out,
  });
}
