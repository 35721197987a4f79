import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { feed, freePort, ProcessError, run, start, toolEnv, waitForPort } from '@factory/process';
import { rejectionOf } from '../../../test/support/expect';
import { pidAlive, pidGone } from '../../../test/support/pids';

const failure = (p: Promise<unknown>) => rejectionOf(p, ProcessError);

/** Waits up to 3 s for `cond`. */
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'process-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('run', () => {
  test('captures stdout and stderr, feeds input', async () => {
    const r = await run('sh', ['-c', 'cat; echo err >&2'], { input: 'hello\n' });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.stderr).toBe('err\n');
    expect(r.stdoutTruncated).toBe(false);
  });

  test('a timeout kills the whole process group, grandchildren included', async () => {
    const pidFile = path.join(tmp, 'grandchild.pid');
    const t0 = Date.now();
    const e = await failure(run('sh', ['-c', `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e.reason).toBe('timeout');
    expect(e.message).toMatch(/^sh -c .* timed out after 300 ms/);
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(grandchild).toBeGreaterThan(0);
    expect(await pidGone(grandchild)).toBe(true);
  });

  test('a group that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const pidFile = path.join(tmp, 'stubborn.pid');
    const t0 = Date.now();
    const e = await failure(run('sh', ['-c', `trap '' TERM; sleep 30 & echo $! > ${pidFile}; wait; wait`], { timeoutMs: 200, killGraceMs: 300 }));
    expect(e.reason).toBe('timeout');
    expect(e.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(await pidGone(grandchild)).toBe(true);
  });

  test('background children do not outlive the tool', async () => {
    const pidFile = path.join(tmp, 'bg.pid');
    await run('sh', ['-c', `sleep 30 >/dev/null 2>&1 & echo $! > ${pidFile}`]);
    const bg = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(await pidGone(bg)).toBe(true);
  });

  test('output is bounded: the tail is kept and the result says it was truncated', async () => {
    const r = await run('seq', ['1', '100000'], { maxOutputBytes: 1000 });
    expect(r.stdout.length).toBe(1000);
    expect(r.stdoutTruncated).toBe(true);
    expect(r.stdout.toString().endsWith('\n99999\n100000\n')).toBe(true);
    const e = await failure(run('sh', ['-c', 'seq 1 100000 >&2; exit 1'], { maxOutputBytes: 100 }));
    expect(e.stderr.length).toBe(100);
    expect(e.stderr.endsWith('100000\n')).toBe(true);
  });

  test("onOverflow 'fail' stops a flooding tool", async () => {
    const e = await failure(run('sh', ['-c', 'yes'], { maxOutputBytes: 64 * 1024, onOverflow: 'fail', timeoutMs: 20_000 }));
    expect(e.reason).toBe('output');
    expect(e.message).toMatch(/stdout exceeded 65536 bytes/);
  });

  test('the environment is clean unless told otherwise', async () => {
    process.env.PROCESS_TEST_LEAK = 'leaked';
    process.env.SOURCE_DATE_EPOCH = '1';
    try {
      const env = async (o = {}) => (await run('env', [], o)).stdout.toString().trim().split('\n').sort();
      const clean = await env();
      expect(clean).toContain('LC_ALL=C');
      expect(clean).toContain('LANG=C.UTF-8');
      expect(clean).toContain(`PATH=${process.env.PATH}`);
      expect(clean.some((l) => l.startsWith('PROCESS_TEST_LEAK=') || l.startsWith('SOURCE_DATE_EPOCH='))).toBe(false);
      expect(clean.every((l) => /^(PATH|LANG|LC_ALL|HOME|TMPDIR)=/.test(l))).toBe(true);
      const extra = await env({ env: { SOURCE_DATE_EPOCH: '42', LANG: undefined }, passEnv: ['PROCESS_TEST_LEAK'] });
      expect(extra).toContain('SOURCE_DATE_EPOCH=42');
      expect(extra).toContain('PROCESS_TEST_LEAK=leaked');
      expect(extra.some((l) => l.startsWith('LANG='))).toBe(false);
      expect(await env({ baseEnv: 'empty', env: { PATH: '/usr/bin:/bin' } })).toEqual(['PATH=/usr/bin:/bin']);
    } finally {
      delete process.env.PROCESS_TEST_LEAK;
      delete process.env.SOURCE_DATE_EPOCH;
    }
    expect(toolEnv({}, {}).PATH).toMatch(/\/usr\/bin/);
  });

  test('errors name the command line, the exit code or signal and the stderr tail', async () => {
    const e = await failure(run('sh', ['-c', 'echo first >&2; echo "bad things" >&2; exit 3']));
    expect(e.reason).toBe('exit');
    expect(e.code).toBe(3);
    expect(e.message).toBe('sh -c echo first >&2; echo "bad things" >&2; exit 3 failed (exit code 3): first\nbad things');
    const k = await failure(run('sh', ['-c', 'kill -KILL $$']));
    expect(k.reason).toBe('signal');
    expect(k.signal).toBe('SIGKILL');
    expect(k.message).toMatch(/failed \(killed by SIGKILL\)$/);
    const s = await failure(run('/nonexistent/tool', ['x']));
    expect(s.reason).toBe('spawn');
    expect(s.message).toMatch(/^\/nonexistent\/tool x could not be started: .*ENOENT/);
  });

  test('allowFailure resolves with the exit code', async () => {
    const r = await run('sh', ['-c', 'echo out; exit 7'], { allowFailure: true });
    expect(r.code).toBe(7);
    expect(r.stdout.toString()).toBe('out\n');
  });
});

describe('start', () => {
  test('streams stdin to stdout', async () => {
    const p = start('tr', ['a-z', 'A-Z'], { stdin: 'pipe', stdout: 'pipe' });
    const chunks: Buffer[] = [];
    p.stdout!.on('data', (d: Buffer) => chunks.push(d));
    await feed(p, [Buffer.from('abc'), Buffer.from('def\n')]);
    expect(Buffer.concat(chunks).toString()).toBe('ABCDEF\n');
  });

  test('captured stdout and a failing tool', async () => {
    const ok = start('echo', ['hi'], { stdout: 'capture' });
    await ok.done;
    expect(ok.capturedStdout()).toBe('hi\n');
    const bad = start('sh', ['-c', 'echo nope >&2; exit 2']);
    await expect(bad.done).rejects.toThrow('sh -c echo nope >&2; exit 2 failed (exit code 2): nope');
    expect(bad.stderrTail()).toBe('nope\n');
  });

  test('the tool error wins over the EPIPE of its stdin', async () => {
    const p = start('sh', ['-c', 'echo refused >&2; exit 4'], { stdin: 'pipe' });
    const big = Buffer.alloc(1 << 20);
    await expect(feed(p, (function* () { for (let i = 0; i < 64; i++) yield big; })())).rejects.toThrow(/exit code 4\): refused/);
  });

  test('abandon kills the group and done resolves', async () => {
    const pidFile = path.join(tmp, 'abandoned.pid');
    const p = start('sh', ['-c', `sleep 30 & echo $! > ${pidFile}; wait`]);
    expect(await until(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '')).toBe(true);
    p.abandon();
    await p.done;
    expect(await pidGone(Number(fs.readFileSync(pidFile, 'utf8')))).toBe(true);
  });

  test('stop ends a server gracefully (SIGTERM to the group) and done resolves', async () => {
    const pidFile = path.join(tmp, 'server.pid');
    const p = start('sh', ['-c', `trap 'echo terminated >&2; exit 0' TERM; sleep 30 & echo $! > ${pidFile}; wait`]);
    expect(await until(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '')).toBe(true);
    const child = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(pidAlive(child)).toBe(true);
    const t0 = Date.now();
    await p.stop(5000);
    expect(Date.now() - t0).toBeLessThan(4000);
    await p.done;
    expect(p.stderrTail()).toBe('terminated\n');
    expect(await pidGone(child)).toBe(true);
  });

  test('a timeout applies to streaming tools too', async () => {
    const p = start('sleep', ['30'], { timeoutMs: 200 });
    await expect(p.done).rejects.toThrow(/^sleep 30 timed out after 200 ms$/);
  });
});

describe('ports', () => {
  test('freePort gives a bindable port; waitForPort sees a listener', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const srv = net.createServer().listen(port, '127.0.0.1');
    try {
      await waitForPort(port, { timeoutMs: 2000 });
    } finally {
      srv.close();
    }
    await expect(waitForPort(port, { timeoutMs: 100, what: 'nothing' })).rejects.toThrow(`nothing did not start listening on port ${port} within 100 ms`);
  });

  test('a port is not handed out twice (its taker may not have bound it yet), nor an excluded one', async () => {
    const reserved = new Set([await freePort()]);
    const picked = new Set<number>();
    for (let i = 0; i < 300; i++) picked.add(await freePort({ exclude: reserved }));
    expect(picked.size).toBe(300);
    expect([...picked].some((p) => reserved.has(p))).toBe(false);
  });
});
