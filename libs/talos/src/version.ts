/**
 * Semantic versions as the factory uses them: strict parsing for request paths (a leading `v` is optional and
 * stripped), tolerant parsing for registry tags, SemVer 2.0 precedence, and the anchor's rules for which imager
 * tags are offered as Talos versions.
 */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  prerelease: string[];
  build: string[];
}

const NUM = '(0|[1-9]\\d*)';
const IDENT = '[0-9A-Za-z-]+';
const STRICT = new RegExp(`^${NUM}\\.${NUM}\\.${NUM}(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+(${IDENT}(?:\\.${IDENT})*))?$`);

/** Strict SemVer 2.0 (no leading `v`); undefined when malformed. Numeric prerelease parts may not have leading zeros. */
export function parseSemver(s: string): SemVer | undefined {
  const m = STRICT.exec(s);
  if (!m) return undefined;
  const prerelease = m[4] ? m[4].split('.') : [];
  if (prerelease.some((p) => /^\d+$/.test(p) && p.length > 1 && p.startsWith('0'))) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const patch = Number(m[3]);
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  return { major, minor, patch, prerelease, build: m[5] ? m[5].split('.') : [] };
}

/** Tag parsing as the anchor does it: optional `v`, surrounding spaces ignored, missing minor/patch padded with 0. */
export function parseTolerant(tag: string): SemVer | undefined {
  let s = tag.trim().replace(/^v/, '');
  const core = s.split(/[-+]/, 1)[0];
  const parts = core.split('.');
  if (parts.length < 3 && s === core && parts.every((p) => /^\d+$/.test(p))) {
    while (parts.length < 3) parts.push('0');
    s = parts.join('.');
  }
  // Leading zeros in the numeric core are tolerated for tags.
  s = s.replace(/^(\d+)\.(\d+)\.(\d+)/, (_all, a: string, b: string, c: string) => `${Number(a)}.${Number(b)}.${Number(c)}`);
  return parseSemver(s);
}

/** A version from a request path: `1.11.0` and `v1.11.0` are the same version. */
export function parseRequestVersion(raw: string): SemVer | undefined {
  return parseSemver(raw.startsWith('v') ? raw.slice(1) : raw);
}

export function formatSemver(v: SemVer): string {
  let s = `${v.major}.${v.minor}.${v.patch}`;
  if (v.prerelease.length) s += `-${v.prerelease.join('.')}`;
  if (v.build.length) s += `+${v.build.join('.')}`;
  return s;
}

/** `v`-prefixed tag form used in URLs and listings. */
export function tagOf(v: SemVer): string {
  return `v${formatSemver(v)}`;
}

function comparePre(a: string[], b: string[]): number {
  if (!a.length && !b.length) return 0;
  if (!a.length) return 1;
  if (!b.length) return -1;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i >= a.length) return -1;
    if (i >= b.length) return 1;
    const an = /^\d+$/.test(a[i]);
    const bn = /^\d+$/.test(b[i]);
    if (an && bn) {
      const d = Number(a[i]) - Number(b[i]);
      if (d) return Math.sign(d);
    } else if (an !== bn) {
      return an ? -1 : 1;
    } else if (a[i] !== b[i]) {
      return a[i] < b[i] ? -1 : 1;
    }
  }
  return 0;
}

/** SemVer precedence (build metadata ignored). */
export function compareSemver(a: SemVer, b: SemVer): number {
  return Math.sign(a.major - b.major) || Math.sign(a.minor - b.minor) || Math.sign(a.patch - b.patch) || comparePre(a.prerelease, b.prerelease);
}

/** Compare only major.minor.patch, as Talos quirks do (1.11.0-beta.1 counts as 1.11.0). */
export function atLeast(v: SemVer, major: number, minor: number, patch = 0): boolean {
  return (Math.sign(v.major - major) || Math.sign(v.minor - minor) || Math.sign(v.patch - patch)) >= 0;
}

export interface VersionFilter {
  /** Minimum offered version, e.g. `1.2.0`. */
  min: string;
  /** Versions never offered (strict semver without `v`). */
  broken: string[];
}

const PRERELEASE_KINDS = new Set(['alpha', 'beta', 'rc']);

/**
 * Which imager tags become offered Talos versions: parseable, at least the minimum, not broken, and pre-releases
 * only of the newest major.minor and only of the form alpha.N / beta.N / rc.N. Ascending, `v`-prefixed.
 */
export function offeredVersions(tags: string[], filter: VersionFilter): string[] {
  const min = parseSemver(filter.min);
  if (!min) throw new Error(`invalid minimum version ${filter.min}`);
  const broken = filter.broken.map((b) => parseSemver(b.replace(/^v/, ''))).filter((b): b is SemVer => !!b);
  const parsed = tags.map(parseTolerant).filter((v): v is SemVer => !!v);
  if (!parsed.length) return [];
  const max = parsed.reduce((a, b) => (compareSemver(a, b) >= 0 ? a : b));
  const seen = new Map<string, SemVer>();
  for (const v of parsed) {
    if (compareSemver(v, min) < 0) continue;
    if (broken.some((b) => compareSemver(b, v) === 0)) continue;
    if (v.prerelease.length) {
      if (v.major !== max.major || v.minor !== max.minor) continue;
      if (v.prerelease.length !== 2 || !PRERELEASE_KINDS.has(v.prerelease[0]) || !/^\d+$/.test(v.prerelease[1])) continue;
    }
    seen.set(formatSemver({ ...v, build: [] }), { ...v, build: [] });
  }
  return [...seen.values()].sort(compareSemver).map(tagOf);
}
