/**
 * The embedded Redis (started when REDIS_URL is unset) requires a password. Without one, any local process could
 * reach its loopback port and enqueue jobs for the services, as their own producers do.
 *
 * The password is generated at every start of the launcher: nothing but the running factory needs it (the
 * services get it from the launcher, in REDIS_URL in their environment), so there is nothing to keep across runs
 * and a restart rotates it. It is written into the config file redis-server reads (never on a command line, which
 * every local user can read in /proc/<pid>/cmdline): 0600, in Redis' own 0700 data directory, owned by the
 * identity Redis runs as. A service's /proc/<pid>/environ is readable by its own uid (and root) only. So the
 * password is known to root, the service user (or the launcher's user, without privilege separation) and nobody
 * else; see the README's threat model.
 *
 * TCP on loopback with a password rather than a Unix socket: REDIS_URL keeps one form whether Redis is embedded or
 * external, and the socket's 0700 directory would protect exactly what the 0600 file already protects.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Identity } from './privsep';

export interface RedisSettings {
  port: number;
  /** data directory: the append-only file (queued jobs survive a restart of the factory) and this config file */
  dir: string;
  password: string;
}

/** 256 bits, hex: no character that would need escaping in a URL or a Redis config file. */
export function generateRedisPassword(): string {
  return randomBytes(32).toString('hex');
}

/** A string in a Redis config file (sdssplitargs): double-quoted, with `\` and `"` escaped. */
function quoted(value: string): string {
  if (/[\x00-\x1f\x7f]/.test(value)) throw new Error(`cannot write ${JSON.stringify(value)} into a Redis config file (control character)`);
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function redisConfig(s: RedisSettings): string {
  if (!/^[0-9A-Za-z]+$/.test(s.password)) throw new Error('the Redis password must be alphanumeric');
  return [
    '# Written by the factory launcher at each start, with a new password: edits are lost.',
    `port ${s.port}`,
    'bind 127.0.0.1',
    'protected-mode yes',
    `dir ${quoted(s.dir)}`,
    // Append-only persistence keeps queued jobs across restarts of the embedded factory; no snapshots.
    'appendonly yes',
    'save ""',
    `requirepass ${s.password}`,
    '',
  ].join('\n');
}

/**
 * Writes the config file into `s.dir` (created 0700 if needed) as a new 0600 file owned by `owner` (the identity
 * Redis runs as) and returns its path. The directory belongs to that identity under privilege separation, so the
 * file is replaced without following anything planted there: the old name is removed, the new file is created
 * exclusively (O_EXCL also refuses a symbolic link), and its owner and mode are set on the open descriptor.
 */
export function writeRedisConfig(s: RedisSettings, owner?: Identity): string {
  fs.mkdirSync(s.dir, { recursive: true, mode: 0o700 });
  const dir = fs.statSync(s.dir);
  if ((dir.mode & 0o777) !== 0o700) fs.chmodSync(s.dir, 0o700);
  const file = path.join(s.dir, 'redis.conf');
  fs.rmSync(file, { force: true });
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // whatever the umask
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.writeSync(fd, redisConfig(s));
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** REDIS_URL for the services: the password in the URL's userinfo (user `default`, implied). */
export function redisUrlWithPassword(s: Pick<RedisSettings, 'port' | 'password'>): string {
  return `redis://:${s.password}@127.0.0.1:${s.port}`;
}

/** Sends commands on one fresh connection and returns the first line of each reply (`+OK`, `-NOAUTH …`). */
export function redisReplies(port: number, commands: string[][], timeoutMs = 5_000): Promise<string[]> {
  const request = commands.map((args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join('');
  return new Promise((resolve, reject) => {
    let received = '';
    const sock = net.connect(port, '127.0.0.1', () => sock.write(request));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`Redis on port ${port} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      received += d;
      // Every command sent here answers with a one-line reply.
      const lines = received.split('\r\n').slice(0, -1);
      if (lines.length >= commands.length) {
        clearTimeout(timer);
        sock.destroy();
        resolve(lines.slice(0, commands.length));
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * The start-up check of the embedded Redis: it refuses a client without the password and accepts the password.
 * Fails closed: a Redis that answers without authentication must not carry the factory's jobs.
 */
export async function checkRedisAuth(port: number, password: string): Promise<void> {
  const [anonymous] = await redisReplies(port, [['PING']]);
  if (!anonymous.startsWith('-NOAUTH')) throw new Error(`the embedded Redis answers without its password (PING: ${anonymous})`);
  const [auth] = await redisReplies(port, [['AUTH', password]]);
  if (auth !== '+OK') throw new Error(`the embedded Redis refuses its password (AUTH: ${auth.replace(password, '…')})`);
}
