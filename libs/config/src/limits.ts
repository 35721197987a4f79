/** Per-client limits and who a client is (gateway and registry-proxy read the same settings). */
import type { EnvReader, Rate } from './env';

export interface LimitSettings {
  /** `POST /schematics` per client; undefined: unlimited */
  schematics?: Rate;
  /** new builds per client (asset downloads and installer pulls that start one); undefined: unlimited */
  builds?: Rate;
  /** builds a client may have queued or running at once; 0: unlimited */
  maxOutstanding: number;
  /** which X-Forwarded-For entries name the client */
  trustProxy: TrustProxy;
}

/**
 * FACTORY_TRUST_PROXY, with the meanings of Express's `trust proxy`: `false` (the peer address is the client), `true`
 * (the leftmost X-Forwarded-For entry — only behind a proxy that overwrites the header), a number of proxy hops, or
 * a list of proxy addresses/subnets and the names `loopback`, `linklocal`, `uniquelocal`.
 */
export type TrustProxy = boolean | number | string[];

/** Parses FACTORY_TRUST_PROXY; null when it is none of its forms. */
export function parseTrustProxy(raw: string | undefined): TrustProxy | null {
  if (raw === undefined) return false;
  const text = raw.trim();
  if (/^(false|off|no)$/i.test(text)) return false;
  if (/^(true|on|yes)$/i.test(text)) return true;
  if (/^\d+$/.test(text)) return Number(text);
  const entries = text.split(',').map((s) => s.trim());
  const valid = entries.every((e) => {
    if (['loopback', 'linklocal', 'uniquelocal'].includes(e)) return true;
    const [addr, bits, ...rest] = e.split('/');
    const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(addr) && addr.split('.').every((o) => Number(o) <= 255);
    const v6 = !v4 && /^[0-9a-f:]+$/i.test(addr) && addr.includes(':');
    if (rest.length || !(v4 || v6)) return false;
    return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (v4 ? 32 : 128));
  });
  return valid ? entries : null;
}

/** The limits: defaults no ordinary user reaches; `0`/`off` disables one. */
export function readLimits(r: EnvReader): LimitSettings {
  const trustProxy = parseTrustProxy(r.raw('FACTORY_TRUST_PROXY'));
  if (trustProxy === null) {
    r.problem(`FACTORY_TRUST_PROXY must be true, false, a number of proxy hops or a comma list of proxy addresses/subnets (loopback, 10.0.0.0/8, ...), got ${JSON.stringify(r.raw('FACTORY_TRUST_PROXY'))}`);
  }
  return {
    schematics: r.rate('FACTORY_RATE_SCHEMATICS', { count: 120, periodMs: 60_000 }),
    builds: r.rate('FACTORY_RATE_BUILDS', { count: 60, periodMs: 60_000 }),
    maxOutstanding: r.int('FACTORY_MAX_CLIENT_BUILDS', 32, 0, 1_000_000),
    trustProxy: trustProxy ?? false,
  };
}
