/**
 * Issue 10, fuzz proof (CI form): 2,000 generated requests — schematic bodies, paths, headers, OCI requests and
 * malformed HTTP — against the embedded factory (`npm start`): no 5xx, no request over 5 s, every process's RSS
 * under 600 MB, every service healthy at the end, no cold build queued by a case but the few follow-ups (the command line
 * of a schematic a fuzzed body created). The full run is
 * `node test/fuzz/dist/fuzz/main.js` (10,000 cases by default). FUZZ_SEED / FUZZ_CASES replay or widen this one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FUZZ_FACTORY_ENV } from '../fuzz/env';
import { formatReport, fuzzFactory, fuzzProblems } from '../fuzz/run';
import { ensureDemoReleases } from '../support/factory';
import { LaunchedFactory, launchFactory, stopProcess } from '../support/launcher';
import { freePort } from '../support/procs';

jest.setTimeout(300_000);

let dataDir: string;
let factory: LaunchedFactory;

beforeAll(async () => {
  const demoDir = ensureDemoReleases();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'fuzz-'));
  factory = await launchFactory({ port: await freePort(), dataDir, demoDir, env: FUZZ_FACTORY_ENV });
}, 180_000);

afterAll(async () => {
  if (factory) await stopProcess(factory.proc);
  rmSync(dataDir, { recursive: true, force: true });
});

test('2,000 fuzzed requests: no 5xx, no hang, bounded memory, every service healthy after', async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const cases = Number(process.env.FUZZ_CASES ?? 2000);
  process.stdout.write(`[fuzz] seed ${seed} (replay: FUZZ_SEED=${seed}, or node test/fuzz/dist/fuzz/main.js --seed ${seed} --cases ${cases})\n`);
  const report = await fuzzFactory(factory, { seed, cases });
  process.stdout.write(`${formatReport(report)}\n`);
  expect(report.cases).toBe(cases);
  // only follow-up cases (the command line of a fuzz-created schematic) may build, one asset each (checked in fuzzProblems)
  expect(report.buildsDuringCases).toBeDefined();
  expect(report.rssPeak.get('gateway')).toBeGreaterThan(0);
  const problems = fuzzProblems(report);
  if (problems.length) process.stdout.write(`the factory's recent output:\n${factory.output().slice(-4000)}\n`);
  expect(problems).toEqual([]);
  expect(factory.proc.exitCode).toBeNull();
});
