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
  const conn = new IORedis(url, opts);
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  conn.on('error', () => undefined);
  return conn;
}
