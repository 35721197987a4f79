import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { FactoryError } from '@factory/errors';
import { buildDiskImage, compressOutput, convertDisk, overlayInstall, planDisk } from '@factory/imaging';
import { diskBootloader } from '@factory/talos';
import type { Recipe } from './context';
import { cmdlineFor, initramfsWithExtensions, ukiFor } from './steps';

const MiB = 1024 * 1024;

/** Disk image: partitions and filesystems, META, overlay, then disk format and output compression. */
export const diskImage: Recipe = async (job) => {
  const { ctx, profile, imager, workDir, version, overlay } = job;
  const initrd = path.join(workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  const bootloader = diskBootloader({ version, arch: profile.arch, secureboot: profile.secureboot, bootloader: profile.bootloader ?? overlay?.bootloader });
  const cmdline = cmdlineFor(job, 'image');
  let uki: string | undefined;
  if (bootloader !== 'grub') {
    ctx.progress('assembling UKI', 60);
    uki = path.join(workDir, 'talos.efi');
    await ukiFor(job, initrd, cmdline, 'image', uki);
  }
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
  await buildDiskImage({
    plan,
    contents: {
      kernel: imager.kernel,
      initramfs: initrd,
      cmdline,
      version: profile.version,
      arch: profile.arch,
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
