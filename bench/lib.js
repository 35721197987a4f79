// Shared helpers for the benchmark scripts: real processes on loopback (Redis, s3rver, the demo upstream
// registry, the five compiled services), wrk runs, and side-by-side ratio printing.
'use strict';
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const procs = [];

// one home for ports: @factory/process (compiled; the benchmarks run the compiled services anyway)
const { freePort, waitForPort } = require('../libs/process/dist');

function waitPort(port, ms = 20000) {
  return waitForPort(port, { timeoutMs: ms });
}

/** `onLine`: called with each stdout line (stdout is then piped; else inherited with BENCH_VERBOSE, or ignored). */
function start(cmd, args, env = process.env, { onLine } = {}) {
  const stdout = onLine ? 'pipe' : process.env.BENCH_VERBOSE ? 'inherit' : 'ignore';
  const p = spawn(cmd, args, { env, stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err = (err + d).slice(-4000); });
  if (onLine) {
    let pending = '';
    p.stdout.on('data', (d) => {
      if (process.env.BENCH_VERBOSE) process.stdout.write(d);
      const lines = (pending + d).split('\n');
      pending = lines.pop();
      for (const line of lines) onLine(line);
    });
  }
  p.tail = () => err;
  procs.push(p);
  return p;
}

function stopAll() {
  for (const p of procs.reverse()) if (p.exitCode === null) p.kill('SIGTERM');
}
process.on('exit', stopAll);
process.on('SIGINT', () => { stopAll(); process.exit(130); });

function demoDir() {
  const dir = process.env.FACTORY_TEST_DEMO_DIR || path.join(ROOT, '.cache/demo-releases');
  for (const step of ['build', 'publish']) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'tools/demo-releases/dist/cli.js'), step, '--out', dir], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`demo releases ${step} failed`);
  }
  return dir;
}

const PAGE_REPORTING_ORDER = '/sys/module/page_reporting/parameters/page_reporting_order';
let memorySteadied = false;

/**
 * Keeps the VM's memory from moving the measurements. These benchmark machines are VMs whose balloon driver reports
 * freed guest memory to the host (free page reporting), which takes it back; a page the guest later reuses costs a
 * fault on the host. Measured with s3rver alone: a 56 MB PutObject took ~200 ms until about 1 GB had been written
 * since memory was last recycled, then ~1,000 ms (the time in the kernel copying into new page-cache pages), and the
 * floor's runs varied 0.5–1.8 s the same way, so which side of a comparison paid for it was chance. Where the knob
 * exists and may be written (root), reporting is paused for the run (restored at exit) and up to 8 GiB is touched
 * once, so that freed memory stays the guest's. Nothing is changed elsewhere; BENCH_KEEP_VM_MEMORY=1 opts out.
 * (Pausing alone is not enough: memory reported before the run stays with the host until it is touched again.)
 */
