import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateRedisPassword, redisConfig, redisUrlWithPassword, writeRedisConfig } from '../src/redis';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'launcher-redis-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

test('the password is fresh, 256 bits of hex, and reaches the services in the URL only', () => {
  const a = generateRedisPassword();
  expect(a).toMatch(/^[0-9a-f]{64}$/);
  expect(generateRedisPassword()).not.toBe(a);
  expect(redisUrlWithPassword({ port: 6390, password: a })).toBe(`redis://:${a}@127.0.0.1:6390`);
  expect(new URL(redisUrlWithPassword({ port: 6390, password: a })).password).toBe(a);
});

test('the config file requires the password and quotes the data directory', () => {
  const conf = redisConfig({ port: 6390, dir: '/data/with "quote" and \\ backslash', password: 'abc123' });
  expect(conf).toContain('requirepass abc123\n');
  expect(conf).toContain('port 6390\nbind 127.0.0.1\n');
  expect(conf).toContain('dir "/data/with \\"quote\\" and \\\\ backslash"\n');
  expect(conf).toContain('appendonly yes\nsave ""\n');
  expect(() => redisConfig({ port: 1, dir: '/a\nrequirepass x', password: 'abc' })).toThrow(/control character/);
  expect(() => redisConfig({ port: 1, dir: '/a', password: 'a b' })).toThrow(/alphanumeric/);
});

test('written 0600 in a 0700 directory, whatever the umask and whatever was there', () => {
  const dir = path.join(tmp, 'redis');
  mkdirSync(dir, { mode: 0o755 });
  const old = process.umask(0);
  try {
    const file = writeRedisConfig({ port: 6390, dir, password: 'p1' });
    expect(file).toBe(path.join(dir, 'redis.conf'));
    expect((statSync(dir).mode & 0o777).toString(8)).toBe('700');
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    // the next start replaces it with the new password
    writeRedisConfig({ port: 6390, dir, password: 'p2' });
    expect(readFileSync(file, 'utf8')).toMatch(/^requirepass p2$/m);
  } finally {
    process.umask(old);
  }
});

test('a symbolic link planted in its place is replaced, never followed', () => {
  const dir = path.join(tmp, 'redis');
  mkdirSync(dir, { mode: 0o700 });
  const victim = path.join(tmp, 'victim');
  writeFileSync(victim, 'untouched', { mode: 0o644 });
  symlinkSync(victim, path.join(dir, 'redis.conf'));
  const file = writeRedisConfig({ port: 6390, dir, password: 'p3' });
  expect(lstatSync(file).isSymbolicLink()).toBe(false);
  expect(readFileSync(victim, 'utf8')).toBe('untouched');
  expect((statSync(victim).mode & 0o777).toString(8)).toBe('644');
});
