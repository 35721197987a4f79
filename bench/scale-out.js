// bench/scale-out: prints, side by side in one run (README, "Scaling out"),
//  1. four distinct cold metal-amd64.iso builds asked for at once, with 1 build-worker vs 2 build-workers
//     (BUILD_CONCURRENCY=1 each, so that the second worker is the only added build slot; target <= 0.65 on 2 cores);
//  2. 50 concurrent cold requests for one asset spread over 2 gateways vs a single cold request for another asset of
//     the same kind: exactly 1 build, wall <= 1.1x;
//     (and 50 over 1 gateway: each gateway reads and hashes an asset before its first serve, see README "Integrity");
//  and the build-workers' largest event-loop lag meanwhile (what the build queue's lock renewal must tolerate).
// usage: node bench/scale-out.js   (after `npm run build`; BENCH_RUNS=3 rounds by default; BENCH_STORAGE=local for the
// local-directory store instead of s3rver)
'use strict';
const path = require('node:path');
const { ROOT, cpuWindow, formatCpu, startFactory, createSchematic, freePort, start, waitPort, table, stopAll } = require('./lib');

const RUNS = Number(process.env.BENCH_RUNS || 3);
const VERSION = 'v1.11.3';
const EXTENSIONS = ['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let unique = 0;

async function timed(fn) {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function coldIso(url) {
  const id = await createSchematic(url, { customization: { extraKernelArgs: [`bench-scale-${process.pid}-${unique++}`], systemExtensions: { officialExtensions: EXTENSIONS } } });
  return `/image/${id}/${VERSION}/metal-amd64.iso`;
}

async function head(url) {
  const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(300_000) });
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
}

/**
 * A worker's first build also starts its build sandbox (a Node process loading the build code): what a new replica
 * pays once, not what each build costs in a running cluster. Two cold builds at once (not measured) give each of two
 * idle workers one, so the measured rounds compare warm workers.
 */
async function warmWorkers(url) {
  const paths = await Promise.all([0, 1].map(() => coldIso(url)));
  await Promise.all(paths.map((p) => head(`${url}${p}`)));
}

async function metric(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name) && !l.startsWith('#')).reduce((n, l) => Math.max(n, Number(l.split(' ').pop())), 0);
}

async function sumBuilt(ports) {
  let n = 0;
  for (const p of ports) {
    const text = await (await fetch(`http://127.0.0.1:${p}/metrics`)).text();
    for (const l of text.split('\n')) if (l.startsWith('image_factory_assets_built_total{') && l.includes('outcome="ok"')) n += Number(l.split(' ').pop());
  }
  return n;
}

