/**
 * The BOOT partition's XFS file system, built as a file without mounting (talos-formats.md §8.2):
 * `mkfs.xfs -n ftype=1 -c options=<cfg> -f -L BOOT -s size=<sector> -p <protofile> -m uuid=<GUID(BOOT)>`, the protofile
 * mapping every file to root:root.
 *
 * Two things differ from the imager and are handled here:
 *  * config file: the version's `lts_*.conf` (quirk `xfsMkfsConfig`) is used when installed. Otherwise the newest
 *    installed `lts_X.Y.conf` not newer than the wanted one is used, else none (mkfs defaults). When mkfs.xfs rejects
 *    an option of the config file (Debian bookworm's mkfs.xfs 6.1 rejects `nrext64` of its own lts_6.1.conf), a copy
 *    without that option is used instead. The resolution is reported in `XfsBuildInfo`.
 *  * timestamps: mkfs.xfs (before the SOURCE_DATE_EPOCH support of newer xfsprogs) stamps every inode it creates
 *    with the current time. After mkfs the inodes (root, realtime bitmap/summary, and every file and directory,
 *    found with `xfs_db ncheck`) get atime/mtime/ctime/crtime = epoch, and their CRC32C is recomputed, so two builds
 *    are identical.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EnvOverrides, ProcessError, run } from '@factory/process';
import { crc32c } from '../checksum';

export const XFS_CONFIG_DIR = '/usr/share/xfsprogs/mkfs';

export interface XfsConfigResolution {
  /** what the version asks for (quirk), e.g. /usr/share/xfsprogs/mkfs/lts_6.12.conf */
  wanted: string;
  /** the installed file used, undefined = no `-c` */
  used?: string;
  /** options dropped because this mkfs.xfs does not know them, as `[section] key=value` */
  droppedOptions: string[];
  note: string;
}

export interface XfsBuildOptions {
  /** the image file to create (overwritten) */
  file: string;
  sizeBytes: bigint;
  label: string;
  uuid: string;
  sectorSize: number;
  /** staging root; its top-level entries except `exclude` become the file system root */
  sourceDir: string;
  exclude?: string[];
  /** quirk config path (see xfsMkfsConfig) */
  configFile: string;
  epoch: number;
  workDir: string;
  env: EnvOverrides;
}

export interface XfsBuildInfo {
  config: XfsConfigResolution;
  mkfsArgs: string[];
  /** inode numbers whose timestamps were normalised */
  inodes: bigint[];
}

function ltsVersion(file: string): [number, number] | undefined {
  const m = /^lts_(\d+)\.(\d+)\.conf$/.exec(path.basename(file));
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Pick the config file (see module comment). */
export function resolveXfsConfig(wanted: string, dir = XFS_CONFIG_DIR): Omit<XfsConfigResolution, 'droppedOptions'> {
  if (fs.existsSync(wanted)) return { wanted, used: wanted, note: `using ${wanted}` };
  const want = ltsVersion(wanted);
  let best: { file: string; v: [number, number] } | undefined;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    names = [];
  }
  for (const n of names) {
    const v = ltsVersion(n);
    if (!v) continue;
    if (want && (v[0] > want[0] || (v[0] === want[0] && v[1] > want[1]))) continue;
    if (!best || v[0] > best.v[0] || (v[0] === best.v[0] && v[1] > best.v[1])) best = { file: path.join(dir, n), v };
  }
  if (best) return { wanted, used: best.file, note: `${wanted} is not installed; using the newest older one, ${best.file}` };
  return { wanted, note: `${wanted} is not installed and no older lts_*.conf exists; mkfs.xfs defaults` };
}

/** Drop `key` from `[section]` of an mkfs.xfs config text. */
function dropOption(text: string, section: string, key: string): string {
  let cur = '';
  return text
    .split('\n')
    .filter((line) => {
      const sec = /^\s*\[([^\]]+)\]\s*$/.exec(line);
      if (sec) {
        cur = sec[1].trim();
        return true;
      }
      const kv = /^\s*([A-Za-z0-9_]+)\s*=/.exec(line);
      return !(kv && cur === section && kv[1] === key);
    })
    .join('\n');
}

const PROTO_NAME = /^[^\s/]+$/;

