/**
 * Privilege separation for the embedded factory. When the launcher runs as root, only the signing service keeps
 * root: its key directory is root-owned 0700 with 0600 files. Everything else — the four other services, Redis and
 * the demo registry — runs as an unprivileged user (`nobody` by default, FACTORY_SERVICE_USER to choose another),
 * which cannot open the keys. That user gets its own writable directories (object storage, build cache, Redis
 * data, a HOME and, when the system temp directory is unusable, a TMPDIR); the data directory itself stays
 * root-owned and not writable by it, so it cannot swap the key directory for one of its own.
 *
 * Before anything is handed over, a probe process started as that user checks that it can reach what it needs (the
 * compiled services and their node_modules, the demo registry, the port). If it cannot — e.g. a clone under /root,
 * which is mode 0700 — FACTORY_PRIVILEGE_SEPARATION=auto (the default) logs why and runs everything as root as
 * before; `on` refuses to start instead; `off` never separates.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Identity {
  uid: number;
  gid: number;
  name: string;
}

/** Environment variables that name key material: only the signing service may see them. */
export const SIGNING_ONLY_ENV = ['FACTORY_COSIGN_KEY_FILE', 'FACTORY_SIGNING_KEY_DIR'];

export function isSigningOnlyEnv(name: string): boolean {
  return SIGNING_ONLY_ENV.includes(name) || /^FACTORY_SIGNING_/.test(name) || /^FACTORY_\w*_KEY_FILE$/.test(name) || /^FACTORY_SECUREBOOT_/.test(name);
}

/** The variables of `env` that only the signing service gets (key files, the key directory, Secure Boot settings). */
export function signingOnlyEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (isSigningOnlyEnv(k)) out[k] = v;
  return out;
}

/** A copy of `env` without the variables that point at private keys. */
export function withoutKeyEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!isSigningOnlyEnv(k)) out[k] = v;
  return out;
}

/** FACTORY_SERVICE_USER: a user name from /etc/passwd, or `uid[:gid]`. */
export function resolveUser(spec: string): Identity {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec);
  let passwd: string[][] = [];
  try {
    passwd = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  } catch {
    /* no passwd: numeric ids only */
  }
  if (numeric) {
    const uid = Number(numeric[1]);
    const entry = passwd.find((f) => f.length >= 4 && Number(f[2]) === uid);
    const gid = numeric[2] !== undefined ? Number(numeric[2]) : entry ? Number(entry[3]) : uid;
    return { uid, gid, name: entry?.[0] ?? String(uid) };
  }
  const entry = passwd.find((f) => f[0] === spec && f.length >= 4);
  if (entry) return { uid: Number(entry[2]), gid: Number(entry[3]), name: spec };
  if (spec === 'nobody') return { uid: 65534, gid: 65534, name: 'nobody' };
  throw new Error(`FACTORY_SERVICE_USER: no user ${JSON.stringify(spec)} in /etc/passwd (use a name or uid[:gid])`);
}

export interface PrivsepInput {
  who: Identity;
  dataDir: string;
  /** The signing service's key directory (generated keys). */
  keyDir: string;
  /** A configured key file (FACTORY_COSIGN_KEY_FILE), if any. */
  keyFile?: string;
  /** Directories the unprivileged processes write (created, then handed over recursively). */
  writable: string[];
  /** Files or directories they must be able to read. */
  readable: string[];
  /** Service entry points: each must be loadable, with its dependencies, by the unprivileged user. */
  entries: string[];
  /** TCP ports the unprivileged gateway binds. */
  ports: number[];
}

export interface PrivsepPlan {
  who: Identity;
  /** Environment for every unprivileged process (HOME, maybe TMPDIR, USER). */
  env: NodeJS.ProcessEnv;
  warnings: string[];
}

const PROBE = `
const fs = require('fs'), path = require('path');
const spec = JSON.parse(process.argv[1]);
const problems = [];
const can = (p, mode) => { try { fs.accessSync(p, mode); return true; } catch (e) { return e.code; } };
const isDir = (p) => { try { return fs.statSync(p).isDirectory(); } catch { return false; } };
for (const p of spec.readable) {
  const r = can(p, fs.constants.R_OK | (isDir(p) ? fs.constants.X_OK : 0));
  if (r !== true) problems.push('cannot read ' + p + ' (' + r + ')');
}
for (const e of spec.entries) {
  const r = can(e, fs.constants.R_OK);
  if (r !== true) { problems.push('cannot read ' + e + ' (' + r + ')'); continue; }
  for (const dep of ['@factory/config', '@factory/queue']) {
    try { fs.accessSync(require.resolve(dep, { paths: [path.dirname(e)] }), fs.constants.R_OK); }
    catch (err) { problems.push('cannot load ' + dep + ' for ' + e + ' (' + (err.code || err.message) + ')'); }
  }
}
for (const d of spec.writableParents) {
  const r = can(d, fs.constants.X_OK);
  if (r !== true) problems.push('cannot reach ' + d + ' (' + r + ')');
}
for (const d of spec.mustNotWrite) {
  if (can(d, fs.constants.W_OK) === true) problems.push(d + ' is writable (it holds the key directory)');
}
for (const p of spec.mustNotRead) {
  if (fs.existsSync(p) && can(p, fs.constants.R_OK) === true) problems.push('key path ' + p + ' is readable');
}
const tmp = require('os').tmpdir();
process.stdout.write(JSON.stringify({ problems, tmpOk: can(tmp, fs.constants.W_OK | fs.constants.X_OK) === true, tmp }));
`;