(async () => {
  const workerMetrics = [await freePort()];
  const f = await startFactory({
    s3: process.env.BENCH_STORAGE !== 'local',
    extraEnv: { BUILD_CONCURRENCY: '1', FACTORY_RATE_SCHEMATICS: 'off', FACTORY_RATE_BUILDS: 'off', FACTORY_MAX_CLIENT_BUILDS: '0', FACTORY_SCRUB_INTERVAL: '0' },
  });
  // The build-worker started with the others has no metrics port: replace it by one that has.
  f.services['build-worker'].kill('SIGTERM');
  const startWorker = async (port) => {
    const w = start(process.execPath, [path.join(ROOT, 'services/build-worker/dist/main.js')], { ...f.env, METRICS_PORT: String(port) });
    await waitPort(port);
    return w;
  };
  await startWorker(workerMetrics[0]);
  // Warm the input cache (imager and extension trees): every measured build starts from the same extracted inputs.
  await head(`${f.url}${await coldIso(f.url)}`);

  const gateway2Port = await freePort();
  start(process.execPath, [path.join(ROOT, 'services/gateway/dist/main.js')], { ...f.env, PORT: String(gateway2Port) });
  await waitPort(gateway2Port);
  const gateways = [f.url, `http://127.0.0.1:${gateway2Port}`];

  const oneWorkerMs = [];
  const twoWorkersMs = [];
  const twoWorkersCpu = [];
  let lagMaxS = 0;
  const cpuLines = [];
  for (let r = 0; r < RUNS; r++) {
    for (const workers of [1, 2]) {
      let second;
      if (workers === 2) {
        workerMetrics[1] = await freePort();
        second = await startWorker(workerMetrics[1]);
        await warmWorkers(f.url);
      }
      const paths = await Promise.all([0, 1, 2, 3].map(() => coldIso(f.url)));
      for (const p of workerMetrics.slice(0, workers)) await metric(p, 'nodejs_eventloop_lag_max_seconds'); // reset the window
      const cpu = cpuWindow();
      const ms = await timed(() => Promise.all(paths.map((p) => head(`${f.url}${p}`))));
      const used = cpu();
      if (workers === 2) twoWorkersCpu.push(used);
      cpuLines.push(`  ${workers} worker${workers > 1 ? 's' : ''}, round ${r + 1}: ${formatCpu(used)}`);
      for (const p of workerMetrics.slice(0, workers)) lagMaxS = Math.max(lagMaxS, await metric(p, 'nodejs_eventloop_lag_max_seconds'));
      (workers === 1 ? oneWorkerMs : twoWorkersMs).push(ms);
      if (second) {
        second.kill('SIGTERM');
        await new Promise((resolve) => second.once('exit', resolve));
      }
    }
  }

  // Both workers for the single-asset comparison: the 50 requests may land anywhere.
  workerMetrics[1] = await freePort();
  await startWorker(workerMetrics[1]);
  await warmWorkers(f.url);
  const singleMs = [];
  const fiftyMs = [];
  const fiftySpread = [];
  const fiftyOneGatewayMs = [];
  const fiftyWarmMs = [];
  const buildsPerFifty = [];
  for (let r = 0; r < RUNS; r++) {
    const single = await coldIso(f.url);
    const cpuSingle = cpuWindow();
    singleMs.push(await timed(() => head(`${f.url}${single}`)));
    cpuLines.push(`  1 request, round ${r + 1}: ${formatCpu(cpuSingle())}`);
    const shared = await coldIso(f.url);
    const before = await sumBuilt(workerMetrics);
    const cpu = cpuWindow();
    const t0 = process.hrtime.bigint();
    const doneAt = await Promise.all(Array.from({ length: 50 }, (_, i) => head(`${gateways[i % 2]}${shared}`).then(() => Number(process.hrtime.bigint() - t0) / 1e6)));
    fiftyMs.push(Math.max(...doneAt));
    fiftySpread.push(`${Math.min(...doneAt).toFixed(0)}..${Math.max(...doneAt).toFixed(0)}`);
    cpuLines.push(`  50 requests over 2 gateways, round ${r + 1}: ${formatCpu(cpu())}`);
    buildsPerFifty.push((await sumBuilt(workerMetrics)) - before);
    // the same 50 requests once the asset is stored: what 50 concurrent requests cost here without any build
    fiftyWarmMs.push(await timed(() => Promise.all(Array.from({ length: 50 }, (_, i) => head(`${gateways[i % 2]}${shared}`)))));
    const sharedOne = await coldIso(f.url);
    fiftyOneGatewayMs.push(await timed(() => Promise.all(Array.from({ length: 50 }, () => head(`${f.url}${sharedOne}`)))));
  }

  console.log(`\nfour distinct cold ${VERSION} metal-amd64.iso builds asked for at once (BUILD_CONCURRENCY=1 per worker), ${RUNS} rounds`);
  table([
    ['', 'median ms', 'runs ms'],
    ['1 build-worker', median(oneWorkerMs).toFixed(0), oneWorkerMs.map((x) => x.toFixed(0)).join(' ')],
    ['2 build-workers', median(twoWorkersMs).toFixed(0), twoWorkersMs.map((x) => x.toFixed(0)).join(' ')],
  ]);
  console.log(`ratio 2 workers / 1 worker: ${(median(twoWorkersMs) / median(oneWorkerMs)).toFixed(2)} (target <= 0.65 on 2 cores)`);
  // Later rounds on these VMs run slower (new page-cache pages get expensive once ~1 GB was written, see README
  // "Benchmarks"): the fastest round of each side is its own cost without that.
  console.log(`fastest 2-worker round / fastest 1-worker round: ${(Math.min(...twoWorkersMs) / Math.min(...oneWorkerMs)).toFixed(2)}`);
  // What the machine allowed: the 2-worker rounds cannot end before their CPU work fits on the cores, nor before the
  // S3 server (one thread, on the same cores here) has taken the four uploads.
  const bounds = twoWorkersCpu.map((c) => {
    const total = Object.values(c.byName).reduce((a, b) => a + b, 0);
    return { cores: (total / c.cores) * 1000, s3: (c.byName.s3rver ?? 0) * 1000 };
  });
  if (bounds.length) {
    const lower = bounds.map((b) => Math.max(b.cores, b.s3));
    console.log(`lower bound of each 2-worker round from its CPU use (ms): ${bounds.map((b) => `${Math.max(b.cores, b.s3).toFixed(0)} (all CPU / ${twoWorkersCpu[0].cores} cores ${b.cores.toFixed(0)}, s3rver's thread ${b.s3.toFixed(0)})`).join('; ')}`);
    console.log(`ratio bound on this machine: ${(median(lower) / median(oneWorkerMs)).toFixed(2)} (median bound / median 1 worker)`);
  }
  console.log(`largest event-loop lag of a build-worker's main process meanwhile: ${(lagMaxS * 1000).toFixed(0)} ms (build lock renewal tolerates ~15000 ms)`);

  console.log(`\none cold metal-amd64.iso: a single request vs 50 concurrent requests over 2 gateways, ${RUNS} rounds`);
  table([
    ['', 'median ms', 'runs ms', 'builds'],
    ['1 request', median(singleMs).toFixed(0), singleMs.map((x) => x.toFixed(0)).join(' '), '1'],
    ['50 requests, 2 gateways', median(fiftyMs).toFixed(0), fiftyMs.map((x) => x.toFixed(0)).join(' '), buildsPerFifty.join(' ')],
    ['50 requests, 1 gateway', median(fiftyOneGatewayMs).toFixed(0), fiftyOneGatewayMs.map((x) => x.toFixed(0)).join(' '), ''],
    ['50 requests, 2 gateways, stored', median(fiftyWarmMs).toFixed(0), fiftyWarmMs.map((x) => x.toFixed(0)).join(' '), '0'],
  ]);
  console.log(`first..last of the 50 responses over 2 gateways (ms): ${fiftySpread.join(', ')}`);
  console.log(`wall ratio 50 over 2 gateways / 1: ${(median(fiftyMs) / median(singleMs)).toFixed(2)} (target <= 1.1); 50 over 1 gateway / 1: ${(median(fiftyOneGatewayMs) / median(singleMs)).toFixed(2)}; builds per 50 requests: ${buildsPerFifty.join(' ')} (target 1)`);
  console.log(`fastest 50 over 2 gateways / fastest 1 request: ${(Math.min(...fiftyMs) / Math.min(...singleMs)).toFixed(2)}`);
  console.log(`\nwhere the CPU went (the machine's busy share; CPU seconds by process, children included):\n${cpuLines.join('\n')}`);
  console.log(`storage: ${f.s3Endpoint ? 's3rver' : 'local directory'}; load average at the end: ${require('node:os').loadavg().map((x) => x.toFixed(1)).join(' ')} on ${require('node:os').cpus().length} cores`);
  stopAll();
  process.exit(0);
})().catch((e) => { console.error(e); stopAll(); process.exit(1); });
