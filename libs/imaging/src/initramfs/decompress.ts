/** Detect a compressed stream by its magic bytes and decompress it (gzip in-process; zstd / xz via the CLI tools). */
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { ByteReader } from '@factory/archive';
import { feed, start } from '@factory/process';

export type Compression = 'gzip' | 'zstd' | 'xz' | 'none';

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

export interface Decompressed {
  compression: Compression;
  reader: ByteReader;
  /** stop early (kills a decompressor, destroys the source) */
  abandon(): Promise<void>;
  /** after reading everything: waits for a decompressor to exit successfully */
  finish(): Promise<void>;
}

/** Wrap a (possibly compressed) stream; compression is detected from the first bytes. */
export async function openDecompressed(src: NodeJS.ReadableStream): Promise<Decompressed> {
  const raw = ByteReader.from(src as AsyncIterable<Buffer>);
  const head = await raw.peek(6);
  const compression = detectCompression(head);
  const destroySrc = () => {
    const s = src as Partial<Readable>;
    if (typeof s.destroy === 'function') s.destroy();
  };
  const rest = () => raw.rest();
  if (compression === 'none') {
    return { compression, reader: raw, abandon: async () => { await raw.close(); destroySrc(); }, finish: async () => undefined };
  }
  if (compression === 'gzip') {
    const gunzip = zlib.createGunzip();
    const input = Readable.from(rest(), { objectMode: false });
    input.on('error', (e) => gunzip.destroy(e));
    input.pipe(gunzip);
    const reader = ByteReader.from(gunzip);
    return {
      compression,
      reader,
      abandon: async () => { input.destroy(); gunzip.destroy(); destroySrc(); },
      finish: async () => undefined,
    };
  }
  const tool = start(compression === 'zstd' ? 'zstd' : 'xz', ['-d', '-c', '-q'], { stdin: 'pipe', stdout: 'pipe' });
  const fed = feed(tool, rest());
  fed.catch(() => undefined);
  const reader = ByteReader.from(tool.stdout!);
  return {
    compression,
    reader,
    abandon: async () => { tool.abandon(); destroySrc(); await fed.catch(() => undefined); },
    finish: () => fed,
  };
}
