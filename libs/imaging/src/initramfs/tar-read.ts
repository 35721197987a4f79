/**
 * Streaming tar reader (ustar, GNU long names, PAX extended/global headers, base-256 numbers).
 * Entries are yielded one at a time; the body must be consumed (or is skipped) before the next header is read,
 * so memory stays bounded by the largest metadata record.
 */
import { ByteReader, TruncatedStreamError } from './bytes';
import { UnsafeArchiveError } from './errors';

const BLOCK = 512;
/** PAX / GNU long-name records larger than this are rejected (they are held in memory). */
const MAX_META = 1 << 20;

export interface TarEntry {
  /** path as recorded (PAX path / GNU long name / prefix+name) */
  path: string;
  /** typeflag character ('0' regular, '1' hard link, '2' symlink, '5' directory, ...) */
  type: string;
  mode: number;
  size: number;
  linkname: string;
  /** merged PAX records (global, then per-entry) */
  pax: Record<string, string>;
  /** the entry's data; must be consumed before asking for the next entry (otherwise it is skipped) */
  body(): AsyncGenerator<Buffer>;
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
}

function parseNumber(field: Buffer, what: string, at: number): number {
  if (field[0] & 0x80) {
    // base-256, big endian; first byte 0x80 = positive, 0xff = negative
    if (field[0] === 0xff) throw new UnsafeArchiveError(`negative ${what} in tar header at offset ${at}`);
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) {
      v = v * 256 + field[i];
      if (!Number.isSafeInteger(v)) throw new UnsafeArchiveError(`${what} too large in tar header at offset ${at}`);
    }
    return v;
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new UnsafeArchiveError(`malformed ${what} ${JSON.stringify(s)} in tar header at offset ${at}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = h.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  const want = parseInt(stored, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

export function parsePax(data: Buffer, at: number): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // NUL padding after the last record
    const sp = data.indexOf(0x20, i);
    if (sp < 0) throw new UnsafeArchiveError(`malformed PAX record at offset ${at}`);
    const len = Number(data.toString('latin1', i, sp));
    if (!Number.isInteger(len) || len <= sp - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw new UnsafeArchiveError(`malformed PAX record at offset ${at}`);
    }
    const rec = data.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new UnsafeArchiveError(`malformed PAX record at offset ${at}`);
    out[rec.subarray(0, eq).toString('utf8')] = rec.subarray(eq + 1).toString('utf8');
    i += len;
  }
  return out;
}

async function readMeta(r: ByteReader, size: number, at: number): Promise<Buffer> {
  if (size > MAX_META) throw new UnsafeArchiveError(`tar metadata record of ${size} bytes at offset ${at} exceeds ${MAX_META}`);
  try {
    const data = size ? await r.read(size) : Buffer.alloc(0);
    if (!data) throw new UnsafeArchiveError(`truncated tar archive at offset ${at}`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await r.skip(pad);
    return data;
  } catch (e) {
    if (e instanceof TruncatedStreamError) throw new UnsafeArchiveError(`truncated tar archive at offset ${at}`);
    throw e;
  }
}

/** Iterate the entries of one tar stream. Stops at the end-of-archive marker (or a clean end of stream). */
export async function* readTar(r: ByteReader): AsyncGenerator<TarEntry> {
  let global: Record<string, string> = {};
  let local: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const at = r.offset;
    let h: Buffer | null;
    try {
      h = await r.read(BLOCK);
    } catch (e) {
      if (e instanceof TruncatedStreamError) throw new UnsafeArchiveError(`truncated tar header at offset ${at}`);
      throw e;
    }
    if (!h) return; // end of stream without the zero blocks: accepted
    if (h.every((b) => b === 0)) return; // end-of-archive marker
    if (!checksumOk(h)) throw new UnsafeArchiveError(`invalid tar header checksum at offset ${at}`);
    let type = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    const size = parseNumber(h.subarray(124, 136), 'size', at);
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      const data = await readMeta(r, size, at);
      if (type === 'x') local = { ...local, ...parsePax(data, at) };
      else if (type === 'g') global = { ...global, ...parsePax(data, at) };
      else if (type === 'L') longName = cstr(data);
      else longLink = cstr(data);
      continue;
    }
    const magic = h.subarray(257, 263).toString('latin1');
    const posix = magic === 'ustar\0';
    let name = cstr(h.subarray(0, 100));
    const prefix = posix ? cstr(h.subarray(345, 500)) : '';
    if (prefix) name = `${prefix}/${name}`;
    const pax = { ...global, ...local };
    if (longName !== undefined) name = longName;
    if (pax.path !== undefined) name = pax.path;
    // old (V7) archives mark directories only by a trailing slash on a NUL typeflag
    if (h[156] === 0 && name.endsWith('/')) type = '5';
    let linkname = cstr(h.subarray(157, 257));
    if (longLink !== undefined) linkname = longLink;
    if (pax.linkpath !== undefined) linkname = pax.linkpath;
    let bodySize = size;
    if (pax.size !== undefined) {
      if (!/^\d+$/.test(pax.size) || !Number.isSafeInteger(Number(pax.size))) throw new UnsafeArchiveError(`malformed PAX size at offset ${at}`);
      bodySize = Number(pax.size);
    }
    // header-only types carry no data whatever size is recorded (same rule as Go's archive/tar)
    if ('123456'.includes(type)) bodySize = 0;
    const mode = parseNumber(h.subarray(100, 108), 'mode', at);
    local = {};
    longName = undefined;
    longLink = undefined;

    let consumed = 0;
    const entry: TarEntry = {
      path: name,
      type,
      mode,
      size: bodySize,
      linkname,
      pax,
      body: async function* () {
        try {
          for await (const c of r.chunks(bodySize - consumed)) {
            consumed += c.length;
            yield c;
          }
        } catch (e) {
          if (e instanceof TruncatedStreamError) throw new UnsafeArchiveError(`truncated tar entry ${JSON.stringify(name)} at offset ${at}`);
          throw e;
        }
      },
    };
    yield entry;
    if (consumed < bodySize) {
      try {
        await r.skip(bodySize - consumed);
      } catch (e) {
        if (e instanceof TruncatedStreamError) throw new UnsafeArchiveError(`truncated tar entry ${JSON.stringify(name)} at offset ${at}`);
        throw e;
      }
    }
    const pad = (BLOCK - (bodySize % BLOCK)) % BLOCK;
    if (pad) {
      // tolerate a stream that ends right after the last entry's data
      const p = await r.peek(pad);
      if (p.length) await r.skip(p.length);
    }
  }
}
