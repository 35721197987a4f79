/** Tiny process runner for the host tools (grub-mkimage, mkfs.vfat, mtools, xorriso). */
import { spawn } from 'node:child_process';

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
