/**
 * Issue 10 item 2: one crashed process does not take the embedded factory down. The launcher restarts a service
 * (and its own Redis, from the append-only file) that was killed with SIGKILL, the factory answers again, no
 * schematic is lost, and a process that keeps crashing is a crash loop that stops the factory with a reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDemoReleases } from '../support/factory';
import { LaunchedFactory, launchedProcess, launchFactory, stopProcess } from '../support/launcher';
import { freePort } from '../support/procs';
import { until as pollUntil } from '../support/wait';

jest.setTimeout(300_000);

let dataDir: string;
let factory: LaunchedFactory;

beforeAll(async () => {
  const demoDir = ensureDemoReleases();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'fault-launcher-'));
  factory = await launchFactory({ port: await freePort(), dataDir, demoDir });
}, 180_000);

afterAll(async () => {
  if (factory) await stopProcess(factory.proc);
  rmSync(dataDir, { recursive: true, force: true });
});

const until = <T>(what: string, get: () => Promise<T | undefined | false> | T | undefined | false, ms: number) =>
  pollUntil(what, get, { ms, everyMs: 100, context: () => factory.output().slice(-3000) });

const ready = async () => {
  try {
    return (await fetch(`${factory.url}/readyz`)).status === 200;
  } catch {
    return false;
  }
};

async function createSchematic(arg: string): Promise<string> {
  const res = await fetch(`${factory.url}/schematics`, { method: 'POST', body: `customization:\n  extraKernelArgs: [${arg}]\n` });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** kill -9 of one process; the launcher restarts it and the factory becomes ready again. */
async function killAndRecover(name: string): Promise<number> {
  const pid = await until(`the ${name} process`, () => launchedProcess(factory.proc.pid!, name), 10_000);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  const replacement = await until(`${name} to be restarted`, () => {
    const now = launchedProcess(factory.proc.pid!, name);
    return now !== undefined && now !== pid ? now : undefined;
  }, 30_000);
  await until('the factory to be ready again', ready, 60_000);
  const ms = Date.now() - killedAt;
  process.stdout.write(`[fault-launcher] ${name}: pid ${pid} killed, restarted as ${replacement}, ready again after ${ms} ms\n`);
  expect(factory.proc.exitCode).toBeNull();
  return ms;
}

test('kill -9 of a service or of Redis: restarted, ready again, no schematic lost', async () => {
  const before = await createSchematic('before-the-crashes');
  for (const name of ['build-worker', 'schematic-store', 'registry-proxy', 'signing', 'redis-server']) {
    await killAndRecover(name);
    // The factory works again, and still has what it had (/readyz is cached for 2 s: ask until the store answers).
    await until(`the schematic created before to be served after ${name} was killed`, async () => (await fetch(`${factory.url}/schematics/${before}`)).status === 200, 30_000);
    await createSchematic(`after-${name}`);
  }
  expect(factory.output()).toContain('restarting it in');
  // The signing service answers again (its key survived the restart).
  expect((await fetch(`${factory.url}/oci/cosign/signing-key.pub`)).status).toBe(200);
});

test('a process that keeps crashing is a crash loop: the factory stops and says why', async () => {
  const exited = new Promise<number | null>((r) => factory.proc.once('exit', (code) => r(code)));
  for (let i = 0; i < 10 && factory.proc.exitCode === null; i++) {
    const pid = await until('the schematic-store process', () => launchedProcess(factory.proc.pid!, 'schematic-store') ?? factory.proc.exitCode !== null, 30_000);
    if (typeof pid !== 'number') break;
    process.kill(pid, 'SIGKILL');
    await until('schematic-store to be gone', () => launchedProcess(factory.proc.pid!, 'schematic-store') !== pid, 10_000);
  }
  expect(await exited).toBe(1);
  expect(factory.output()).toMatch(/schematic-store exited unexpectedly .*times within 60 s: crash loop, stopping the factory/);
});
