/**
 * Outputs become visible only when complete: they are written to a temporary sibling and renamed into place, so a
 * reader (or a crashed build's successor) never sees half an image.
 */
import fsp from 'node:fs/promises';

/** A temporary path next to `out`, unique per process and moment. */
export const tempSibling = (out: string): string => `${out}.tmp-${process.pid}-${Date.now()}`;

/** Runs `write` (which fills `tmp`), then renames `tmp` to `out` with mode 0644; on failure `tmp` is removed. */
export async function writeThenRename<T>(tmp: string, out: string, write: () => Promise<T>): Promise<T> {
  try {
    const result = await write();
    await fsp.chmod(tmp, 0o644);
    await fsp.rename(tmp, out);
    return result;
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
