/**
 * `.zst` output as a sequence of Zstandard frames (RFC 8878 §3: a zstd stream is any number of concatenated frames;
 * `zstd -d`, libzstd's streaming API, Go's klauspost/compress, libarchive all decode them in order):
 *   - long zero runs (>= ZSTD_ZERO_RUN, whole chunks) become frames we write ourselves from RLE blocks
 *     (4 bytes per 128 KiB; a 4 GiB hole is 128 KiB of output and costs nothing to produce);
 *   - everything else (data plus shorter zero gaps) is compressed by `zstd -<ZSTD_LEVEL> -T0`, one process and one
 *     frame per data segment.
 * zstd's multi-threaded output does not depend on the number of worker threads (only --single-thread differs), so
 * the result is deterministic across hosts.
 */
import { start, StartedProcess } from '@factory/process';
import { endWritable, writeTo } from './writable';
import { CHUNK, OutputFile, readChunks, zeros } from './scan';

/**
 * Compression level (single knob). Upstream uses `zstd -T0 -18`. With holes skipped, the remaining cost is the data
 * itself, which in Talos disk images is mostly already compressed (kernel, initramfs.xz, UKI). Measured here
 * (2 vCPUs, 60 MiB of mixed data: 20 MiB executables, 8 MB gzip, 32 MiB random): -18 37.5 s / 41.30 MB,
 * -15 6.2 s / 42.15 MB, -12 2.3 s / 42.20 MB, -9 1.1 s / 42.25 MB, -3 0.5 s / 43.20 MB. Level 9 keeps all but
 * ~2% of -18's gain at ~1/35 of its time.
 */
export const ZSTD_LEVEL = 9;
/** Zero runs at least this long (bytes) are written as RLE frames instead of going through the compressor. */
export const ZSTD_ZERO_RUN = 8 * CHUNK;

const MAGIC = 0xfd2fb528;
const RLE_BLOCK = 128 * 1024;

/** One frame holding `n` zero bytes as RLE blocks; window 128 KiB, content size stored, no checksum. */
export function zstdZeroFrame(n: number): Buffer {
  const nblocks = Math.max(1, Math.ceil(n / RLE_BLOCK));
  const out = Buffer.alloc(4 + 1 + 1 + 8 + nblocks * 4);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = 0xc0; // Frame_Header_Descriptor: FCS_Field_Size=3 (8 bytes), Single_Segment=0, no checksum, no dict
  out[5] = (17 - 10) << 3; // Window_Descriptor: 2^17 = 128 KiB
  out.writeBigUInt64LE(BigInt(n), 6);
  let off = 14;
  let left = n;
  for (let i = 0; i < nblocks; i++) {
    const size = Math.min(RLE_BLOCK, left);
    left -= size;
    const last = i === nblocks - 1 ? 1 : 0;
    const hdr = last | (1 << 1) | (size << 3); // Block_Type 1 = RLE
    out.writeUIntLE(hdr, off, 3);
    out[off + 3] = 0; // the repeated byte
    off += 4;
  }
  return out;
}

function zstdArgs(): string[] {
  return [`-${ZSTD_LEVEL}`, '-T0', '-q', '-c'];
}

/** Compress `file` to `out` (see module comment). */
export async function zstdFile(file: string, out: OutputFile): Promise<void> {
  let proc: { tool: StartedProcess; pump: Promise<void> } | undefined;
  let pendingZeros = 0;
  let emitted = false;

  const open = () => {
    const tool = start('zstd', zstdArgs(), { stdin: 'pipe', stdout: 'pipe' });
    const pump = (async () => {
      for await (const b of tool.stdout!) await out.write(b as Buffer);
    })();
    pump.catch(() => undefined);
    proc = { tool, pump };
    emitted = true;
  };
  const close = async () => {
    if (!proc) return;
    const p = proc;
    proc = undefined;
    await endWritable(p.tool.stdin!);
    await Promise.all([p.pump, p.tool.done]);
  };
  const feedZeros = async (n: number) => {
    for (let left = n; left > 0; left -= CHUNK) await writeTo(proc!.tool.stdin!, zeros(Math.min(CHUNK, left)));
  };
  const flushZeroRun = async () => {
    await close();
    await out.write(zstdZeroFrame(pendingZeros));
    emitted = true;
    pendingZeros = 0;
  };

  try {
    for await (const c of readChunks(file)) {
      if (c.zero) {
        pendingZeros += c.data.length;
        continue;
      }
      if (pendingZeros >= ZSTD_ZERO_RUN) await flushZeroRun();
      if (!proc) open();
      if (pendingZeros > 0) {
        await feedZeros(pendingZeros);
        pendingZeros = 0;
      }
      await writeTo(proc!.tool.stdin!, c.data);
    }
    if (pendingZeros > 0 && (pendingZeros >= ZSTD_ZERO_RUN || !proc)) await flushZeroRun();
    else if (pendingZeros > 0) await feedZeros(pendingZeros);
    if (!emitted) open(); // empty input: one (empty) frame, like `zstd` itself
    await close();
  } catch (e) {
    if (proc) {
      const p = proc;
      proc = undefined;
      p.tool.abandon();
      await p.tool.done.catch(() => undefined);
    }
    throw e;
  }
}
