import { bar, buildLine, downloadLine, fitToWidth, formatBytes, formatDuration, ProgressLines, SpeedMeter } from '../src/progress';
import type { Build } from '@factory/client';

const build = (over: Partial<Build>): Build => ({
  id: 'a'.repeat(64), schematic: 's', version: 'v1.12.2', asset: 'metal-amd64.iso', state: 'queued', url: 'u', priority: 'user',
  createdAt: '', updatedAt: '', stages: [], log: [], ...over,
});

describe('progress lines', () => {
  it('formats sizes, durations and bars', () => {
    expect([formatBytes(0), formatBytes(1023), formatBytes(1536), formatBytes(55.3 * 1024 * 1024)]).toEqual(['0 B', '1023 B', '1.5 KiB', '55.3 MiB']);
    expect([formatDuration(4.4), formatDuration(65), formatDuration(3725), formatDuration(Infinity)]).toEqual(['4s', '1m05s', '1h02m', '?']);
    expect([bar(0), bar(0.5), bar(1), bar(undefined, 4)]).toEqual([`[${'-'.repeat(16)}]`, `[${'#'.repeat(8)}${'-'.repeat(8)}]`, `[${'#'.repeat(16)}]`, '[????]']);
  });

  it('says where a build stands', () => {
    expect(buildLine('iso', build({ queuePosition: 2 })).status).toBe(`[${'-'.repeat(16)}]   0%  queued (position 3)`);
    expect(buildLine('iso', build({ state: 'running', stage: 'writing ISO', percent: 85 })).status).toMatch(/ {2}85%  writing ISO$/);
    expect(buildLine('iso', build({ state: 'done', percent: 100, size: 2048 })).status).toMatch(/100%  done  2\.0 KiB$/);
    expect(buildLine('iso', build({ state: 'failed', percent: 40, error: { status: 500, message: 'boom' } })).status).toMatch(/ 40%  failed: boom$/);
  });

  it('shows a download with amount, speed and ETA; unknown figures as --', () => {
    expect(downloadLine('f', 512 * 1024, 1024 * 1024, 256 * 1024).status).toBe(`[${'#'.repeat(8)}${'-'.repeat(8)}]  50%  512.0 KiB/1.0 MiB  256.0 KiB/s  ETA 2s`);
    expect(downloadLine('f', 100, undefined, undefined).status).toBe(`[${'?'.repeat(16)}]    ?  100 B  -- /s  ETA --`);
  });

  it('fits a line to the width by shortening the label first', () => {
    expect(fitToWidth({ label: 'metal-amd64-secureboot.raw.zst', status: 'x'.repeat(60) }, 79)).toBe(`metal-amd64-secu…  ${'x'.repeat(60)}`);
    expect(fitToWidth({ label: 'short', status: 'ok' }, 79)).toBe('short  ok');
    expect(fitToWidth({ label: 'label-of-some-length', status: 'y'.repeat(100) }, 40)).toHaveLength(40);
  });

  it('measures speed over its window', () => {
    const m = new SpeedMeter(5000);
    m.record(0, 0);
    expect(m.bytesPerSecond()).toBeUndefined();
    m.record(1000, 1000);
    m.record(3000, 2000);
    expect(m.bytesPerSecond()).toBe(1500);
    m.record(4000, 9000);
    expect(m.bytesPerSecond()).toBe(1000 / 7); // the window dropped the first sample
    expect(m.averageBytesPerSecond()).toBe(4000 / 9);
  });

  it('has a speed for a transfer that took less than a millisecond', () => {
    const m = new SpeedMeter();
    m.record(0);
    m.record(262144);
    expect(m.averageBytesPerSecond()).toBeGreaterThan(0);
  });

  it('draws nothing when disabled; redraws a block of lines in place when enabled', () => {
    let off = '';
    const quiet = new ProgressLines({ write: (s: string) => (off += s) }, false);
    quiet.update([{ label: 'a', status: 'b' }], true);
    quiet.finish();
    expect(off).toBe('');
    let out = '';
    const lines = new ProgressLines({ write: (s: string) => (out += s), columns: 0 }, true);
    lines.update([{ label: 'a', status: '1' }, { label: 'b', status: '1' }], true);
    lines.update([{ label: 'a', status: '2' }, { label: 'b', status: '2' }], true);
    lines.finish();
    expect(out).toBe('\r\x1b[2Ka  1\n\x1b[2Kb  1' + '\r\x1b[1A\x1b[2Ka  2\n\x1b[2Kb  2' + '\r\x1b[1A\x1b[2Ka  2\n\x1b[2Kb  2\n');
  });
});
