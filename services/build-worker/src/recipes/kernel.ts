import type { Recipe } from './context';

/** The imager's kernel as it is. */
export const kernel: Recipe = async ({ imager }) => ({ file: imager.kernel });
