import { alreadyStored, Build, BuildChange, buildSubject, failed, MAX_LOG_LINES, positioned, progressed, queued, retrying, started, succeeded } from '@factory/builds';

const identity = {
  schematicId: 'a'.repeat(64),
  version: 'v1.11.3',
  path: 'metal-amd64.iso',
  kind: 'iso',
  platform: 'metal',
  arch: 'amd64',
  secureboot: false,
  outFormat: '.iso',
} as const;
const subject = buildSubject(identity as never, 'http://factory.test:8080/');

/** Applies changes one after another, a second apart, starting at t0. */
function run(changes: BuildChange[], t0 = Date.parse('2026-01-01T00:00:00Z')): Array<Build | undefined> {
  let current: Build | undefined;
  return changes.map((c, i) => {
    const next = c(current, new Date(t0 + i * 1000));
    if (next) current = next;
    return next;
  });
}

describe('build records', () => {
  test('the subject names the asset: id is its asset key, url is where /image serves it', () => {
    expect(subject.id).toMatch(/^[0-9a-f]{64}$/);
    expect(subject.url).toBe(`http://factory.test:8080/image/${'a'.repeat(64)}/v1.11.3/metal-amd64.iso`);
  });

  test('queued → running → stages → done: stages timed, percent kept, log lines, fields of other states dropped', () => {
    const steps = run([
      queued(subject, 'user'),
      positioned(3),
      started(subject, 1, 'user', 'host/1'),
      progressed({ stage: 'fetching imager', percent: 5 }),
      progressed({ stage: 'assembling initramfs', percent: 50 }),
      progressed({ stage: 'uploading', percent: 95, bytes: 100 }),
      succeeded(subject, { size: 1234, sha256: 'f'.repeat(64) }, 'user'),
    ]);
    expect(steps.map((b) => b?.state)).toEqual(['queued', 'queued', 'running', 'running', 'running', 'running', 'done']);
    expect(steps[1]!.queuePosition).toBe(3);
    expect(steps[2]!.queuePosition).toBeUndefined();
    const done = steps[6]!;
    expect(done).toMatchObject({ state: 'done', percent: 100, size: 1234, sha256: 'f'.repeat(64), stage: 'uploading', priority: 'user', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:06.000Z' });
    expect(done.bytes).toBeUndefined();
    expect(done.stages).toEqual([
      { name: 'starting', startedAt: '2026-01-01T00:00:02.000Z', durationMs: 1000 },
      { name: 'fetching imager', startedAt: '2026-01-01T00:00:03.000Z', durationMs: 1000 },
      { name: 'assembling initramfs', startedAt: '2026-01-01T00:00:04.000Z', durationMs: 1000 },
      { name: 'uploading', startedAt: '2026-01-01T00:00:05.000Z', durationMs: 1000 },
    ]);
    expect(done.log.map((l) => l.slice(25))).toEqual(['queued (user)', 'started on host/1 (attempt 1)', 'fetching imager', 'assembling initramfs', 'uploading', `done: 1234 bytes, sha256 ${'f'.repeat(64)}`]);
  });

  test('nothing changed is no change (no event): same progress, position, a second request while queued', () => {
    const [, again, , same, lower] = run([queued(subject, 'user'), queued(subject, 'user'), started(subject, 1, 'user', 'w'), progressed({ stage: 'starting', percent: 0 }), progressed({ percent: -5 })]);
    expect(again).toBeUndefined();
    expect(same).toBeUndefined();
    // percent never goes down within a run
    expect(lower).toBeUndefined();
  });

  test('a user request takes over a pre-warm build; a new request after the end starts a new build', () => {
    const steps = run([queued(subject, 'prewarm'), queued(subject, 'user'), failed(subject, { status: 422, message: 'too large' }, 'user'), queued(subject, 'prewarm')]);
    expect(steps[1]!.priority).toBe('user');
    expect(steps[2]).toMatchObject({ state: 'failed', error: { status: 422, message: 'too large' } });
    expect(steps[3]).toMatchObject({ state: 'queued', priority: 'prewarm', createdAt: '2026-01-01T00:00:03.000Z', stages: [] });
    expect(steps[3]!.error).toBeUndefined();
  });

  test('a retried attempt goes back to queued, then runs again from 0 percent', () => {
    const steps = run([queued(subject, 'user'), started(subject, 1, 'user', 'w'), progressed({ stage: 'writing ISO', percent: 85 }), retrying(1), started(subject, 2, 'user', 'w')]);
    expect(steps[3]).toMatchObject({ state: 'queued' });
    expect(steps[3]!.percent).toBeUndefined();
    expect(steps[4]).toMatchObject({ state: 'running', percent: 0, stage: 'starting' });
    expect(steps[4]!.stages.every((s, i, all) => i === all.length - 1 || s.durationMs !== undefined)).toBe(true);
  });

  test('a worker creates the record nobody queued (an installer pull); progress without a record is ignored', () => {
    expect(progressed({ stage: 'x', percent: 1 })(undefined, new Date())).toBeUndefined();
    const [b] = run([started(subject, 1, 'user', 'w')]);
    expect(b).toMatchObject({ state: 'running', stage: 'starting', url: subject.url });
  });

  test('an already stored asset is a done build, unless one is under way', () => {
    const stored = { size: 10, sha256: 'e'.repeat(64) };
    const [done, again] = run([alreadyStored(subject, stored), alreadyStored(subject, stored)]);
    expect(done).toMatchObject({ state: 'done', percent: 100, size: 10, sha256: 'e'.repeat(64) });
    expect(again).toBeUndefined();
    const [, underWay] = run([queued(subject, 'user'), alreadyStored(subject, stored)]);
    expect(underWay).toBeUndefined();
  });

  test('progress on a record that says queued (written again after it expired while the job ran) makes it running', () => {
    const [, b] = run([queued(subject, 'user'), progressed({ stage: 'writing ISO', percent: 85 })]);
    expect(b).toMatchObject({ state: 'running', stage: 'writing ISO', percent: 85 });
    expect(b!.stages.map((s) => s.name)).toEqual(['writing ISO']);
  });

  test('the log keeps the last lines only', () => {
    const changes: BuildChange[] = [queued(subject, 'user'), started(subject, 1, 'user', 'w')];
    for (let i = 1; i <= 80; i++) changes.push(progressed({ stage: `stage ${i}`, percent: i }));
    const last = run(changes).pop()!;
    expect(last.log).toHaveLength(MAX_LOG_LINES);
    expect(last.log[MAX_LOG_LINES - 1]).toMatch(/ stage 80$/);
  });
});
