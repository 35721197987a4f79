import path from 'node:path';
import type { Recipe } from './context';
import { cmdlineFor, initramfsWithExtensions, ukiFor } from './steps';

/** A UKI (main profile only): stub + kernel + initramfs with extensions + command line. */
export const uki: Recipe = async (job) => {
  const initrd = path.join(job.workDir, 'initramfs.xz');
  await initramfsWithExtensions(job, initrd);
  job.ctx.progress('assembling UKI', 80);
  await ukiFor(job, initrd, cmdlineFor(job, 'uki'), undefined, job.out);
  return { file: job.out };
};
