/**
 * Confined execution of an overlay installer (talos-formats §10.2).
 *
 * The installer comes from an upstream overlay image (pulled by digest, signature-verified), but it is still run
 * defensively:
 *   - a copy of the executable in a private temporary directory (also the default working directory), removed
 *     afterwards;
 *   - a clean environment: PATH only;
 *   - its own process group (detached), killed as a whole with SIGKILL on timeout, on output overflow and after it
 *     exits (so stray background children do not survive it);
 *   - stdin closed right after the YAML document; stdout and stderr capped at `maxOutputBytes` each (overflow kills
 *     it and fails the run); a non-zero exit fails with the tail of stderr;
 *   - when running as root, the process is started as `nobody` (setgid + setuid, supplementary groups dropped by
 *     libuv); see `AccessPlan` for how the paths it must read/write are made accessible.
 * Process group, kill, capture and environment rules are those of @factory/process; this module adds the private
 * copy, the identity switch and the access grants.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessError, run } from '@factory/process';

export interface RunLimits {
  /** Wall-clock limit; the whole process group is killed when it expires. Default 60 s. */
  timeoutMs?: number;
  /** Limit for stdout and (separately) stderr. Default 1 MiB. */
  maxOutputBytes?: number;
  /** Working directory to use as is (must exist and be usable by the run-as user). Default: a private temp dir. */
  cwd?: string;
  /**
   * User to run as. 'auto' (default): `nobody` when this process is root, else the current user.
   * 'current': never switch. 'nobody': always `nobody` (requires root). Or explicit ids (requires root unless equal
   * to the current ones).
   */
  runAs?: 'auto' | 'current' | 'nobody' | { uid: number; gid: number };
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_OUTPUT = 1024 * 1024;
export const INSTALLER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const STDERR_TAIL = 4096;

export type FailureReason = 'exit' | 'signal' | 'timeout' | 'output' | 'spawn' | 'access' | 'protocol';

export class OverlayInstallerError extends Error {
  constructor(
    message: string,
    readonly reason: FailureReason,
    readonly stderrTail = '',
    readonly exitCode: number | null = null,
  ) {
    super(message);
    this.name = 'OverlayInstallerError';
  }
}

export interface Identity {
  uid: number;
  gid: number;
}

function currentIdentity(): Identity {
  return { uid: process.getuid!(), gid: process.getgid!() };
}

/** uid/gid of `nobody` from /etc/passwd (65534/65534 when absent). */
export function nobodyIdentity(): Identity {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === 'nobody' && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // fall through
  }
  return { uid: 65534, gid: 65534 };
}

/** The identity the installer will run as. */
export function resolveRunAs(runAs: RunLimits['runAs'] = 'auto'): Identity {
  const cur = currentIdentity();
  if (runAs === 'current') return cur;
  if (runAs === 'auto') return cur.uid === 0 ? nobodyIdentity() : cur;
  const target = runAs === 'nobody' ? nobodyIdentity() : runAs;
  if ((target.uid !== cur.uid || target.gid !== cur.gid) && cur.uid !== 0) {
    throw new OverlayInstallerError(`cannot run the overlay installer as ${target.uid}:${target.gid} without root`, 'access');
  }
  return target;
}

/** Permission class (owner, group, other) that applies to `who` on an inode, as a shift for the rwx bits. */
function classShift(st: fs.Stats, who: Identity): number {
  return st.uid === who.uid ? 6 : st.gid === who.gid ? 3 : 0;
}

/** Mode-bit access check of one inode for `who` (no ACLs; supplementary groups are dropped for the child). */
function permits(st: fs.Stats, who: Identity, bits: number): boolean {
  if (who.uid === 0) return true;
  return ((st.mode >> classShift(st, who)) & bits) === bits;
}

