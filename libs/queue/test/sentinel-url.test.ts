import { parseSentinelUrl } from '../src/connection';

describe('REDIS_URL through Redis Sentinel', () => {
  it('reads the sentinels, the master name and the passwords', () => {
    expect(parseSentinelUrl('redis+sentinel://:s3cr%40t@sentinel-0.redis:26379,sentinel-1.redis,[fd00::1]:26380/mymaster?sentinelPassword=sp')).toEqual({
      sentinels: [
        { host: 'sentinel-0.redis', port: 26379 },
        { host: 'sentinel-1.redis', port: 26379 },
        { host: 'fd00::1', port: 26380 },
      ],
      name: 'mymaster',
      username: undefined,
      password: 's3cr@t',
      sentinelPassword: 'sp',
    });
  });

  it('leaves plain Redis URLs to ioredis and refuses a sentinel URL without a master name', () => {
    expect(parseSentinelUrl('redis://:pw@127.0.0.1:6379')).toBeUndefined();
    expect(() => parseSentinelUrl('redis+sentinel://h1:26379,h2:26379')).toThrow(/mymaster/);
  });
});
