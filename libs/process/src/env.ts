/**
 * The environment a host tool sees. By default it is clean: tools must not pick up settings of whoever runs the
 * factory (XZ_OPT, ZSTD_CLEVEL, MTOOLS_*, a stray SOURCE_DATE_EPOCH, a locale, TZ …) — they can change output bytes.
 * Whatever a tool needs (SOURCE_DATE_EPOCH for mkfs/xorriso, proxies for network tools) is passed explicitly.
 */

/** Where system tools live; the PATH used when the parent has none. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Variables set on top of the base environment; `undefined` removes one. */
export type EnvOverrides = Record<string, string | undefined>;

export interface EnvOptions {
  /**
   * 'clean' (default): PATH (the parent's, or SYSTEM_PATH), LANG=C.UTF-8, LC_ALL=C, and HOME and TMPDIR when the
   * parent has them. 'empty': nothing but `passEnv` and `env`.
   */
  baseEnv?: 'clean' | 'empty';
  /** Names copied from the parent's environment when set there (e.g. proxy settings for a network tool). */
  passEnv?: readonly string[];
  /** Set last, over the base and `passEnv`. */
  env?: EnvOverrides;
}

/** Proxy settings, for tools that reach the network (apt-get, skopeo). */
export const PROXY_VARS = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;

/** The environment described by `o`, built from `parent` (the current process's by default). */
export function toolEnv(o: EnvOptions = {}, parent: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  if ((o.baseEnv ?? 'clean') === 'clean') {
    env.PATH = parent.PATH || SYSTEM_PATH;
    env.LANG = 'C.UTF-8';
    env.LC_ALL = 'C';
    for (const name of ['HOME', 'TMPDIR']) if (parent[name]) env[name] = parent[name]!;
  }
  for (const name of o.passEnv ?? []) if (parent[name] !== undefined) env[name] = parent[name]!;
  for (const [name, value] of Object.entries(o.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}