function steadyMemory() {
  if (memorySteadied || process.env.BENCH_KEEP_VM_MEMORY) return;
  memorySteadied = true;
  let before;
  try {
    before = fs.readFileSync(PAGE_REPORTING_ORDER, 'utf8').trim();
    fs.writeFileSync(PAGE_REPORTING_ORDER, '11'); // above the largest page order: nothing is reported
  } catch {
    return; // not such a VM, or not root: measured as it is
  }
  process.on('exit', () => {
    try { fs.writeFileSync(PAGE_REPORTING_ORDER, before); } catch { /* best effort */ }
  });
  const available = Number(/MemAvailable:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  const gib = Math.max(0, Math.min(8, Math.floor((available * 0.6) / 2 ** 30)));
  // written by a child process, all of it freed back to the guest when it exits
  spawnSync(process.execPath, ['-e', `const k = []; for (let i = 0; i < ${gib}; i++) k.push(Buffer.alloc(2 ** 30, 1));`], { stdio: 'ignore' });
  console.log(`bench: VM free page reporting paused for this run (order ${before} restored at exit), ${gib} GiB touched once (BENCH_KEEP_VM_MEMORY=1: leave the VM as it is)`);
}

/** Starts Redis, s3rver, the demo registry and the five services; returns the gateway URL and helpers. */
async function startFactory({ s3 = true, extraEnv = {} } = {}) {
  steadyMemory();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-'));
  const demo = demoDir();
  const redisPort = await freePort();
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp]);
  const regPort = await freePort();
  fs.writeFileSync(path.join(tmp, 'reg.yml'), `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(demo, 'registry'))} } }\nhttp: { addr: "127.0.0.1:${regPort}" }\n`);
  start('docker-registry', ['serve', path.join(tmp, 'reg.yml')]);
  const env = {
    ...process.env,
    LOG_LEVEL: process.env.BENCH_VERBOSE ? 'info' : 'warn',
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    FACTORY_DATA_DIR: path.join(tmp, 'data'),
    FACTORY_UPSTREAM_REGISTRY: `127.0.0.1:${regPort}`,
    FACTORY_UPSTREAM_INSECURE: 'true',
    FACTORY_UPSTREAM_PUBLIC_KEY: path.join(demo, 'cosign.pub'),
    HOST: '127.0.0.1',
    ...extraEnv,
  };
  let s3Endpoint;
  if (s3) {
    const s3Port = await freePort();
    const script = `const S3rver=require('s3rver');new S3rver({port:${s3Port},address:'127.0.0.1',silent:true,directory:${JSON.stringify(path.join(tmp, 's3'))},configureBuckets:[{name:'image-factory'}]}).run()`;
    spawnSync('mkdir', ['-p', path.join(tmp, 's3')]);
    const p = spawn(process.execPath, ['-e', script], { cwd: ROOT, stdio: 'ignore' });
    procs.push(p);
    await waitPort(s3Port);
    s3Endpoint = `http://127.0.0.1:${s3Port}`;
    Object.assign(env, { S3_BUCKET: 'image-factory', S3_ENDPOINT: s3Endpoint, S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER' });
  }
  await waitPort(redisPort);
  await waitPort(regPort);
  const port = await freePort();
  env.PORT = String(port);
  env.FACTORY_EXTERNAL_URL = `http://127.0.0.1:${port}/`;
  const registryPort = await freePort();
  env.REGISTRY_PORT = String(registryPort);
  env.FACTORY_REGISTRY_URL = `http://127.0.0.1:${registryPort}`;
  const services = {};
  // The build-worker logs each build's time per stage ("asset built", level info): collected for the benchmarks.
  const builds = [];
  const buildLog = (line) => {
    try { const rec = JSON.parse(line); if (rec.msg === 'asset built') builds.push(rec); } catch { /* not a log record */ }
  };
  for (const s of ['signing', 'schematic-store', 'registry-proxy', 'build-worker', 'gateway']) {
    const main = path.join(ROOT, 'services', s, 'dist', 'main.js');
    services[s] = s === 'build-worker'
      ? start(process.execPath, [main], { ...env, LOG_LEVEL: 'info' }, { onLine: buildLog })
      : start(process.execPath, [main], env);
  }
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 60000;
  for (;;) {
    try { if ((await fetch(`${url}/readyz`)).status === 200) break; } catch { /* starting */ }
    if (Date.now() > end) throw new Error('factory not ready');
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, port, registryPort, tmp, demo, s3Endpoint, services, builds, env };
}

async function createSchematic(url, body) {
  const res = await fetch(`${url}/schematics`, { method: 'POST', body: JSON.stringify(body) });
  return (await res.json()).id;
}

/** wrk for `seconds` with `connections`; returns requests/s and latency percentiles in ms. */
function wrk(target, { seconds = 10, connections = 32, threads = 2 } = {}) {
  const out = execFileSync('wrk', ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency', target], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const pct = (p) => { const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out); if (!m) return NaN; const v = Number(m[1]); return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v; };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return { rps, p50: pct(50), p99: pct(99), errors: non2xx ? Number(non2xx[1]) : 0, raw: out };
}

/**
 * The inputs the factory extracted into its build cache (imager boot files, extension trees), plus a schematic
 * extension directory: what the floor scripts run their tool steps on.
 */
function floorInputs(f, schematicId) {
  const cache = path.join(f.tmp, 'data', 'cache');
  const imager = path.join(cache, 'imager', fs.readdirSync(path.join(cache, 'imager')).find((d) => !d.includes('.tmp')), 'usr/install/amd64');
  const extensions = fs.readdirSync(path.join(cache, 'extensions')).filter((d) => d.endsWith('-amd64')).map((d) => path.join(cache, 'extensions', d));
  const schematicExt = path.join(f.tmp, 'schematic-ext');
  fs.mkdirSync(path.join(schematicExt, 'rootfs/usr/local/share/schematic'), { recursive: true });
  fs.writeFileSync(path.join(schematicExt, 'rootfs/usr/local/share/schematic', schematicId), '');
  return { imager, extensions: [...extensions, schematicExt] };
}

/**
 * CPU accounting for a measured window: `const stop = cpuWindow(); ...; stop()` returns the machine's busy share
 * (from /proc/stat) and the CPU seconds each process under this one used (own + reaped children, e.g. xorriso under a
 * build sandbox), grouped by a short name. Where a side-by-side ratio goes when the machine is the limit.
 */
function cpuWindow() {
  const tick = 100; // USER_HZ on Linux
  const machine = () => fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const tree = () => {
    const all = new Map();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
        all.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / tick, cmd });
      } catch { /* gone meanwhile */ }
    }
    const mine = new Map();
    const under = (pid) => { for (let p = pid, n = 0; p > 1 && n < 50; p = all.get(p)?.ppid ?? 0, n++) if (p === process.pid) return true; return false; };
    for (const [pid, v] of all) if (pid !== process.pid && under(pid)) mine.set(pid, v);
    return mine;
  };
  const nameOf = (cmd) => {
    // the S3 protocol server runs as `node -e "...S3rver..."` (startFactory)
    if (cmd.some((a) => a.includes('S3rver'))) return 's3rver';
    const js = cmd.find((a) => a.endsWith('.js'));
    if (js) {
      const m = /services\/([^/]+)\//.exec(js);
      if (m) return m[1];
      if (/bullmq|sandbox|child/i.test(js)) return 'build-sandbox';
      return path.basename(js);
    }
    return path.basename(cmd[0] || '?');
  };
  const m0 = machine();
  const t0 = tree();
  return () => {
    const m1 = machine();
    const t1 = tree();
    const d = m1.map((v, i) => v - m0[i]);
    const total = d.reduce((a, b) => a + b, 0);
    const idle = d[3] + d[4];
    const byName = {};
    for (const [pid, v] of t1) {
      const before = t0.get(pid)?.cpu ?? 0;
      const name = nameOf(v.cmd);
      byName[name] = (byName[name] ?? 0) + v.cpu - before;
    }
    return { busy: total ? 1 - idle / total : 0, cores: os.cpus().length, seconds: total / tick / os.cpus().length, byName };
  };
}

/** One line: "busy 93% of 2 cores over 4.1 s; CPU s: build-sandbox 3.1, s3rver 1.2, ..." */
function formatCpu(c) {
  const parts = Object.entries(c.byName).filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`);
  return `busy ${(c.busy * 100).toFixed(0)}% of ${c.cores} cores over ${c.seconds.toFixed(1)} s; CPU seconds: ${parts.join(', ')}`;
}

function table(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(w[i])).join('  '));
}

module.exports = { steadyMemory, ROOT, cpuWindow, formatCpu, floorInputs, freePort, waitPort, start, startFactory, createSchematic, wrk, table, stopAll, demoDir };
