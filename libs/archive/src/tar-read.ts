/**
 * Streaming tar reader: tar-stream parses the headers (ustar, GNU long names, PAX records, base-256 numbers,
 * checksums); a block-level guard in front of it decides how much it is fed, so that
 *
 * - reading stops at the end-of-archive marker (a zero block where a header belongs), like Go's archive/tar: what
 *   follows (record padding, a compressor's trailer) is left unread in the ByteReader for the caller;
 * - a metadata record (PAX `x`/`g`, GNU `L`/`K`) larger than `maxMetadataBytes` is refused before it is buffered;
 * - a link, device, FIFO or directory header that claims data is refused (Go's reader would ignore the size and
 *   read the data as the next header; tar-stream would skip it: the two disagree, so neither reading is taken);
 * - truncated archives fail with an UnsafeArchiveError whose message starts with "truncated"; a stream that ends
 *   right after the last member's data (without padding or end-of-archive blocks) is accepted.
 *
 * Entries come one at a time; an entry's body must be consumed before the next entry is asked for (or it is
 * skipped), so memory stays bounded by one metadata record plus one chunk.
 */
import * as tarStream from 'tar-stream';
import { ByteReader, TruncatedStreamError } from './bytes';
import { UnsafeArchiveError } from './errors';
import { BLOCK, parseNumber } from './tar-header';

export interface TarReadEntry {
  /** path as recorded (PAX path / GNU long name / prefix + name) */
  path: string;
  /** typeflag character ('0' regular, '1' hard link, '2' symlink, '5' directory, ...) */
  type: string;
  mode: number;
  size: number;
  linkname: string;
  mtime: number;
  /** PAX records of this entry */
  pax: Record<string, string>;
  /** the entry's data; read it before asking for the next entry (otherwise it is skipped) */
  body(): AsyncGenerator<Buffer>;
}

export interface TarReadOptions {
  /** largest PAX / GNU long-name record accepted (default 1 MiB): such records are held in memory */
  maxMetadataBytes?: number;
}

const DEFAULT_MAX_METADATA = 1 << 20;
const TYPEFLAG_OF: Record<string, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
  'contiguous-file': '7',
};
const METADATA_TYPES = new Set(['x', 'g', 'L', 'K']);
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** tar-stream's extractor is a streamx Writable: `drained` resolves once everything written so far is processed. */
function drained(ex: tarStream.Extract): Promise<boolean> {
  return (ex.constructor as unknown as { drained(w: unknown): Promise<boolean> }).drained(ex);
}

