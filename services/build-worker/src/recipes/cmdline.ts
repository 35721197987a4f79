import { writeFile } from 'node:fs/promises';
import type { Recipe } from './context';
import { cmdlineFor } from './steps';

/** The kernel command line of the platform, with the schematic's extra args and META. */
export const cmdline: Recipe = async (job) => {
  await writeFile(job.out, cmdlineFor(job, 'cmdline'));
  return { file: job.out };
};
