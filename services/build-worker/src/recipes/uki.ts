import path from 'node:path';
import type { Recipe } from './context';
import { cmdlineFor, initramfsWithExtensions, secureBootSigning, ukiFor } from './steps';

/** A UKI (main profile only): stub + kernel + initramfs with extensions + command line; signed for `-secureboot`. */
export const uki: Recipe = async (job) => {
  // asked first: a Secure Boot build the signing service cannot sign fails before the initramfs work
  const sb = await secureBootSigning(job);
  const initrd = path.join(job.workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  job.ctx.progress('assembling UKI', 80);
  await ukiFor(job, initrd, cmdlineFor(job, 'uki'), undefined, job.out, sb);
  return { file: job.out };
};
