/**
 * The fuzz script: `node test/fuzz/dist/fuzz/main.js [--cases 10000] [--seed N] [--concurrency 8]` (after
 * `pnpm exec tsc -b`). Launches the embedded factory as `npm start` does (demo releases from FACTORY_TEST_DEMO_DIR or
 * .cache/demo-releases), prints the seed, runs the cases and a report; exits 1 on any 5xx, hang, memory above the
 * bound or unhealthy service. CI runs 2,000 cases of the same generator (test/integration/fuzz.test.ts).
 */
import './libs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDemoReleases } from '../support/factory';
import { launchFactory, stopProcess } from '../support/launcher';
import { freePort } from '../support/procs';
import { numberFlag } from './cli';
import { FUZZ_FACTORY_ENV } from './env';
import { formatReport, fuzzFactory, fuzzProblems } from './run';


async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const seed = numberFlag(argv, 'seed', Math.floor(Math.random() * 2 ** 31));
  const cases = numberFlag(argv, 'cases', 10_000);
  const concurrency = numberFlag(argv, 'concurrency', 8);
  const log = (line: string) => process.stdout.write(`[fuzz] ${line}\n`);
  log(`seed ${seed} (replay with --seed ${seed}), ${cases} cases, ${concurrency} in flight`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'factory-fuzz-'));
  const factory = await launchFactory({ port: await freePort(), dataDir, demoDir: ensureDemoReleases(), env: FUZZ_FACTORY_ENV });
  try {
    const report = await fuzzFactory(factory, { seed, cases, concurrency, log });
    process.stdout.write(`${formatReport(report)}\n`);
    const problems = fuzzProblems(report);
    for (const p of problems) process.stdout.write(`FAIL ${p}\n`);
    if (problems.length) process.stdout.write(`the factory's recent output:\n${factory.output().slice(-4000)}\n`);
    if (factory.proc.exitCode !== null) process.stdout.write(`FAIL the launcher exited (${factory.proc.exitCode})\n${factory.output().slice(-3000)}\n`);
    return problems.length || factory.proc.exitCode !== null ? 1 : 0;
  } finally {
    await stopProcess(factory.proc);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(2);
  },
);
