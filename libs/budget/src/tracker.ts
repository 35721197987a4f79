/**
 * Last access of stored artifacts, cluster-wide: one Redis sorted set, object key → last access (ms). The gateway
 * and the registry-proxy touch an artifact when they serve it, the build-worker when it publishes one. Touching is
 * cheap: at most one write per key per minute per process, fire-and-forget (a request never waits for it, and never
 * fails because Redis did not take it), and `ZADD GT` so a late or skewed write never moves an access back.
 */
import type IORedis from 'ioredis';
import { BoundedMap } from '@factory/runtime';
import type { Logger } from '@factory/telemetry';

/** At most one write per key per process within this interval (the eviction grace period must exceed it). */
export const TOUCH_INTERVAL_MS = 60_000;

const READ_CHUNK = 1000;

export class AccessTracker {
  readonly key: string;
  /** Estimate of the bytes stored: set by each eviction pass, increased by each publish (a pass corrects drift). */
  readonly storedBytesKey: string;
  // Bounded: keys are asset keys, but a process should not grow with the number of assets ever served.
  private readonly lastWritten = new BoundedMap<string, number>(100_000);

  constructor(
    private readonly redis: IORedis,
    queuePrefix: string,
    private readonly logger?: Logger,
    private readonly intervalMs = TOUCH_INTERVAL_MS,
  ) {
    this.key = `${queuePrefix}:storage:last-access`;
    this.storedBytesKey = `${queuePrefix}:storage:bytes`;
  }

  /** A publish: records its access and adds its size to the estimate; returns the new estimate of bytes stored. */
  async recordPublish(objectKey: string, size: number, now = Date.now()): Promise<number> {
    this.lastWritten.delete(objectKey);
    this.lastWritten.set(objectKey, now);
    const results = await this.redis.multi().zadd(this.key, 'GT', now, objectKey).incrby(this.storedBytesKey, size).exec();
    const [err, total] = results?.[1] ?? [new Error('no reply')];
    if (err) throw err;
    return Number(total);
  }

  /** What an eviction pass measured: the estimate starts again from it. */
  async setStoredBytes(bytes: number): Promise<void> {
    await this.redis.set(this.storedBytesKey, String(bytes));
  }

  /** Records an access of `objectKey` now (throttled unless `force`: a publish always records). Never throws. */
  touch(objectKey: string, o: { now?: number; force?: boolean } = {}): void {
    const now = o.now ?? Date.now();
    const last = this.lastWritten.get(objectKey);
    if (!o.force && last !== undefined && now - last < this.intervalMs) return;
    this.lastWritten.delete(objectKey);
    this.lastWritten.set(objectKey, now);
    this.redis.zadd(this.key, 'GT', now, objectKey).catch((err: unknown) => {
      // A lost touch only makes the artifact look older; the grace period and the next touch cover it.
      this.lastWritten.delete(objectKey);
      this.logger?.debug({ err, key: objectKey }, 'could not record an artifact access');
    });
  }

  /** Recorded last accesses (ms) of the given keys; keys never recorded are absent. */
  async lastAccess(objectKeys: readonly string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (let i = 0; i < objectKeys.length; i += READ_CHUNK) {
      const chunk = objectKeys.slice(i, i + READ_CHUNK);
      const scores = await this.redis.zmscore(this.key, ...chunk);
      chunk.forEach((k, j) => {
        const s = scores[j];
        if (s !== null && s !== undefined) found.set(k, Number(s));
      });
    }
    return found;
  }

  /** Drops the records of keys that are no longer stored. */
  async forget(objectKeys: readonly string[]): Promise<void> {
    for (let i = 0; i < objectKeys.length; i += READ_CHUNK) {
      const chunk = objectKeys.slice(i, i + READ_CHUNK);
      await this.redis.zrem(this.key, ...chunk);
      for (const k of chunk) this.lastWritten.delete(k);
    }
  }

  /** Every recorded key (for dropping records of objects deleted behind the factory's back). */
  async recordedKeys(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.zscan(this.key, cursor, 'COUNT', READ_CHUNK);
      for (let i = 0; i < batch.length; i += 2) keys.push(batch[i]);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }
}
