import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FactoryError } from '@factory/errors';
import { buildDiskImage, compressOutput, convertDisk, DiskContents, MissingHostSupportError, overlayInstall, planDisk } from '@factory/imaging';
import { diskBootloader } from '@factory/talos';
import type { BuildJob, Recipe } from './context';
import { cmdlineFor, initramfsWithExtensions, secureBootSigning, SecureBootSigning, signedSdBoot, ukiFor } from './steps';

const MiB = 1024 * 1024;

/**
 * Disk image: partitions and filesystems, META, overlay, then disk format and output compression. Secure Boot: the
 * sd-boot layout (talos-formats §8.2) with signed systemd-boot, the signed UKI (reset-maintenance profile), and
 * `secure-boot-enroll` with `loader/keys/auto` from the schematic's enrollKeys (default if-safe; `off` omits both).
 */
export const diskImage: Recipe = async (job) => {
  const { ctx, profile, imager, workDir, version, overlay } = job;
  // asked first: a Secure Boot build the signing service cannot sign fails before the initramfs work
  const sb = await secureBootSigning(job);
  const initrd = path.join(workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  const bootloader = diskBootloader({ version, arch: profile.arch, secureboot: profile.secureboot, bootloader: profile.bootloader ?? overlay?.bootloader });
  const cmdline = cmdlineFor(job, 'image');
  let uki: string | undefined;
  if (bootloader !== 'grub') {
    ctx.progress('assembling UKI', 60);
    uki = path.join(workDir, 'talos.efi');
    await ukiFor(job, initrd, cmdline, 'image', uki, sb);
  }
  const secureBoot = sb ? await secureBootEsp(job, sb) : undefined;
  const plan = planDisk({
    version: profile.version,
    arch: profile.arch,
    bootloader,
    baseSizeMiB: profile.disk?.sizeMiB ?? 8192,
    sectorSize: profile.sectorSize,
    firstPartitionOffsetLBA: overlay?.offsetLba,
  });
  const meta = new Map<number, string>(profile.meta.map((m) => [m.key, m.value]));
  const raw = path.join(workDir, 'disk.raw');
  // The overlay installer writes SoC boot blobs to its install disk before the first partition: give it a scratch
  // disk and carry that gap over into the image afterwards.
  const overlayDisk = path.join(workDir, 'overlay-disk.raw');
  ctx.progress('writing disk image', 70);
  await mkdir(path.join(workDir, 'disk'), { recursive: true });
  await buildDiskImageOrRefuse({
    plan,
    contents: {
      kernel: imager.kernel,
      initramfs: initrd,
      cmdline,
      version: profile.version,
      arch: profile.arch,
      uki,
      sdBoot: secureBoot?.sdBoot ?? (uki ? imager.sdBoot : undefined),
      enrollKeys: secureBoot?.enrollKeys,
      secureBootKeys: secureBoot?.secureBootKeys,
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
  const format = profile.disk?.format ?? 'raw';
  let converted = raw;
  if (format !== 'raw') {
    ctx.progress(`converting to ${format}`, 85);
    converted = path.join(workDir, `disk.${format}`);
    await convertDisk({ raw, format, formatOptions: profile.disk?.formatOptions ?? '', diskSizeMiB: Number(plan.sizeBytes) / MiB, out: converted, workDir });
  }
  if (profile.outFormat === 'raw') return { file: converted };
  ctx.progress(`compressing ${profile.outFormat}`, 90);
  await compressOutput({ file: converted, outFormat: profile.outFormat, innerName: 'disk.raw', out: job.out });
  return { file: job.out };
};

/**
 * The Secure Boot parts of the ESP: signed systemd-boot, `secure-boot-enroll` (the schematic's, default if-safe) and,
 * unless that is `off`, the signing service's PK/KEK/db enrollment files (with the well-known UEFI CAs when asked).
 */
async function secureBootEsp(job: BuildJob, sb: SecureBootSigning): Promise<Pick<DiskContents, 'sdBoot' | 'enrollKeys' | 'secureBootKeys'>> {
  job.ctx.progress('signing systemd-boot', 65);
  const sdBoot = await signedSdBoot(job, sb);
  const enrollKeys = job.profile.enrollKeys ?? 'if-safe';
  if (enrollKeys === 'off') return { sdBoot, enrollKeys };
  const enrollment = await sb.signer.enrollment({ includeWellKnownCertificates: !!job.profile.includeWellKnownCertificates });
  const dir = path.join(job.workDir, 'secureboot-keys');
  await mkdir(dir, { recursive: true });
  const keys = { pk: path.join(dir, 'PK.auth'), kek: path.join(dir, 'KEK.auth'), db: path.join(dir, 'db.auth') };
  await Promise.all([writeFile(keys.pk, enrollment.PK), writeFile(keys.kek, enrollment.KEK), writeFile(keys.db, enrollment.db)]);
  return { sdBoot, enrollKeys, secureBootKeys: keys };
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

/** buildDiskImage, with what this build-worker's host cannot do answered once as a 501 (not retried). */
async function buildDiskImageOrRefuse(o: Parameters<typeof buildDiskImage>[0]): Promise<void> {
  try {
    await buildDiskImage(o);
  } catch (err) {
    if (err instanceof MissingHostSupportError) throw new FactoryError(501, err.message);
    throw err;
  }
}
