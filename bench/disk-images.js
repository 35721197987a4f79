// bench/disk-images: a cold v1.11.3 metal-amd64.raw.xz (dual-boot, 4247 MiB, 3 extensions) through the factory vs the
// floor of its tool steps run directly (bench/iso-floor.sh with FLOOR_OUTPUT=disk), and the build-worker's peak RSS
// while producing it (node processes: the worker and its sandboxes; external tools reported separately).
// usage: node bench/disk-images.js   (after `npm run build`; BENCH_RUNS=2 by default)
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startFactory, createSchematic, floorInputs, table, stopAll } = require('./lib');

const RUNS = Number(process.env.BENCH_RUNS || 2);
const VERSION = 'v1.11.3';
const EXTENSIONS = ['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function descendants(pid) {
  let kids = [];
  try { kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { /* gone */ }
  return kids.flatMap((k) => [k, ...descendants(k)]);
}
function rssOf(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const name = /Name:\s+(\S+)/.exec(status)[1];
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    return { name, rss, hwm };
  } catch { return null; }
}

(async () => {
  const f = await startFactory({ s3: process.env.BENCH_STORAGE === 's3' });
  const workerPid = f.services['build-worker'].pid;
  const warm = await createSchematic(f.url, { customization: { systemExtensions: { officialExtensions: EXTENSIONS } } });
  if ((await fetch(`${f.url}/image/${warm}/${VERSION}/initramfs-amd64.xz`, { method: 'HEAD' })).status !== 200) throw new Error('warm-up failed');

  const factoryMs = [];
  const peak = { node: 0, tools: 0, tool: '' };
  for (let i = 0; i < RUNS; i++) {
    const id = await createSchematic(f.url, { customization: { extraKernelArgs: [`bench-${Date.now()}-${i}`], systemExtensions: { officialExtensions: EXTENSIONS } } });
    const sampler = setInterval(() => {
      for (const pid of [workerPid, ...descendants(workerPid)]) {
        const r = rssOf(pid);
        if (!r) continue;
        if (r.name === 'node' || r.name.startsWith('node')) peak.node = Math.max(peak.node, r.hwm, r.rss);
        else if (r.rss > peak.tools) { peak.tools = r.rss; peak.tool = r.name; }
      }
    }, 25);
    const t = process.hrtime.bigint();
    const res = await fetch(`${f.url}/image/${id}/${VERSION}/metal-amd64.raw.xz`, { method: 'HEAD' });
    factoryMs.push(Number(process.hrtime.bigint() - t) / 1e6);
    clearInterval(sampler);
    if (res.status !== 200) throw new Error(`build failed: ${res.status} ${await res.text()}`);
  }

  const { imager, extensions: exts } = floorInputs(f, warm);
  const floorMs = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    execFileSync('bash', [path.join(__dirname, 'iso-floor.sh'), imager, path.join(f.tmp, 'floor'), ...exts], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, FLOOR_OUTPUT: 'disk' } });
    floorMs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }

  console.log(`\ncold ${VERSION} metal-amd64.raw.xz (dual-boot, 4247 MiB) with ${EXTENSIONS.length} extensions, median of ${RUNS}`);
  table([
    ['', 'median ms', 'runs ms'],
    ['factory (HTTP→queue→sandbox→storage)', median(factoryMs).toFixed(0), factoryMs.map((x) => x.toFixed(0)).join(' ')],
    ['floor (tool steps run directly)', median(floorMs).toFixed(0), floorMs.map((x) => x.toFixed(0)).join(' ')],
  ]);
  console.log(`build ratio factory/floor: ${(median(factoryMs) / median(floorMs)).toFixed(2)}`);
  console.log(`build-worker peak RSS (node: worker + sandboxes): ${(peak.node / 2 ** 20).toFixed(0)} MiB (target <= 256 MiB)`);
  console.log(`largest external tool RSS: ${(peak.tools / 2 ** 20).toFixed(0)} MiB (${peak.tool})`);
  stopAll();
  process.exit(0);
})().catch((e) => { console.error(e); stopAll(); process.exit(1); });