/**
 * Give `who` the permission `bits` (rwx, 3 bits) on `p`, adding them to the class that applies to it. Only
 * inodes owned by us are changed, and only ever by ADDING bits (monotonic, so concurrent builds sharing a
 * directory cannot undo each other); anything else is an `access` error.
 */
async function grantBits(p: string, st: fs.Stats, who: Identity, bits: number, why: string): Promise<void> {
  if (permits(st, who, bits)) return;
  const me = currentIdentity();
  if (st.uid !== me.uid) {
    throw new OverlayInstallerError(
      `overlay installer: ${p} (mode ${(st.mode & 0o7777).toString(8)}, owner ${st.uid}:${st.gid}) is not ${why} by ` +
        `${who.uid}:${who.gid} and is not ours to change; fix its permissions or pass runAs: 'current'`,
      'access',
    );
  }
  await fs.promises.chmod(p, (st.mode & 0o7777) | (bits << classShift(st, who)));
}

/**
 * Every ancestor directory of `p` must be searchable by `who`: our own directories get search (x) permission for
 * that user's class — search only, not listing, so e.g. a 0700 mkdtemp build directory becomes 0701.
 */
async function ensureTraversal(p: string, who: Identity): Promise<void> {
  const abs = path.resolve(p);
  const parts = abs.split(path.sep).filter(Boolean);
  let cur: string = path.sep;
  for (let i = 0; i < parts.length; i++) {
    await grantBits(cur, await fs.promises.stat(cur), who, 0o1, `searchable (needed to reach ${abs})`);
    cur = path.join(cur, parts[i]);
  }
}

/** `p` (file or tree) must be readable by `who`; our own entries get r (files) / r-x (directories) added. */
async function ensureReadableTree(p: string, who: Identity): Promise<void> {
  const st = await fs.promises.lstat(p);
  if (st.isSymbolicLink()) return; // resolved by the installer with its own rights
  await grantBits(p, st, who, st.isDirectory() ? 0o5 : 0o4, 'readable');
  if (st.isDirectory()) for (const e of await fs.promises.readdir(p)) await ensureReadableTree(path.join(p, e), who);
}

interface Owned {
  path: string;
  uid: number;
  gid: number;
}

async function listTree(p: string, out: Owned[]): Promise<void> {
  const st = await fs.promises.lstat(p);
  out.push({ path: p, uid: st.uid, gid: st.gid });
  if (st.isDirectory()) for (const e of await fs.promises.readdir(p)) await listTree(path.join(p, e), out);
}

/**
 * Paths an install run needs, and how access is granted when the installer runs as another user:
 *   - ancestors of every path: must be searchable; our own directories get search permission added (o+x or the
 *     class that applies), never listing; directories of other owners are not touched (access error instead);
 *   - `read` (artifacts): must be readable; our own entries get read (and directory search) permission added —
 *     this is public overlay-image content;
 *   - `writeTrees` (mountPrefix): handed over for the run (`lchown -R` to the run-as user), then every entry is
 *     given back: entries that existed keep their original owner, new ones get ours;
 *   - `writeFiles` (the disk image): same, for single files.
 * Nothing is silently run as root: a path that cannot be made accessible is an `access` error naming it.
 */
export interface AccessPlan {
  read: string[];
  writeTrees: string[];
  writeFiles: string[];
}

class Grant {
  private before = new Map<string, Owned>();
  private roots: string[] = [];
  constructor(private readonly who: Identity) {}

  async apply(plan: AccessPlan): Promise<void> {
    for (const p of [...plan.read, ...plan.writeTrees, ...plan.writeFiles]) await ensureTraversal(p, this.who);
    for (const p of plan.read) await ensureReadableTree(p, this.who);
    for (const p of [...plan.writeTrees, ...plan.writeFiles]) {
      const entries: Owned[] = [];
      await listTree(p, entries);
      this.roots.push(p);
      for (const e of entries) {
        this.before.set(e.path, e);
        await fs.promises.lchown(e.path, this.who.uid, this.who.gid);
      }
    }
  }

