import { ConfigError, EnvReader, parseByteSize, parseDuration, parseRate, parseTrustProxy, readCommon, readLimits, readUpstream } from '../src';

describe('EnvReader', () => {
  test('collects every problem into one readable error', () => {
    const r = new EnvReader({ PORT: 'eighty', LOG_LEVEL: 'loud', S3_BUCKET: 'b', S3_ENDPOINT: 'ftp://x' });
    r.port('PORT', 8080);
    readCommon(r);
    let err: unknown;
    try {
      r.done();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('PORT must be an integer');
    expect(msg).toContain('LOG_LEVEL must be one of');
    expect(msg).toContain('S3_ENDPOINT must be an http(s) URL');
    expect(msg).toContain('REDIS_URL is required');
  });

  test('defaults: local storage under the data dir', () => {
    const r = new EnvReader({ REDIS_URL: 'redis://x:1', FACTORY_DATA_DIR: '/tmp/f' });
    const c = readCommon(r);
    r.done();
    expect(c.storage).toEqual({ kind: 'local', dir: '/tmp/f/objects' });
    expect(c.redis).toEqual({ url: 'redis://x:1', prefix: 'factory' });
  });

  test('upstream verification needs a key unless turned off explicitly', () => {
    const r = new EnvReader({});
    readUpstream(r);
    expect(() => r.done()).toThrow(/FACTORY_UPSTREAM_PUBLIC_KEY/);
    const off = new EnvReader({ FACTORY_UPSTREAM_VERIFY: 'false', FACTORY_BROKEN_TALOS_VERSIONS: '["v1.9.0","1.10.1"]', FACTORY_UPSTREAM_NAMESPACE: '/mirror/' });
    const u = readUpstream(off);
    off.done();
    expect(u).toMatchObject({ registry: 'ghcr.io', namespace: 'mirror', verifySignatures: false, brokenTalosVersions: ['1.9.0', '1.10.1'] });
  });

  test('durations and lists', () => {
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30')).toBe(30_000);
    expect(parseDuration('soon')).toBeUndefined();
    expect(new EnvReader({ L: 'a, b,,c' }).list('L')).toEqual(['a', 'b', 'c']);
  });

  test('rates: count per period, 0 or off for none, a readable problem otherwise', () => {
    expect(parseRate('60/min')).toEqual({ count: 60, periodMs: 60_000 });
    expect(parseRate('10 / s')).toEqual({ count: 10, periodMs: 1000 });
    expect(parseRate('1000/hour')).toEqual({ count: 1000, periodMs: 3_600_000 });
    expect(parseRate('0')).toBeUndefined();
    expect(parseRate('OFF')).toBeUndefined();
    expect(parseRate('0/min')).toBeUndefined();
    expect(parseRate('60')).toBeNull();
    expect(parseRate('60/fortnight')).toBeNull();
    const r = new EnvReader({ A: '5/m', B: 'off', C: 'lots' });
    expect(r.rate('A', undefined)).toEqual({ count: 5, periodMs: 60_000 });
    expect(r.rate('B', { count: 1, periodMs: 1000 })).toBeUndefined();
    expect(r.rate('D', { count: 1, periodMs: 1000 })).toEqual({ count: 1, periodMs: 1000 });
    r.rate('C', undefined);
    expect(() => r.done()).toThrow(/C must be a rate such as 60\/min/);
  });

  test('limits: defaults, FACTORY_TRUST_PROXY forms, one readable problem each', () => {
    const d = new EnvReader({});
    expect(readLimits(d)).toEqual({ schematics: { count: 120, periodMs: 60_000 }, builds: { count: 60, periodMs: 60_000 }, maxOutstanding: 32, trustProxy: false });
    d.done();
    expect(parseTrustProxy('false')).toBe(false);
    expect(parseTrustProxy('true')).toBe(true);
    expect(parseTrustProxy('2')).toBe(2);
    expect(parseTrustProxy('loopback, 10.0.0.0/8,fd00::/8')).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8']);
    expect(parseTrustProxy('10.0.0.0/33')).toBeNull();
    expect(parseTrustProxy('300.0.0.1')).toBeNull();
    expect(parseTrustProxy('proxy.example')).toBeNull();
    const bad = new EnvReader({ FACTORY_TRUST_PROXY: 'proxy.example', FACTORY_RATE_BUILDS: 'many', FACTORY_MAX_CLIENT_BUILDS: '-1' });
    readLimits(bad);
    expect(() => bad.done()).toThrow(/FACTORY_TRUST_PROXY must be[\s\S]*FACTORY_RATE_BUILDS must be a rate[\s\S]*FACTORY_MAX_CLIENT_BUILDS must be between 0/);
  });
});

describe('byte sizes', () => {
  test('binary and decimal units, plain numbers, and malformed values reported', () => {
    expect(parseByteSize('50GiB')).toBe(50 * 2 ** 30);
    expect(parseByteSize('8 gib')).toBe(8 * 2 ** 30);
    expect(parseByteSize('500MB')).toBe(500e6);
    expect(parseByteSize('1.5KiB')).toBe(1536);
    expect(parseByteSize('1048576')).toBe(1048576);
    for (const bad of ['', 'lots', '5 GiBs', '-1', '1e3', `${2 ** 60}TiB`]) expect(parseByteSize(bad)).toBeUndefined();
    const r = new EnvReader({ FACTORY_MAX_ASSET_BYTES: 'big' });
    expect(r.bytes('FACTORY_MAX_ASSET_BYTES', 7)).toBe(7);
    expect(() => r.done()).toThrow(/FACTORY_MAX_ASSET_BYTES must be a byte size/);
  });
});
