import { atLeast, compareSemver, offeredVersions, parseRequestVersion, parseSemver, parseTolerant } from '../src';

describe('semver', () => {
  test('strict parsing', () => {
    expect(parseSemver('1.11.0')).toMatchObject({ major: 1, minor: 11, patch: 0 });
    expect(parseSemver('1.12.0-beta.1')?.prerelease).toEqual(['beta', '1']);
    for (const bad of ['abc', '1.2', '01.2.3', '1.2.3-', '1.2.3-01', 'v1.2.3', '1.2.3.4', '']) expect(parseSemver(bad)).toBeUndefined();
  });
  test('request versions take an optional v', () => {
    expect(parseRequestVersion('v1.11.0')).toEqual(parseRequestVersion('1.11.0'));
    expect(parseRequestVersion('vv1.1.1')).toBeUndefined();
  });
  test('tolerant tag parsing pads and strips v', () => {
    expect(parseTolerant('v1.7')).toMatchObject({ major: 1, minor: 7, patch: 0 });
    expect(parseTolerant('latest')).toBeUndefined();
  });
  test('precedence', () => {
    const order = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.10.0'];
    const parsed = order.map((s) => parseSemver(s)!);
    for (let i = 1; i < parsed.length; i++) expect(compareSemver(parsed[i - 1], parsed[i])).toBe(-1);
  });
  test('quirk comparisons ignore prereleases', () => {
    expect(atLeast(parseSemver('1.11.0-beta.1')!, 1, 11)).toBe(true);
    expect(atLeast(parseSemver('1.10.9')!, 1, 11)).toBe(false);
    expect(atLeast(parseSemver('2.0.0')!, 1, 11)).toBe(true);
  });
});

describe('offered versions (anchor §6.1)', () => {
  const tags = ['v1.1.0', 'v1.2.0', 'v1.7.7', 'v1.11.3', 'v1.11.0-beta.1', 'v1.12.2', 'v1.12.0-alpha.0-5-gabcdef', 'latest',
    'not-a-version', 'v1.12.3-rc.1', 'v1.12.3-rc.x', 'v1.12.3-dev.1', '1.12.1', 'v1.13.1'];
  test('minimum, prerelease rules, sorting, v prefix', () => {
    expect(offeredVersions(tags, { min: '1.2.0', broken: [] })).toEqual(['v1.2.0', 'v1.7.7', 'v1.11.3', 'v1.12.1', 'v1.12.2', 'v1.13.1']);
  });
  test('prereleases of the newest minor are offered', () => {
    expect(offeredVersions(tags.filter((t) => t !== 'v1.13.1'), { min: '1.2.0', broken: ['1.12.1'] })).toEqual(['v1.2.0', 'v1.7.7', 'v1.11.3', 'v1.12.2', 'v1.12.3-rc.1']);
  });
  test('broken versions are dropped', () => {
    expect(offeredVersions(['v1.7.7', 'v1.11.3'], { min: '1.2.0', broken: ['v1.11.3'] })).toEqual(['v1.7.7']);
  });
});
