import { X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { buildIso, IsoSecureBootKeys } from '@factory/imaging';
import { grubResetEntries, isoFlavour, isoVolumeId, isoVolumeSetId } from '@factory/talos';
import type { Recipe } from './context';
import { cmdlineFor, initramfsWithExtensions, secureBootSigning, signedSdBoot, ukiFor } from './steps';

/**
 * ISO: GRUB (< 1.10), hybrid GRUB BIOS + sd-boot UEFI, or UEFI-only, by version and bootloader (talos-formats §7).
 * Secure Boot: UEFI-only with signed sd-boot and UKI, the enrollment files (with the well-known UEFI CA certificates
 * when the schematic asks) and `secure-boot-enroll` from the schematic (default `if-safe`, §7.3).
 */
export const iso: Recipe = async (job) => {
  const { ctx, profile, version, imager, workDir, overlay } = job;
  const sb = await secureBootSigning(job);
  const initrd = path.join(workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  const cmdline = cmdlineFor(job, 'iso');
  const flavour = isoFlavour({ version, arch: profile.arch, secureboot: profile.secureboot, bootloader: profile.bootloader ?? overlay?.bootloader });
  let uki: string | undefined;
  if (flavour !== 'grub') {
    ctx.progress('assembling UKI', 70);
    uki = path.join(workDir, 'talos.efi');
    await ukiFor(job, initrd, cmdline, 'iso', uki, sb);
  }
  let secureBootKeys: IsoSecureBootKeys | undefined;
  let sdBoot = flavour !== 'grub' ? imager.sdBoot : undefined;
  if (sb) {
    ctx.progress('signing systemd-boot', 80);
    sdBoot = await signedSdBoot(job, sb);
    const enrollment = await sb.signer.enrollment({ includeWellKnownCertificates: !!profile.includeWellKnownCertificates });
    secureBootKeys = { ...enrollment, signingCertDer: new X509Certificate(sb.material.signingCertPem).raw };
  }
  ctx.progress('writing ISO', 85);
  const isoWork = path.join(workDir, 'iso');
  await mkdir(isoWork, { recursive: true });
  const built = await buildIso({
    flavour,
    arch: profile.arch,
    version: profile.version,
    kernel: imager.kernel,
    initramfs: initrd,
    cmdline,
    resetEntry: grubResetEntries(version),
    uki,
    sdBoot,
    enrollKeys: sb ? (profile.enrollKeys ?? 'if-safe') : 'off',
    secureBootKeys,
    volumeId: isoVolumeId(profile.version),
    volumeSetId: isoVolumeSetId(profile.version),
    out: job.out,
    workDir: isoWork,
    md5: ctx.md5,
    ...(ctx.storeWhileWritten ? { whileWritten: ctx.storeWhileWritten } : {}),
  });
  return { file: job.out, digest: { sha256: built.sha256, size: built.size, ...(built.md5 ? { md5: built.md5 } : {}) }, streamed: built.streamed };
};
