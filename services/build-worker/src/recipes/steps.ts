/** Steps several recipes share: the kernel command line, the initramfs with extensions, and the UKI. */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { secureBootSignerId } from '@factory/asset';
import { signPeFile } from '@factory/authenticode';
import { FactoryError } from '@factory/errors';
import { assembleInitramfs, buildUki, UkiPcrSigning, ExtensionCompatibilityError, ExtensionDir, talosUkiProfiles, UkiResetFor, writeEmbeddedConfigExtension, writeSchematicExtension } from '@factory/imaging';
import { buildFactoryCmdline, cmdlineLengthProblem, osRelease, OutputKind, ukiProfiles } from '@factory/talos';
import type { SecureBootMaterial, SecureBootSigner } from '../secureboot';
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
  // Official extensions are pinned by digest and extracted once under a content-addressed path: that path is their
  // content's identity, so their layers come from the layer cache when another build made them already.
  const dirs: ExtensionDir[] = (await Promise.all(extensions.map((ext) => ctx.inputs.extension(ext, profile.arch)))).map((dir) => ({ dir, contentKey: dir }));
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
    await assembleInitramfs({
      base: imager.initramfs,
      version: profile.version,
      extensions: dirs,
      workDir: assembleWork,
      out,
      layerCache: ctx.inputs.layerCache,
      // the imager's files live under its digest in the input cache: the path is the content's identity
      baseContentKey: imager.initramfs,
    });
  } catch (err) {
    if (err instanceof ExtensionCompatibilityError) {
      throw new FactoryError(400, `error enhancing profile from schematic: extension "${err.extension}" is not compatible with Talos version ${err.version}: ${err.message}`);
    }
    throw err;
  }
}

/** The signer of a Secure Boot build and the public material it signs with (checked against the asset's identity). */
export interface SecureBootSigning {
  signer: SecureBootSigner;
  material: SecureBootMaterial;
}

/**
 * The Secure Boot signer and material of a `-secureboot` build, undefined for others. The asset's key names the
 * certificates the edge saw (signing, own PK/KEK); a build with others (a key was rotated meanwhile) would store an
 * asset signed by, or enrolling, a key its identity does not name, so it is refused and the client asks again.
 */
export async function secureBootSigning(job: Pick<BuildJob, 'ctx' | 'profile'>): Promise<SecureBootSigning | undefined> {
  if (!job.profile.secureboot) return undefined;
  const signer = job.ctx.secureBoot;
  if (!signer) throw new Error('a Secure Boot build needs the signing service (BuildContext.secureBoot)');
  const material = await signer.material();
  const expected = job.profile.signer;
  if (expected && secureBootSignerId(material) !== expected) {
    throw new FactoryError(503, 'the Secure Boot certificates changed while the asset was requested; retry');
  }
  return { signer, material };
}

/** Authenticode-signs a PE file in place (sd-boot, UKI) through the signing service. */
export function authenticodeInPlace(sb: SecureBootSigning): (file: string) => Promise<void> {
  return async (file) => {
    await signPeFile(file, file, sb.signer.authenticode);
  };
}

/** systemd-boot for Secure Boot media: the imager's, Authenticode-signed (talos-formats §6.4). */
export async function signedSdBoot(job: Pick<BuildJob, 'imager' | 'workDir'>, sb: SecureBootSigning): Promise<string> {
  const out = path.join(job.workDir, 'systemd-boot.efi.signed');
  await signPeFile(job.imager.sdBoot, out, sb.signer.authenticode);
  return out;
}

/**
 * The UKI of the imager's stub and kernel with the rebuilt initramfs. With profiles (Talos ≥ 1.10) it carries `main`
 * plus, for the output it goes into, the reset profile with the wipe argument (talosUkiProfiles). Secure Boot
 * (`sb`): `.pcrpkey`, a `.pcrsig` per profile signed by the signing service over what the stub measures for it, and
 * the whole image Authenticode-signed (talos-formats §6.2–§6.4).
 */
export async function ukiFor(job: BuildJob, initrd: string, cmdline: string, reset: UkiResetFor, out: string, sb?: SecureBootSigning): Promise<void> {
  const { imager, profile, version } = job;
  const pcr: UkiPcrSigning | undefined = sb && { publicKeyPem: sb.material.pcrPublicKeyPem, signPolicy: (measured) => sb.signer.signPcrPolicy(measured) };
  await buildUki({
    stub: imager.stub,
    kernel: imager.kernel,
    initrd,
    cmdline,
    osRelease: osRelease(profile.version),
    profiles: ukiProfiles(version) ? talosUkiProfiles(cmdline, reset) : undefined,
    out,
    ...(sb ? { pcr, sign: authenticodeInPlace(sb) } : {}),
  });
}
