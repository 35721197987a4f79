import IORedis, { RedisOptions } from 'ioredis';

/**
 * BullMQ needs two kinds of connections: workers and event listeners block, so they must retry forever
 * (maxRetriesPerRequest: null); producers answering HTTP requests should fail fast when Redis is down instead of
 * queueing commands in memory.
 */
export function redisConnection(url: string, kind: 'blocking' | 'producer', name: string): IORedis {
  const opts: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: kind === 'blocking' ? null : 1,
    enableOfflineQueue: kind === 'blocking',
    retryStrategy: (times) => Math.min(times * 200, 2000),
  };
  const sentinel = parseSentinelUrl(url);
  const conn = sentinel ? new IORedis({ ...opts, ...sentinel }) : new IORedis(url, opts);
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  conn.on('error', () => undefined);
  return conn;
}

const SENTINEL_URL = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/([^/?#]+)\/?(?:\?(.*))?$/;

/**
 * `redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[?sentinelPassword=...]`: the master
 * found through Redis Sentinel (the password is the master's; the sentinels' own, if any, is sentinelPassword).
 * Undefined for any other URL (redis://, rediss://), which ioredis reads itself.
 */
export function parseSentinelUrl(url: string): Pick<RedisOptions, 'sentinels' | 'name' | 'username' | 'password' | 'sentinelPassword'> | undefined {
  if (!url.startsWith('redis+sentinel://')) return undefined;
  const m = SENTINEL_URL.exec(url);
  if (!m) throw new Error('REDIS_URL: a Sentinel URL looks like redis+sentinel://:password@host1:26379,host2:26379/mymaster');
  const [, user, password, hostList, master, query] = m;
  const sentinels = hostList.split(',').map((hostPort) => {
    const hp = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort.trim());
    if (!hp) throw new Error(`REDIS_URL: bad sentinel address ${JSON.stringify(hostPort)}`);
    return { host: hp[1].replace(/^\[|\]$/g, ''), port: hp[2] ? Number(hp[2]) : 26379 };
  });
  const params = new URLSearchParams(query ?? '');
  const decode = (v: string | undefined) => (v ? decodeURIComponent(v) : undefined);
  return {
    sentinels,
    name: decodeURIComponent(master),
    username: decode(user),
    password: decode(password),
    sentinelPassword: params.get('sentinelPassword') ?? undefined,
  };
}