  async restore(): Promise<void> {
    const me = currentIdentity();
    for (const root of this.roots) {
      const now: Owned[] = [];
      await listTree(root, now).catch(() => undefined);
      for (const e of now) {
        const orig = this.before.get(e.path);
        await fs.promises.lchown(e.path, orig?.uid ?? me.uid, orig?.gid ?? me.gid).catch(() => undefined);
      }
    }
  }
}

export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

/** Run `installer <subcommand>` confined as described in the module comment, feeding `input` on stdin. */
export async function runInstaller(
  installer: string,
  subcommand: string,
  input: string,
  limits: RunLimits = {},
  access: AccessPlan = { read: [], writeTrees: [], writeFiles: [] },
): Promise<RunResult> {
  const timeoutMs = limits.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOut = limits.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const who = resolveRunAs(limits.runAs);
  const me = currentIdentity();
  const switching = who.uid !== me.uid || who.gid !== me.gid;

  const st = await fs.promises.stat(installer).catch(() => undefined);
  if (!st?.isFile()) throw new OverlayInstallerError(`overlay installer ${installer} not found`, 'spawn');

  const priv = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'overlay-installer-'));
  const grant = new Grant(who);
  try {
    const exe = path.join(priv, path.basename(installer) || 'installer');
    await fs.promises.copyFile(installer, exe);
    await fs.promises.chmod(exe, 0o555);
    if (switching) {
      await fs.promises.chown(priv, who.uid, who.gid);
      await ensureTraversal(exe, who); // the temp root itself must be reachable
    }
    if (limits.cwd && switching) await ensureTraversal(path.join(limits.cwd, 'entry'), who); // cwd itself included
    if (switching) await grant.apply(access);
    return await spawnConfined(exe, subcommand, input, { cwd: limits.cwd ?? priv, timeoutMs, maxOut, who: switching ? who : undefined });
  } finally {
    if (switching) await grant.restore();
    await fs.promises.rm(priv, { recursive: true, force: true });
  }
}

/** The installer run itself: @factory/process with an empty environment (PATH only), SIGKILL at the timeout and
 * overflow as a failure; its failures become OverlayInstallerErrors. */
async function spawnConfined(
  exe: string,
  subcommand: string,
  input: string,
  o: { cwd: string; timeoutMs: number; maxOut: number; who?: Identity },
): Promise<RunResult> {
  try {
    const r = await run(exe, [subcommand], {
      cwd: o.cwd,
      baseEnv: 'empty',
      env: { PATH: INSTALLER_PATH },
      input,
      timeoutMs: o.timeoutMs,
      killGraceMs: 0,
      maxOutputBytes: o.maxOut,
      onOverflow: 'fail',
      ...(o.who ? { uid: o.who.uid, gid: o.who.gid } : {}),
    });
    return { stdout: r.stdout, stderr: r.stderr.slice(-STDERR_TAIL) };
  } catch (e) {
    if (!(e instanceof ProcessError)) throw e;
    const errTail = e.stderr.slice(-STDERR_TAIL);
    const stderr = errTail.trim();
    switch (e.reason) {
      case 'exit':
      case 'signal': {
        const how = e.signal ? `killed by ${e.signal}` : `exited with status ${e.code}`;
        throw new OverlayInstallerError(`overlay installer ${subcommand} ${how}${stderr ? `: ${stderr}` : ''}`, e.reason, errTail, e.code);
      }
      case 'timeout':
        throw new OverlayInstallerError(`overlay installer ${subcommand} ${e.detail}${stderr ? `; stderr: ${stderr}` : ''}`, 'timeout', errTail, e.code);
      default:
        throw new OverlayInstallerError(`overlay installer ${subcommand}: ${e.detail}${stderr ? `; stderr: ${stderr}` : ''}`, e.reason, errTail, e.code);
    }
  }
}
