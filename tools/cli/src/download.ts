/**
 * `talos-factory download`: have the asset built (showing the build's progress when it is cold), fetch it into
 * `<file>.part` — continuing an existing `.part` with a Range request — with a progress line (speed, ETA), check the
 * whole file against the sha256 the factory recorded when it built the asset (`<asset>.sha256`, the Build's sha256
 * when that is not served), and only then rename it to `<file>`. A resumed file that does not match is fetched once
 * more from the start (the kept bytes may have been another asset's); a mismatch of a whole download removes the
 * `.part` and exits 6.
 */
import { createHash, Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { AssetDownload, Build, FactoryClient, FactoryClientError } from '@factory/client';
import { CliError, EXIT, exitCodeForStatus } from './exit';
import { followBuilds } from './follow';
import { downloadLine, ProgressLines, SpeedMeter } from './progress';

export interface DownloadRequest {
  schematic: string;
  version: string;
  asset: string;
  /** where to write (absolute) */
  file: string;
}

export interface DownloadResult {
  file: string;
  size: number;
  sha256: string;
  /** bytes that were already in the `.part` file and kept (0 = downloaded whole) */
  resumedFrom: number;
  /** the build this run waited for, if the asset was not stored yet */
  build?: Build;
}

export async function downloadAsset(client: FactoryClient, req: DownloadRequest, progress: ProgressLines, notice: (line: string) => void): Promise<DownloadResult> {
  const part = `${req.file}.part`;
  let got = await transfer(client, req, part, await sizeOf(part), progress);
  const expected = await expectedSha256(client, req, got.build);
  if (got.sha256 !== expected && got.resumedFrom > 0) {
    // the kept bytes were not this asset's (a .part of another download under the same name): once more, whole
    notice(`${path.basename(part)} did not match the asset; downloading it again from the start`);
    got = { ...(await transfer(client, req, part, 0, progress)), build: got.build };
  }
  if (got.sha256 !== expected) {
    await fsp.rm(part, { force: true });
    throw new CliError(`checksum mismatch for ${req.asset}: expected sha256 ${expected}, got ${got.sha256}`, EXIT.checksum);
  }
  await fsp.rename(part, req.file);
  return { file: req.file, ...got };
}

/**
 * Brings `part` to the whole asset: waits for its build if it is cold, then continues from `offset` (or starts over
 * when the server sends it whole, or the .part is longer than the asset). Returns the sha256 of the whole file.
 */
async function transfer(client: FactoryClient, req: DownloadRequest, part: string, offset: number, progress: ProgressLines): Promise<Omit<DownloadResult, 'file'>> {
  const get = (from: number) => client.download(req.schematic, req.version, req.asset, { respondAsync: true, range: from > 0 ? { start: from } : undefined });

  let answer: AssetDownload = await get(offset);
  let build: Build | undefined;
  if (answer.kind === 'build') {
    [build] = await followBuilds(client, [answer.build], progress);
    if (build.state === 'failed') {
      const status = build.error?.status ?? 500;
      throw new CliError(`build of ${req.asset} failed: ${build.error?.message ?? 'unknown error'}`, exitCodeForStatus(status));
    }
    answer = await get(offset);
    if (answer.kind === 'build') throw new CliError(`build of ${req.asset} is done but the asset is not served yet`, EXIT.unavailable);
  }
  if (answer.kind === 'unsatisfiable') {
    // the .part is as long as the asset (a run stopped before the check), or longer (not this asset): keep or restart
    if (answer.total === undefined || offset !== answer.total) {
      offset = 0;
      answer = await get(0);
      if (answer.kind !== 'bytes') throw new CliError(`unexpected answer to a whole download of ${req.asset}`, EXIT.failure);
    }
  }

  const hash = createHash('sha256');
  let size = offset;
  if (answer.kind === 'bytes') {
    if (answer.status === 200) offset = 0; // the range was not honoured: the whole asset came
    else if (answer.start !== offset) throw new CliError(`asked for bytes from ${offset}, got bytes from ${answer.start}`, EXIT.failure);
    if (offset > 0) await hashFile(part, hash);
    size = offset + (await receive(answer, part, offset, hash, progress, path.basename(req.file)));
  } else {
    await hashFile(part, hash);
  }
  return { size, sha256: hash.digest('hex'), resumedFrom: offset, build };
}

/** Streams the body into the file (appending after `offset`), hashing as it goes; returns the bytes received. */
async function receive(answer: Extract<AssetDownload, { kind: 'bytes' }>, part: string, offset: number, hash: Hash, progress: ProgressLines, label: string): Promise<number> {
  const out = await fsp.open(part, offset > 0 ? 'a' : 'w').catch((err: Error) => {
    throw new CliError(`cannot write ${part}: ${err.message}`, EXIT.failure);
  });
  const total = answer.total ?? (answer.length !== undefined ? offset + answer.length : undefined);
  const speed = new SpeedMeter();
  let received = 0;
  const render = (force = false, done = false) => {
    speed.record(received);
    const bytesPerSecond = done ? speed.averageBytesPerSecond() : speed.bytesPerSecond();
    progress.update([downloadLine(label, offset + received, total, bytesPerSecond)], force);
  };
  try {
    render(true);
    const chunks = answer.body as unknown as AsyncIterable<Uint8Array>;
    for await (const chunk of chunks) {
      hash.update(chunk);
      await out.write(chunk).catch((err: Error) => {
        throw new CliError(`cannot write ${part}: ${err.message}`, EXIT.failure);
      });
      received += chunk.length;
      render();
    }
    render(true, true);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new FactoryClientError(0, `download of ${label} broke off after ${offset + received} bytes (run again to resume): ${(err as Error).message}`);
  } finally {
    await out.close();
    progress.finish();
  }
  return received;
}

/** The recorded `.sha256`; when the factory does not serve it (4xx), the sha256 of the build that made the asset. */
async function expectedSha256(client: FactoryClient, req: DownloadRequest, build: Build | undefined): Promise<string> {
  try {
    return await client.checksum(req.schematic, req.version, req.asset);
  } catch (err) {
    if (err instanceof FactoryClientError && err.status >= 400 && err.status < 500 && build?.sha256) return build.sha256;
    throw err;
  }
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return 0;
  }
}
