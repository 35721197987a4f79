/**
 * The soak: `node bench/soak.js [--minutes 10] [--kill-every 60] [--builds-per-minute 4]` (after `pnpm exec tsc -b`).
 * Mixed load against the embedded factory (`npm start`) — cache hits on prebuilt assets, cold builds of new
 * schematics (a new kernel argument each, so each is a new ISO), installer pulls through the registry API with every
 * blob's digest checked — while the build-worker is killed with SIGKILL every `kill-every` seconds (the first kill
 * half an interval in, each while a cold build it was just asked for runs a build tool; the launcher restarts it). Every request must succeed: one in flight to a killed worker
 * completes through the retried job. Prints requests, errors, p50/p99 per kind, RSS per process at start and end;
 * exits 1 on any error.
 */
import './libs';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDemoReleases } from '../support/factory';
import { LaunchedFactory, launchedProcess, launchFactory, stopProcess } from '../support/launcher';
import { freePort } from '../support/procs';
import { megabytes, processCommand, processName, processTree, RssSampler } from '../support/rss';
import { numberFlag } from './cli';
import { FUZZ_FACTORY_ENV } from './env';
import { unhealthyServices } from './run';

type Kind = 'hit' | 'cold-build' | 'pull';

interface Sample {
  kind: Kind;
  what: string;
  ms: number;
  error?: string;
}

const VERSION = 'v1.12.2';
const log = (line: string) => process.stdout.write(`[soak] ${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function postSchematic(url: string, body: string): Promise<string> {
  const res = await fetch(`${url}/schematics`, { method: 'POST', body });
  if (res.status !== 201) throw new Error(`POST /schematics ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** GET that must answer 200; resolves to the body. */
async function get200(url: string, init: RequestInit & { timeoutMs: number }): Promise<{ body: Buffer; headers: Headers }> {
  const res = await fetch(url, { ...init, redirect: 'follow', signal: AbortSignal.timeout(init.timeoutMs) });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`${res.status} ${body.toString('utf8', 0, 200).trim()}`);
  return { body, headers: res.headers };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const INDEX_TYPES = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json';
const MANIFEST_TYPES = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/** Pulls installer/<id>:<version> as a client does: index, each manifest, config and layers; every digest checked. */
async function pullInstaller(url: string, id: string, timeoutMs: number): Promise<number> {
  const repo = `${url}/v2/installer/${id}`;
  let bytes = 0;
  const index = await get200(`${repo}/manifests/${VERSION}`, { headers: { accept: INDEX_TYPES }, timeoutMs });
  const manifests = (JSON.parse(index.body.toString()) as { manifests: { digest: string }[] }).manifests;
  for (const m of manifests) {
    const manifest = await get200(`${repo}/manifests/${m.digest}`, { headers: { accept: MANIFEST_TYPES }, timeoutMs });
    if (sha256(manifest.body) !== m.digest) throw new Error(`manifest ${m.digest} has digest ${sha256(manifest.body)}`);
    const parsed = JSON.parse(manifest.body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    for (const blob of [parsed.config, ...parsed.layers]) {
      const got = await get200(`${repo}/blobs/${blob.digest}`, { timeoutMs });
      if (sha256(got.body) !== blob.digest) throw new Error(`blob ${blob.digest} has digest ${sha256(got.body)}`);
      bytes += got.body.length;
    }
  }
  return bytes;
}

/** Waits until a build tool (a process below the worker's sandboxes that is not node) runs; its name, or undefined. */
async function buildToolRunning(workerPid: number, ms: number): Promise<string | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const pid of processTree(workerPid)) {
      const name = processName(pid);
      if (name === 'build-tools') return (processCommand(pid) ?? name).split(' ')[0].split('/').pop();
    }
    await sleep(10);
  }
  return undefined;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0;
}

