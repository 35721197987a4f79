/**
 * Version ranges in the language of github.com/blang/semver/v4 `ParseRange`, as Talos uses them for extension
 * compatibility (`>= v1.7.0`, `>=1.5.0 <2.0.0`, `>1.2.x || =0.9.0`, ...):
 * - comparators `=`/`==`/(none), `!=`/`!`, `>`, `>=`, `<`, `<=`, a space between operator and version is allowed;
 * - space separated comparators are ANDed, `||` separates alternatives;
 * - `x` wildcards in the minor/patch position expand like blang does (`>1.2.x` -> `>=1.3.0`, `1.x` -> `>=1.0.0 <2.0.0`);
 * - versions are strict SemVer 2.0 (three numbers, optional pre-release/build), compared with SemVer precedence.
 * Talos strips a `v` that immediately precedes a digit before parsing (`trimV`).
 */
import { SemVer, compareSemver, parseSemver } from '@factory/talos';

export type VersionRange = (v: SemVer) => boolean;

/** Remove every `v` directly followed by a digit (Talos does this before ParseRange). */
export function trimV(constraint: string): string {
  return constraint.replace(/v(?=[0-9])/g, '');
}

/** blang's splitAndTrim: split on spaces, except right after an operator character (quirks included). */
function splitAndTrim(s: string): string[] {
  const out: string[] = [];
  let last = 0;
  let lastChar = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === ' ' && !(lastChar !== '' && '><='.includes(lastChar))) {
      if (last < i - 1) out.push(s.slice(last, i));
      last = i + 1;
    } else if (s[i] !== ' ') {
      lastChar = s[i];
    }
  }
  if (last < s.length - 1) out.push(s.slice(last));
  return out.map((p) => p.replace(/ /g, ''));
}

function splitOr(parts: string[]): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === '||') {
      if (!cur.length) throw new Error('Error parsing or-part: "||" without a range before it');
      out.push(cur);
      cur = [];
      if (i === parts.length - 1) throw new Error('Error parsing or-part: "||" without a range after it');
    } else cur.push(parts[i]);
  }
  if (cur.length) out.push(cur);
  return out;
}

function splitComparator(s: string): [string, string] {
  const i = s.search(/[0-9]/);
  if (i < 0) throw new Error(`Could not get version from string: "${s}"`);
  return [s.slice(0, i).trim(), s.slice(i)];
}

/** Expand an `x` wildcard comparator into plain comparators (blang semantics, including its quirks). */
function expandWildcard(part: string): string[] {
  if (!part.includes('x')) return [part];
  const [op, ver] = splitComparator(part);
  const segs = ver.split('.');
  let kind: 'minor' | 'patch';
  if (segs.length === 2 && segs[1] === 'x') kind = 'minor';
  else if (segs.length === 3 && segs[1] === 'x' && segs[2] === 'x') kind = 'minor';
  else if (segs.length === 3 && segs[2] === 'x' && segs[1] !== 'x') kind = 'patch';
  else throw new Error(`Invalid wildcard version: "${ver}"`);
  if (!/^\d+$/.test(segs[0]) || (kind === 'patch' && !/^\d+$/.test(segs[1]))) throw new Error(`Invalid wildcard version: "${ver}"`);
  const major = Number(segs[0]);
  const minor = kind === 'patch' ? Number(segs[1]) : 0;
  const flat = `${major}.${minor}.0`;
  const next = kind === 'minor' ? `${major + 1}.0.0` : `${major}.${minor + 1}.0`;
  switch (op) {
    case '>':
      return [`>=${next}`];
    case '>=':
      return [`>=${flat}`];
    case '<':
      return [`<${flat}`];
    case '<=':
      return [`<${next}`];
    case '':
    case '=':
    case '==':
      return [`>=${flat}`, `<${next}`];
    case '!=':
    case '!':
      // blang ANDs these two, so `!=1.x` can never match; reproduced on purpose
      return [`<${flat}`, `>=${next}`];
    default:
      throw new Error(`Could not parse comparator "${op}" in "${part}"`);
  }
}

function comparator(part: string): VersionRange {
  const [op, ver] = splitComparator(part);
  const v = parseSemver(ver);
  if (!v) throw new Error(`Could not parse version "${ver}" in "${part}"`);
  const cmp = (x: SemVer) => compareSemver(x, v);
  switch (op) {
    case '':
    case '=':
    case '==':
      return (x) => cmp(x) === 0;
    case '!=':
    case '!':
      return (x) => cmp(x) !== 0;
    case '>':
      return (x) => cmp(x) > 0;
    case '>=':
      return (x) => cmp(x) >= 0;
    case '<':
      return (x) => cmp(x) < 0;
    case '<=':
      return (x) => cmp(x) <= 0;
    default:
      throw new Error(`Could not parse comparator "${op}" in "${part}"`);
  }
}

/** Parse a range (after trimV); throws on syntax errors. */
export function parseRange(s: string): VersionRange {
  const alternatives = splitOr(splitAndTrim(s));
  if (!alternatives.length) throw new Error(`Could not get version from string: "${s}"`);
  const ors = alternatives.map((and) => {
    const checks = and.flatMap(expandWildcard).map(comparator);
    return (v: SemVer) => checks.every((c) => c(v));
  });
  return (v) => ors.some((r) => r(v));
}

/** Does the Talos compatibility constraint accept this version's core (major.minor.patch)? Empty = always. */
export function constraintAllows(constraint: string, talos: SemVer): boolean {
  if (constraint === '') return true;
  let range: VersionRange;
  try {
    range = parseRange(trimV(constraint));
  } catch (e) {
    throw new Error(`error parsing Talos version constraint: ${(e as Error).message}`);
  }
  return range({ major: talos.major, minor: talos.minor, patch: talos.patch, prerelease: [], build: [] });
}