/** XFS protofile of `dir` (sorted, uid/gid 0, modes from the staged files; regular files and directories only). */
export async function xfsProtofile(dir: string, exclude: string[] = []): Promise<string> {
  const lines = ['/', '0 0'];
  const mode = (st: fs.Stats, t: string) => `${t}${st.mode & 0o4000 ? 'u' : '-'}${st.mode & 0o2000 ? 'g' : '-'}${(st.mode & 0o777).toString(8).padStart(3, '0')} 0 0`;
  const walk = async (d: string, depth: number, skip: string[]) => {
    const names = (await fsp.readdir(d)).filter((n) => !skip.includes(n)).sort();
    for (const n of names) {
      if (!PROTO_NAME.test(n)) throw new Error(`file name ${JSON.stringify(n)} cannot be put into an XFS protofile`);
      const p = path.join(d, n);
      const st = await fsp.lstat(p);
      const ind = ' '.repeat(depth);
      if (st.isDirectory()) {
        lines.push(`${ind}${n} ${mode(st, 'd')}`);
        await walk(p, depth + 1, []);
        lines.push(`${ind}$`);
      } else if (st.isFile()) {
        if (/\s/.test(p)) throw new Error(`path ${JSON.stringify(p)} cannot be put into an XFS protofile`);
        lines.push(`${ind}${n} ${mode(st, '-')} ${p}`);
      } else {
        throw new Error(`unsupported file type in BOOT staging: ${p}`);
      }
    }
  };
  lines.push(mode(await fsp.stat(dir), 'd'));
  await walk(dir, 1, exclude);
  lines.push('$');
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------- inode timestamp normalisation

export interface XfsSuperblock {
  blockSize: number;
  rootIno: bigint;
  rbmIno: bigint;
  rsumIno: bigint;
  agBlocks: number;
  agCount: number;
  inodeSize: number;
  agBlkLog: number;
  inoPBLog: number;
  v5: boolean;
  uuid: string;
  label: string;
}

export function parseXfsSuperblock(sb: Buffer): XfsSuperblock {
  if (sb.readUInt32BE(0) !== 0x58465342) throw new Error('not an XFS superblock');
  const u = sb.subarray(32, 48).toString('hex');
  return {
    blockSize: sb.readUInt32BE(4),
    rootIno: sb.readBigUInt64BE(56),
    rbmIno: sb.readBigUInt64BE(64),
    rsumIno: sb.readBigUInt64BE(72),
    agBlocks: sb.readUInt32BE(84),
    agCount: sb.readUInt32BE(88),
    inodeSize: sb.readUInt16BE(104),
    agBlkLog: sb[124],
    inoPBLog: sb[123],
    v5: (sb.readUInt16BE(100) & 0xf) === 5,
    uuid: `${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20)}`,
    label: sb.subarray(108, 120).toString('latin1').replace(/\0+$/, ''),
  };
}

export function xfsInodeOffset(sb: XfsSuperblock, ino: bigint): bigint {
  const agShift = BigInt(sb.agBlkLog + sb.inoPBLog);
  const agno = ino >> agShift;
  const agino = ino & ((1n << agShift) - 1n);
  const agbno = agino >> BigInt(sb.inoPBLog);
  const idx = agino & ((1n << BigInt(sb.inoPBLog)) - 1n);
  return (agno * BigInt(sb.agBlocks) + agbno) * BigInt(sb.blockSize) + idx * BigInt(sb.inodeSize);
}

const DI_FLAG2_BIGTIME = 1n << 3n;
const BIGTIME_EPOCH_OFFSET = 2n ** 31n;

/** Set an inode's timestamps (in place) and refresh its CRC. */
export function setInodeTimes(inode: Buffer, sb: XfsSuperblock, epoch: number, ino: bigint): void {
  if (inode.readUInt16BE(0) !== 0x494e) throw new Error(`inode ${ino}: bad magic`);
  const version = inode[4];
  const bigtime = version >= 3 && (inode.readBigUInt64BE(120) & DI_FLAG2_BIGTIME) !== 0n;
  const put = (off: number) => {
    if (bigtime) inode.writeBigUInt64BE((BigInt(epoch) + BIGTIME_EPOCH_OFFSET) * 1000000000n, off);
    else {
      inode.writeInt32BE(epoch, off);
      inode.writeUInt32BE(0, off + 4);
    }
  };
  put(32); // atime
  put(40); // mtime
  put(48); // ctime
  if (version >= 3) {
    put(144); // crtime
    if (inode.readBigUInt64BE(152) !== ino) throw new Error(`inode ${ino}: number mismatch (${inode.readBigUInt64BE(152)})`);
  }
  if (sb.v5) {
    inode.writeUInt32LE(0, 100);
    inode.writeUInt32LE(crc32c(inode), 100);
  }
}

async function listInodes(file: string, sb: XfsSuperblock, env: EnvOverrides): Promise<bigint[]> {
  // every inode must be found: a listing cut short would leave unstamped inodes, so overflow fails the build
  const { stdout } = await run('xfs_db', ['-r', '-c', 'blockget -n', '-c', 'ncheck', file], { env, maxOutputBytes: 256 * 1024 * 1024, onOverflow: 'fail' });
  const set = new Set<bigint>([sb.rootIno, sb.rbmIno, sb.rsumIno]);
  for (const line of stdout.toString('utf8').split('\n')) {
    const m = /^\s*(\d+)\s+\S/.exec(line);
    if (m) set.add(BigInt(m[1]));
  }
  return [...set].filter((i) => i > 0n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export async function normaliseXfsTimes(file: string, epoch: number, env: EnvOverrides): Promise<bigint[]> {
  const fh = await fsp.open(file, 'r+');
  try {
    const sbBuf = Buffer.alloc(512);
    await fh.read(sbBuf, 0, 512, 0);
    const sb = parseXfsSuperblock(sbBuf);
    const inodes = await listInodes(file, sb, env);
    for (const ino of inodes) {
      const off = Number(xfsInodeOffset(sb, ino));
      const buf = Buffer.alloc(sb.inodeSize);
      await fh.read(buf, 0, sb.inodeSize, off);
      setInodeTimes(buf, sb, epoch, ino);
      await fh.write(buf, 0, sb.inodeSize, off);
    }
    return inodes;
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------- build

export async function buildXfs(o: XfsBuildOptions): Promise<XfsBuildInfo> {
  const proto = path.join(o.workDir, 'boot.proto');
  await fsp.writeFile(proto, await xfsProtofile(o.sourceDir, o.exclude));
  const res = resolveXfsConfig(o.configFile);
  const dropped: string[] = [];
  let cfgText = res.used ? await fsp.readFile(res.used, 'utf8') : undefined;
  let cfgPath = res.used;
  for (let attempt = 0; ; attempt++) {
    await fsp.rm(o.file, { force: true });
    const fh = await fsp.open(o.file, 'w');
    await fh.truncate(Number(o.sizeBytes));
    await fh.close();
    const args = ['-n', 'ftype=1'];
    if (cfgPath) args.push('-c', `options=${cfgPath}`);
    args.push('-f', '-L', o.label, '-s', `size=${o.sectorSize}`, '-p', proto, '-m', `uuid=${o.uuid}`, o.file);
    try {
      await run('mkfs.xfs', args, { env: o.env });
      const inodes = await normaliseXfsTimes(o.file, o.epoch, o.env);
      const note = dropped.length ? `${res.note}; dropped options unknown to this mkfs.xfs: ${dropped.join(', ')}` : res.note;
      return { config: { wanted: res.wanted, used: res.used, droppedOptions: dropped, note }, mkfsArgs: args, inodes };
    } catch (e) {
      const m = e instanceof ProcessError ? /invalid config file option: \[([^\]]+)\]: ([A-Za-z0-9_]+)=(\S*)/.exec(`${e.stderr}\n${e.stdout}`) : null;
      if (!m || cfgText === undefined || attempt >= 16) throw e;
      dropped.push(`[${m[1]}] ${m[2]}=${m[3]}`);
      cfgText = dropOption(cfgText, m[1], m[2]);
      cfgPath = path.join(o.workDir, `mkfs-xfs-${path.basename(res.used!)}`);
      await fsp.writeFile(cfgPath, cfgText);
    }
  }
}
