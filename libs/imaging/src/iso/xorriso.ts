/**
 * xorriso, stopped as soon as the image it writes is complete (see runXorrisoImage), and the GPT completeness
 * check that decides it.
 */
import { open } from 'node:fs/promises';
import { EnvOverrides, start } from '@factory/process';
import { crc32 } from '../checksum';

/** What the GPT of a (possibly still growing) image file says about its completeness. */
export type GptImageState = 'complete' | 'incomplete' | 'no-gpt';

const SECTOR = 512;
const GPT_SIGNATURE = Buffer.from('EFI PART', 'latin1');

function gptHeaderValid(h: Buffer, myLba: bigint): boolean {
  if (h.length < 92 || !h.subarray(0, 8).equals(GPT_SIGNATURE)) return false;
  const size = h.readUInt32LE(12);
  if (size < 92 || size > SECTOR) return false;
  const copy = Buffer.from(h.subarray(0, size));
  const crc = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  return crc32(copy) === crc && h.readBigUInt64LE(24) === myLba;
}

/** Bytes of an image's start that hold its primary GPT header (LBA 1). */
export const GPT_HEAD_BYTES = 2 * SECTOR;

/**
 * The final size of an image whose first bytes (at least GPT_HEAD_BYTES) hold a valid primary GPT header: the
 * header, written first, names the backup header's LBA, the image's last sector. Undefined without one.
 */
export function gptDeclaredSize(head: Buffer): number | undefined {
  if (head.length < GPT_HEAD_BYTES) return undefined;
  const primary = head.subarray(SECTOR, GPT_HEAD_BYTES);
  if (!gptHeaderValid(primary, 1n)) return undefined;
  const size = (primary.readBigUInt64LE(32) + 1n) * BigInt(SECTOR);
  return size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : undefined;
}

/**
 * An image with a GPT declares its final size up front (the primary header, written first, names the backup
 * header's LBA, the last sector). The image is complete when the file has exactly that size and the backup header
 * and its partition entries — the last bytes written — are in place with valid CRCs.
 */
export async function gptImageState(file: string): Promise<GptImageState> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return 'incomplete';
  }
  try {
    const { size } = await fh.stat();
    if (size < 2 * SECTOR) return 'incomplete';
    const primary = Buffer.alloc(SECTOR);
    await fh.read(primary, 0, SECTOR, SECTOR);
    if (!primary.subarray(0, 8).equals(GPT_SIGNATURE)) return 'no-gpt';
    if (!gptHeaderValid(primary, 1n)) return 'incomplete';
    const backupLba = primary.readBigUInt64LE(32);
    if (BigInt(size) !== (backupLba + 1n) * BigInt(SECTOR)) return 'incomplete';
    const backup = Buffer.alloc(SECTOR);
    await fh.read(backup, 0, SECTOR, Number(backupLba) * SECTOR);
    if (!gptHeaderValid(backup, backupLba)) return 'incomplete';
    const entries = Buffer.alloc(backup.readUInt32LE(80) * backup.readUInt32LE(84));
    await fh.read(entries, 0, entries.length, Number(backup.readBigUInt64LE(72)) * SECTOR);
    return crc32(entries) === backup.readUInt32LE(88) ? 'complete' : 'incomplete';
  } finally {
    await fh.close();
  }
}

/** xorriso's message severities that mean the run went wrong. */
const XORRISO_PROBLEM = /: (FAILURE|SORRY|FATAL|ABORT) :/;

/**
 * Runs xorriso writing an image to `out` and returns as soon as the image is complete. xorriso's main thread checks
 * the writer's state once per wall-clock second (its pacifier loop), so it idles up to ~1.2 s after the image is
 * written; for images with a GPT (grub and hybrid flavours) completion is read from the image itself and xorriso is
 * then stopped. Images without a GPT wait for xorriso's exit status as usual.
 */
export async function runXorrisoImage(args: string[], out: string, o: { env?: EnvOverrides; cwd?: string } = {}): Promise<{ early: boolean }> {
  const xorriso = start('xorriso', args, { env: o.env, cwd: o.cwd, stdout: 'capture' });
  let exited = false;
  let early = false;
  const poll = async (): Promise<void> => {
    while (!exited) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (exited) return;
      const state = await gptImageState(out).catch(() => 'incomplete' as const);
      if (exited || state === 'no-gpt') return; // without a GPT: wait for the exit status
      if (state === 'complete' && !XORRISO_PROBLEM.test(xorriso.stderrTail()) && !XORRISO_PROBLEM.test(xorriso.capturedStdout())) {
        early = true;
        // the image is whole: nothing xorriso does from here on may touch it
        xorriso.abandon();
        return;
      }
    }
  };
  const polling = poll();
  try {
    await xorriso.done;
  } finally {
    exited = true;
    await polling;
  }
  return { early };
}

const POLL_MS = 10;