/** Runs the access probe as `who`: the problems that stop separation, and whether the system temp dir is usable. */
function probe(who: Identity, spec: object): { problems: string[]; tmpOk: boolean; tmp: string } {
  const r = spawnSync(process.execPath, ['-e', PROBE, JSON.stringify(spec)], {
    uid: who.uid,
    gid: who.gid,
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: process.env.TMPDIR ?? '' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) return { problems: [`probe as ${who.name} failed: ${(r.error?.message ?? r.stderr ?? '').trim().slice(0, 500)}`], tmpOk: false, tmp: '' };
  return JSON.parse(r.stdout);
}

/** Adds or removes permission bits on a directory we own; only ever on root-owned paths. */
function setMode(p: string, mode: number): void {
  const st = fs.statSync(p);
  if ((st.mode & 0o7777) !== mode) fs.chmodSync(p, mode);
}

/** chown -R to `who`, only where needed (cheap on a warm start), the top directory last. */
function handOver(dir: string, who: Identity): void {
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    if (st.uid !== who.uid || st.gid !== who.gid) fs.lchownSync(p, who.uid, who.gid);
  };
  walk(dir);
  setMode(dir, 0o700);
}

/** The key directory: root-owned 0700, everything in it root-owned (directories 0700, files 0600). */
export function lockKeyDir(keyDir: string): void {
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const walk = (p: string, top: boolean) => {
    const st = top ? fs.statSync(p) : fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    if (st.uid !== 0 || st.gid !== 0) (top ? fs.chownSync : fs.lchownSync)(p, 0, 0);
    if (st.isDirectory()) {
      setMode(p, 0o700);
      for (const e of fs.readdirSync(p)) walk(path.join(p, e), false);
    } else if (!top) {
      setMode(p, 0o600);
    }
  };
  walk(keyDir, true);
}

/**
 * Checks that separation can work and prepares the file system for it. Returns the plan, or throws with every
 * problem when it cannot work (the caller decides between falling back and refusing to start).
 */
export function preparePrivsep(input: PrivsepInput): PrivsepPlan {
  const { who, dataDir } = input;
  const warnings: string[] = [];
  const problems: string[] = [];
  if (who.uid === 0) throw new Error('FACTORY_SERVICE_USER must not be root');

  // The data directory stays ours; the unprivileged user may traverse it (search only) but never write to it,
  // or it could replace the key directory. Its sub-directories are created here, still root-owned, for the probe.
  const dst = fs.statSync(dataDir);
  // (A shared sticky directory such as /tmp itself is left alone; the probe below then refuses it.)
  if (dst.uid === 0 && !(dst.mode & 0o1000)) setMode(dataDir, (dst.mode & 0o7777 & ~0o022) | 0o001);
  lockKeyDir(input.keyDir);
  for (const d of input.writable) fs.mkdirSync(d, { recursive: true, mode: 0o700 });

  const unprivilegedPortStart = (() => {
    try {
      return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    } catch {
      return 1024;
    }
  })();
  for (const p of input.ports) if (p > 0 && p < unprivilegedPortStart) problems.push(`port ${p} needs root (ip_unprivileged_port_start is ${unprivilegedPortStart})`);

  const home = path.join(dataDir, 'home');
  const tmpFallback = path.join(dataDir, 'tmp');
  const result = probe(who, {
    readable: input.readable,
    entries: input.entries,
    writableParents: [...new Set([...input.writable, home].map((d) => path.dirname(d)))],
    mustNotWrite: [path.dirname(input.keyDir)],
    mustNotRead: [input.keyDir, path.join(input.keyDir, 'cosign.key')],
  });
  problems.push(...result.problems);
  if (problems.length) throw new Error(problems.join('; '));

  if (input.keyFile) {
    const r = probe(who, { readable: [], entries: [], writableParents: [], mustNotWrite: [], mustNotRead: [input.keyFile] });
    if (r.problems.length) warnings.push(`FACTORY_COSIGN_KEY_FILE ${input.keyFile} is readable by ${who.name}: make it 0600 and owned by root`);
  }

  const writable = [...input.writable, home];
  const env: NodeJS.ProcessEnv = { HOME: home, USER: who.name, LOGNAME: who.name };
  if (!result.tmpOk) {
    writable.push(tmpFallback);
    env.TMPDIR = tmpFallback;
    warnings.push(`${result.tmp || os.tmpdir()} is not writable by ${who.name}; its temporary files go to ${tmpFallback}`);
  }
  for (const d of writable) {
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    handOver(d, who);
  }
  return { who, env, warnings };
}
