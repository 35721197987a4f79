/** Tiny process runner for the host tools (grub-mkimage, mkfs.vfat, mtools, xorriso). */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { crc32 } from '../disk/gpt';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const MAX_CAPTURE = 256 * 1024;

export class IsoToolError extends Error {
  constructor(
    readonly command: string,
    readonly args: string[],
    readonly code: number | null,
    readonly output: string,
  ) {
    super(`${command} ${args.join(' ')} failed (${code === null ? 'killed' : `exit ${code}`}): ${output.trim().slice(-2000)}`);
    this.name = 'IsoToolError';
  }
}

export function run(command: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += d.toString('utf8');
    });
    p.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < MAX_CAPTURE) stderr += d.toString('utf8');
    });
    p.on('error', (e) => reject(new Error(`${command}: ${e.message}`)));
    p.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new IsoToolError(command, args, code, `${stderr}\n${stdout}`));
    });
  });
}

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
export function runXorrisoImage(args: string[], out: string, o: RunOptions = {}): Promise<{ early: boolean }> {
  return new Promise((resolve, reject) => {
    const p = spawn('xorriso', args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (d: Buffer) => {
      if (output.length < MAX_CAPTURE) output += d.toString('utf8');
    };
    p.stdout!.on('data', collect);
    p.stderr!.on('data', collect);
    let settled = false;
    let early = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (err) reject(err);
      else resolve({ early });
    };
    p.on('error', (e) => finish(new Error(`xorriso: ${e.message}`)));
    p.on('close', (code) => {
      if (early) finish();
      else if (code === 0) finish();
      else finish(new IsoToolError('xorriso', args, code, output));
    });
    const poll = async () => {
      if (settled || early) return;
      const state = await gptImageState(out).catch(() => 'incomplete' as const);
      if (settled) return;
      if (state === 'no-gpt') return; // wait for the exit status
      if (state === 'complete' && !XORRISO_PROBLEM.test(output)) {
        early = true;
        // the image is whole: nothing xorriso does from here on may touch it
        p.kill('SIGKILL');
        return;
      }
      timer = setTimeout(() => void poll(), POLL_MS);
    };
    timer = setTimeout(() => void poll(), POLL_MS);
  });
}

const POLL_MS = 10;