export async function soak(factory: LaunchedFactory, o: { minutes: number; killEverySec: number; buildsPerMinute: number }): Promise<{ errors: Sample[]; lines: string[] }> {
  const url = factory.url;
  const samples: Sample[] = [];
  const timed = async (kind: Kind, what: string, fn: () => Promise<unknown>) => {
    const started = Date.now();
    try {
      await fn();
      samples.push({ kind, what, ms: Date.now() - started });
    } catch (err) {
      const sample = { kind, what, ms: Date.now() - started, error: (err as Error).message };
      samples.push(sample);
      log(`ERROR ${kind} ${what}: ${sample.error} after ${sample.ms} ms`);
    }
  };

  // Setup (not measured): the assets cache hits read, and an installer to pull (one cold installer build).
  const defaultId = await postSchematic(url, '{}');
  const hitPaths = [`/image/${defaultId}/${VERSION}/kernel-amd64`, `/image/${defaultId}/${VERSION}/cmdline-metal-amd64`, `/image/${defaultId}/${VERSION}/kernel-amd64.sha256`, `/pxe/${defaultId}/${VERSION}/metal-amd64`];
  for (const p of hitPaths) await get200(url + p, { timeoutMs: 300_000 });
  log('building the installer the pulls read (once)…');
  const setupStarted = Date.now();
  await pullInstaller(url, defaultId, 600_000);
  log(`installer ready after ${((Date.now() - setupStarted) / 1000).toFixed(0)} s; load for ${o.minutes} min, build-worker SIGKILL every ${o.killEverySec} s`);

  const sampler = new RssSampler(factory.proc.pid!, 1000);
  const started = Date.now();
  const endAt = started + o.minutes * 60_000;
  const inFlight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  // cache hits: three lanes, each request must be a 200 with a body
  const hitLane = async (lane: number) => {
    for (let i = lane; Date.now() < endAt; i++) {
      const p = hitPaths[i % hitPaths.length];
      await timed('hit', p.split('/').pop()!, () => get200(url + p, { timeoutMs: 30_000 }));
      await sleep(20);
    }
  };
  // installer pulls: one lane
  const pullLane = async () => {
    while (Date.now() < endAt) {
      await timed('pull', `installer/${defaultId.slice(0, 8)}:${VERSION}`, () => pullInstaller(url, defaultId, 120_000));
      await sleep(500);
    }
  };
  // cold builds: a new schematic (new kernel argument) each, not waiting for the previous (a build may be retried)
  let builds = 0;
  const coldBuild = (note = '') => {
    const arg = `soak=${started}-${++builds}`;
    track(timed('cold-build', `metal-amd64.iso (${arg})${note}`, async () => {
      const id = await postSchematic(url, `customization:\n  extraKernelArgs: [${arg}]\n`);
      await get200(`${url}/image/${id}/${VERSION}/metal-amd64.iso`, { timeoutMs: 300_000 });
    }));
  };
  const buildLane = async () => {
    while (Date.now() < endAt) {
      coldBuild();
      await sleep(60_000 / o.buildsPerMinute);
    }
  };
  // the build-worker killer: first kill half an interval in, each in the middle of a cold build asked for just before
  let kills = 0;
  const killer = async () => {
    for (let at = started + (o.killEverySec * 1000) / 2; at < endAt; at += o.killEverySec * 1000) {
      await sleep(Math.max(0, at - Date.now()));
      const pid = launchedProcess(factory.proc.pid!, 'build-worker');
      if (pid === undefined) {
        log('no build-worker process to kill (still restarting?)');
        continue;
      }
      coldBuild(', its worker killed mid-build');
      const building = await buildToolRunning(pid, 10_000);
      process.kill(pid, 'SIGKILL');
      kills++;
      log(`SIGKILL build-worker ${pid} (kill ${kills}, ${building ? `while ${building} ran` : 'no build tool seen within 10 s'}); cold builds in flight: ${inFlight.size}`);
    }
  };

  await Promise.all([hitLane(0), hitLane(1), hitLane(2), pullLane(), buildLane(), killer()]);
  log(`load window over; waiting for ${inFlight.size} cold build(s) in flight`);
  while (inFlight.size) await Promise.all([...inFlight]);
  sampler.stop();

  const lines: string[] = [];
  lines.push(`${o.minutes} min, ${kills} build-worker kill(s), ${samples.length} requests, ${samples.filter((s) => s.error).length} errors`);
  for (const kind of ['hit', 'cold-build', 'pull'] as Kind[]) {
    const of = samples.filter((s) => s.kind === kind);
    const ms = of.map((s) => s.ms).sort((a, b) => a - b);
    lines.push(`  ${kind.padEnd(10)} ${String(of.length).padStart(6)} requests, ${of.filter((s) => s.error).length} errors, p50 ${percentile(ms, 0.5)} ms, p99 ${percentile(ms, 0.99)} ms, max ${ms[ms.length - 1] ?? 0} ms`);
  }
  for (const b of samples.filter((x) => x.kind === 'cold-build')) lines.push(`    ${b.what}: ${b.error ? `ERROR ${b.error}` : 'ok'} in ${b.ms} ms`);
  lines.push('RSS (start → end, peak):');
  for (const name of [...new Set([...sampler.first.keys(), ...sampler.peak.keys()])].sort()) {
    lines.push(`  ${name.padEnd(18)} ${megabytes(sampler.first.get(name)).padStart(7)} → ${megabytes(sampler.last.get(name)).padStart(7)}, peak ${megabytes(sampler.peak.get(name))}`);
  }
  const unhealthy = await unhealthyServices(factory);
  lines.push(`health at the end: ${unhealthy.length ? unhealthy.join('; ') : 'every service answers /healthz, /readyz 200'}`);
  const errors = samples.filter((s) => s.error);
  for (const u of unhealthy) errors.push({ kind: 'hit', what: 'health at the end', ms: 0, error: u });
  return { errors, lines };
}

/** The command line (bench/soak.js): exits with 1 on any error, 2 when the soak could not run. */
export function soakCli(): void {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`${err.stack ?? err.message}\n`);
      process.exit(2);
    },
  );
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const minutes = numberFlag(argv, 'minutes', 10);
  const killEverySec = numberFlag(argv, 'kill-every', 60);
  const buildsPerMinute = numberFlag(argv, 'builds-per-minute', 4);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'factory-soak-'));
  const factory = await launchFactory({ port: await freePort(), dataDir, demoDir: ensureDemoReleases(), env: FUZZ_FACTORY_ENV });
  try {
    const { errors, lines } = await soak(factory, { minutes, killEverySec, buildsPerMinute: Math.max(buildsPerMinute, 0.1) });
    for (const l of lines) process.stdout.write(`${l}\n`);
    for (const e of errors) process.stdout.write(`FAIL ${e.kind} ${e.what}: ${e.error} (${e.ms} ms)\n`);
    if (factory.proc.exitCode !== null) process.stdout.write(`FAIL the launcher exited (${factory.proc.exitCode})\n${factory.output().slice(-3000)}\n`);
    return errors.length || factory.proc.exitCode !== null ? 1 : 0;
  } finally {
    await stopProcess(factory.proc);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
