/** A service's limiter: its Redis connection and metrics (the same in the gateway and the registry-proxy). */
import type { LimitSettings } from '@factory/config';
import { redisConnection } from '@factory/queue';
import { Counter, Histogram, Logger, Registry } from '@factory/telemetry';
import { RateLimiter } from './limiter';

export function createServiceLimiter(o: { redisUrl: string; prefix: string; settings: LimitSettings; holdMs: number; metrics: Registry; logger: Logger }): { limiter: RateLimiter; close: () => void } {
  const limited = new Counter({ name: 'image_factory_rate_limited_total', help: 'Requests answered 429 by per-client limits, by limit', labelNames: ['limit'], registers: [o.metrics] });
  const admissions = new Counter({
    name: 'image_factory_build_admissions_total',
    help: 'Requests that needed a build: a new build (counted against the client), or joining one already queued',
    labelNames: ['outcome'],
    registers: [o.metrics],
  });
  // per-client numbers would be a label per client: a histogram says how loaded clients are without naming them
  const outstanding = new Histogram({
    name: 'image_factory_client_outstanding_builds',
    help: "The requesting client's builds already queued or running when it started a new one (its build priority - 1)",
    buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128],
    registers: [o.metrics],
  });
  const redis = redisConnection(o.redisUrl, 'producer', `${o.prefix}-limits`);
  const limiter = new RateLimiter({
    redis,
    prefix: o.prefix,
    settings: o.settings,
    holdMs: o.holdMs,
    onLimited: (limit) => limited.inc({ limit }),
    onAdmission: (a) => {
      admissions.inc({ outcome: a.kind === 'joined' ? 'joined' : 'new' });
      if (a.kind === 'admitted') outstanding.observe(a.outstanding);
    },
    onRedisError: (err) => o.logger.warn({ err }, 'rate limiter: Redis did not answer; request not limited'),
  });
  return { limiter, close: () => redis.disconnect() };
}