/** Iterate the entries of one tar archive read from `input`. */
export async function* readTar(
  input: ByteReader | AsyncIterable<Buffer | Uint8Array | string>,
  o: TarReadOptions = {},
): AsyncGenerator<TarReadEntry> {
  const r = input instanceof ByteReader ? input : ByteReader.from(input);
  const maxMeta = o.maxMetadataBytes ?? DEFAULT_MAX_METADATA;
  const ex = tarStream.extract({ allowUnknownFormat: true });
  let lastBlock: Buffer = ZERO_BLOCK;
  let lastAt = 0;
  // entries tar-stream has emitted so far, the newest one's header, and each entry's raw header block
  let emittedCount = 0;
  let newest: tarStream.Headers | undefined;
  const rawHeader = new WeakMap<object, Buffer>();
  ex.on('entry', (header: tarStream.Headers, stream: tarStream.Entry) => {
    emittedCount++;
    newest = header;
    rawHeader.set(stream, lastBlock);
  });

  const truncated = (what: string, at: number) => new UnsafeArchiveError(`truncated tar ${what} at offset ${at}`);
  const write = async (b: Buffer) => {
    if (!ex.write(b)) await drained(ex);
  };

  /** Feeds tar-stream block by block in header regions and member data in chunks; ends it at the end-of-archive. */
  async function feed(): Promise<void> {
    let metaBlocksLeft = 0;
    for (;;) {
      if (ex.destroyed) return;
      const at = r.offset;
      let blk: Buffer | null;
      try {
        blk = await r.read(BLOCK);
      } catch (e) {
        throw e instanceof TruncatedStreamError ? truncated(metaBlocksLeft ? 'metadata record' : 'header', at) : e;
      }
      if (!blk) {
        if (metaBlocksLeft) throw truncated('metadata record', at);
        break; // end of stream without the end-of-archive blocks: accepted
      }
      if (metaBlocksLeft > 0) {
        metaBlocksLeft--;
        await write(blk);
        continue;
      }
      if (blk.equals(ZERO_BLOCK)) break; // end-of-archive marker
      const type = String.fromCharCode(blk[156]);
      if (METADATA_TYPES.has(type)) {
        const size = parseNumber(blk.subarray(124, 136));
        if (Number.isNaN(size)) throw new UnsafeArchiveError(`malformed size in tar header at offset ${at}`);
        if (size > maxMeta) throw new UnsafeArchiveError(`tar metadata record of ${size} bytes at offset ${at} exceeds ${maxMeta}`);
        metaBlocksLeft = Math.ceil(size / BLOCK);
        await write(blk);
        continue;
      }
      lastBlock = blk;
      lastAt = at;
      const before = emittedCount;
      ex.write(blk);
      if (!(await drained(ex))) return; // destroyed: the error reaches the consumer through the extractor
      if (emittedCount === before || !newest) continue; // tar-stream saw no entry in this block
      const header = newest;
      const name = JSON.stringify(header.name);
      const size = header.size ?? 0;
      if (!Number.isSafeInteger(size) || size < 0) throw new UnsafeArchiveError(`malformed size in tar header of ${name} at offset ${at}`);
      if (header.type === 'directory' || size === 0) continue;
      if (header.type !== 'file' && header.type !== 'contiguous-file' && header.type !== null) {
        throw new UnsafeArchiveError(`tar entry ${name} at offset ${at} is a ${header.type} but records ${size} bytes of data`);
      }
      try {
        for await (const c of r.chunks(size)) {
          if (ex.destroyed) return;
          await write(c);
        }
      } catch (e) {
        throw e instanceof TruncatedStreamError ? truncated(`entry ${name}`, at) : e;
      }
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad) {
        // tolerate a stream that ends right after the last entry's data
        const p = await r.peek(pad);
        if (p.length) await r.skip(p.length);
        await write(Buffer.alloc(pad));
      }
    }
    ex.end();
  }

  const feeding = feed().catch((e: unknown) => {
    ex.destroy(e instanceof Error ? e : new Error(String(e)));
  });
  let done = false;
  try {
    for await (const stream of ex) {
      const h = stream.header;
      const raw = rawHeader.get(stream) ?? ZERO_BLOCK;
      const it = stream[Symbol.asyncIterator]();
      let finished = false;
      const next = async (): Promise<Buffer | undefined> => {
        if (finished) return undefined;
        const n = await it.next();
        if (n.done) finished = true;
        return n.done ? undefined : (n.value as Buffer);
      };
      yield {
        path: h.name,
        type: h.type ? TYPEFLAG_OF[h.type] ?? String.fromCharCode(raw[156]) : String.fromCharCode(raw[156] || 0x30),
        mode: h.mode ?? 0,
        size: h.type === 'directory' ? 0 : h.size ?? 0,
        linkname: h.linkname ?? '',
        mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
        pax: { ...((h as { pax?: Record<string, string> | null }).pax ?? {}) },
        body: async function* () {
          for (let c = await next(); c !== undefined; c = await next()) yield c;
        },
      };
      // skip whatever the consumer left unread (without destroying the entry stream, which would end the archive)
      while ((await next()) !== undefined);
    }
    done = true;
  } catch (e) {
    throw archiveError(e, lastAt);
  } finally {
    if (!done) {
      ex.destroy();
      void feeding;
    } else {
      await feeding;
    }
  }
}

/** Errors of tar-stream itself (bad checksum, unknown data) as UnsafeArchiveError. */
function archiveError(e: unknown, at: number): unknown {
  if (e instanceof UnsafeArchiveError || !(e instanceof Error)) return e;
  if (/Invalid tar header/.test(e.message)) return new UnsafeArchiveError(`invalid tar header (checksum or format) at offset ${at}`);
  if (/Unexpected end of data/.test(e.message)) return new UnsafeArchiveError(`truncated tar archive at offset ${at}`);
  return e;
}
