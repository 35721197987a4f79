import { createReadStream } from 'node:fs';
import path from 'node:path';
import { FactoryError, isFactoryError } from '@factory/errors';
import { buildInstallerImage, installerArtifactPaths, writeDockerArchive } from '@factory/imaging';
import { unifiedInstaller } from '@factory/talos';
import type { Recipe } from './context';
import { cmdlineFor, initramfsWithExtensions, secureBootSigning, signedSdBoot, ukiFor } from './steps';

/**
 * Installer image (talos-formats §1.4): the installer-base image (unified installer; the legacy installer image
 * before, without its artifacts layer) plus an artifacts layer (UKI + systemd-boot, or kernel + initramfs) and the
 * overlay layer. Its blobs and manifest go into the OCI store first; the asset itself is the docker-save tarball.
 * Secure Boot: the artifacts layer holds systemd-boot and the UKI (with the `reset-maintenance` profile and
 * `lockdown=confidentiality`), both signed by the signing service, whatever the version (§1.4 step 4).
 */
export const installer: Recipe = async (job) => {
  const { ctx, profile, imager, workDir, version, overlay } = job;
  // asked first: a Secure Boot build the signing service cannot sign fails before any download or initramfs work
  const sb = await secureBootSigning(job);
  const component = unifiedInstaller(version) ? ctx.catalog.components.installerBase : ctx.catalog.components.installer;
  ctx.progress(`fetching ${component}`, 20);
  let base;
  try {
    base = await ctx.inputs.rawImage(component, profile.version, profile.arch);
  } catch (err) {
    if (isFactoryError(err) && err.status === 404) throw new FactoryError(404, `failed to get installer base image: ${err.message}`);
    throw err;
  }
  const initrd = path.join(workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  const artifacts: Array<{ path: string; file: string }> = [];
  for (const a of installerArtifactPaths(version, profile.arch, profile.secureboot)) {
    switch (a.role) {
      case 'kernel':
        artifacts.push({ path: a.path, file: imager.kernel });
        break;
      case 'initramfs':
        artifacts.push({ path: a.path, file: initrd });
        break;
      case 'systemd-boot':
        if (sb) ctx.progress('signing systemd-boot', 55);
        artifacts.push({ path: a.path, file: sb ? await signedSdBoot(job, sb) : imager.sdBoot });
        break;
      case 'uki': {
        ctx.progress('assembling UKI', 60);
        const uki = path.join(workDir, 'talos.efi');
        await ukiFor(job, initrd, cmdlineFor(job, 'installer'), 'installer', uki, sb);
        artifacts.push({ path: a.path, file: uki });
        break;
      }
    }
  }
  ctx.progress('assembling installer image', 70);
  const image = await buildInstallerImage({
    arch: profile.arch,
    base: { config: base.config, layers: base.layers.map(({ digest, size, file }) => ({ digest, size, file })) },
    artifacts,
    overlay: overlay ? { root: overlay.root, installerName: overlay.name, options: overlay.options } : undefined,
    created: baseCreated(base.config, base.reference),
    workDir: path.join(workDir, 'layers'),
  });
  ctx.progress('storing image blobs', 85);
  // Blobs first, the manifest last: a manifest in the store always has all its blobs.
  await ctx.oci.putBlob(image.config.digest, image.config.bytes, image.config.size);
  for (const l of image.layers) await ctx.oci.putBlob(l.digest, createReadStream(l.file, { highWaterMark: 1024 * 1024 }), l.size);
  const manifest = await ctx.oci.putManifest(image.manifest.bytes, image.manifest.mediaType);
  ctx.progress('writing installer tarball', 92);
  const repoTag = `${ctx.catalog.registry}/${component}:${profile.version}`;
  const digest = await writeDockerArchive(image, repoTag, job.out);
  return { file: job.out, digest, image: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size } };
};

/** The base image's creation time: a fixed, meaningful timestamp, so rebuilding gives the same image digest. */
function baseCreated(config: Buffer, reference: string): string {
  let created: string;
  try {
    created = String((JSON.parse(config.toString('utf8')) as { created?: unknown }).created ?? '');
  } catch {
    throw new FactoryError(502, `${reference}: image config is not JSON`);
  }
  return /^\d{4}-\d{2}-\d{2}T/.test(created) ? created : '1970-01-01T00:00:00Z';
}
