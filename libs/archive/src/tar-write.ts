/**
 * The factory's tar writer: deterministic, streaming, byte-compatible with Go's archive/tar for what the factory
 * writes (installer image layers, docker-save tarballs).
 *
 * - Owner 0:0, empty user/group names, one mtime for every member (default 0, as in Go-built image layers).
 * - Names: ASCII names up to 100 bytes go into the ustar name field, up to 256 via the ustar prefix split (Go's
 *   rule: the longest prefix that leaves a name <= 100 bytes); longer or non-ASCII names, link targets that do not
 *   fit, sizes beyond 8 GiB and caller-given records (SELinux labels) go into a PAX extended header (`x`, named
 *   `PaxHeaders.0/<base name>`, records sorted by key) in front of the member; the ustar fields then hold an ASCII
 *   stand-in.
 * - Entries are written in the order given; a hard link must come after the file it links to.
 * - The archive ends with two zero blocks and no record padding (as Go writes it).
 */
import { fileChunks } from './file';
import {
  BLOCK,
  MAX_OCTAL_SIZE,
  paxRecord,
  portableName,
  splitUstarName,
  tarPadding,
  TarTypeflag,
  ustarBlock,
} from './tar-header';

interface EntryBase {
  /** member name, '/'-separated, relative (a directory gets its trailing '/' added) */
  name: string;
  /** permission bits (and setuid/setgid/sticky) */
  mode: number;
  /** extra PAX records (e.g. `SCHILY.xattr.security.selinux`) */
  pax?: Record<string, string>;
}

export type TarEntry =
  | (EntryBase & {
      type: 'file';
      /** bytes recorded in the header; the stream fails if the content turns out to have another length */
      size: number;
      /** content: in memory (small) or streamed from a file on disk; neither means empty */
      data?: Buffer;
      file?: string;
      /** open `file` with O_NOFOLLOW */
      noFollow?: boolean;
    })
  | (EntryBase & { type: 'dir' })
  | (EntryBase & { type: 'symlink'; target: string })
  | (EntryBase & { type: 'hardlink'; target: string });

export interface TarWriteOptions {
  /** mtime of every member (default 0) */
  mtime?: number;
  /** devmajor/devminor as octal zeros, as Go writes them (default true); false leaves them NUL */
  deviceNumbers?: boolean;
}

const TYPEFLAG: Record<TarEntry['type'], TarTypeflag> = { file: '0', hardlink: '1', symlink: '2', dir: '5' };

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Header block(s) of one member: a PAX extended header first when needed, then the ustar block. */
export function tarEntryHeader(e: TarEntry, o: TarWriteOptions = {}): Buffer {
  const mtime = o.mtime ?? 0;
  const deviceNumbers = o.deviceNumbers ?? true;
  const name = e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
  const size = e.type === 'file' ? e.size : 0;
  const linkname = e.type === 'symlink' || e.type === 'hardlink' ? e.target : undefined;
  const records: Record<string, string> = { ...(e.pax ?? {}) };
  const split = splitUstarName(name);
  if (!split) records.path = name;
  const linkFits = linkname === undefined || (/^[\x01-\x7f]*$/.test(linkname) && linkname.length <= 100);
  if (!linkFits) records.linkpath = linkname!;
  if (size > MAX_OCTAL_SIZE) records.size = String(size);
  const main = ustarBlock({
    name: split ? split.name : portableName(name),
    prefix: split ? split.prefix : '',
    mode: e.mode,
    size: size > MAX_OCTAL_SIZE ? 0 : size,
    mtime,
    type: TYPEFLAG[e.type],
    linkname: linkname === undefined ? undefined : linkFits ? linkname : portableName(linkname),
    deviceNumbers,
  });
  const keys = Object.keys(records).sort(byteOrder);
  if (keys.length === 0) return main;
  const body = Buffer.concat(keys.map((k) => paxRecord(k, records[k])));
  const trimmed = name.replace(/\/+$/, '');
  const base = portableName(trimmed.slice(trimmed.lastIndexOf('/') + 1)).slice(-80);
  const pax = ustarBlock({ name: `PaxHeaders.0/${base}`, mode: 0o644, size: body.length, mtime, type: 'x', deviceNumbers });
  return Buffer.concat([pax, body, tarPadding(body.length), main]);
}

function checkData(e: TarEntry): void {
  if (e.type !== 'file') return;
  if (e.data !== undefined && e.data.length !== e.size) throw new Error(`tar: ${e.name} has ${e.data.length} bytes of data, header says ${e.size}`);
  if (e.data === undefined && e.file === undefined && e.size !== 0) throw new Error(`tar: no content for ${e.name}`);
}

/** The whole archive as a stream of buffers; file contents are read from disk as they are needed. */
export async function* tarStream(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>, o: TarWriteOptions = {}): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    checkData(e);
    yield tarEntryHeader(e, o);
    if (e.type !== 'file' || e.size === 0) continue;
    if (e.data !== undefined) yield e.data;
    else yield* fileChunks({ path: e.file!, size: e.size, noFollow: e.noFollow });
    const pad = tarPadding(e.size);
    if (pad.length) yield pad;
  }
  yield Buffer.alloc(2 * BLOCK);
}

/** A small archive of in-memory entries (test fixtures, metadata layers), built synchronously. */
export function tarBuffer(entries: Iterable<TarEntry>, o: TarWriteOptions = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    checkData(e);
    if (e.type === 'file' && e.file !== undefined) throw new Error(`tar: ${e.name}: tarBuffer takes in-memory data only`);
    parts.push(tarEntryHeader(e, o));
    if (e.type === 'file' && e.size > 0) parts.push(e.data!, tarPadding(e.size));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
