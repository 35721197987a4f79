import type { Recipe } from './context';
import { initramfsWithExtensions } from './steps';

/** The imager's initramfs with the schematic's extensions. */
export const initramfs: Recipe = async (job) => {
  await initramfsWithExtensions(job, job.out);
  return { file: job.out };
};
