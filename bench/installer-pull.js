// bench/installer-pull: a warm `skopeo copy` of an installer image (one platform, into an OCI layout) from the
// factory (gateway /v2 → registry-proxy → object store) vs the same image, byte for byte, from a plain Debian
// docker-registry on the same machine. Runs alternate between the two; medians and their ratio are printed.
// usage: node bench/installer-pull.js   (after `npm run build`; BENCH_RUNS=7, BENCH_STORAGE=local|s3 (default local))
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startFactory, createSchematic, freePort, start, waitPort, table, stopAll } = require('./lib');

const RUNS = Number(process.env.BENCH_RUNS || 7);
const VERSION = 'v1.11.3';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const skopeo = (...args) => execFileSync('skopeo', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

(async () => {
  const f = await startFactory({ s3: process.env.BENCH_STORAGE === 's3' });
  const id = await createSchematic(f.url, { customization: { systemExtensions: { officialExtensions: ['siderolabs/hello', 'siderolabs/intel-ucode'] } } });
  const factoryRef = `127.0.0.1:${f.port}/installer/${id}:${VERSION}`;
  const t0 = Date.now();
  const index = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${factoryRef}`); // cold: builds amd64 + arm64
  console.log(`cold build of ${factoryRef} (both architectures): ${Date.now() - t0} ms`);

  // The plain registry holds the same index, manifests and blobs (skopeo copy --all keeps the digests).
  const regPort = await freePort();
  const regDir = path.join(f.tmp, 'plain-registry');
  fs.writeFileSync(path.join(f.tmp, 'plain.yml'), `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${JSON.stringify(regDir)} } }\nhttp: { addr: "127.0.0.1:${regPort}" }\n`);
  start('docker-registry', ['serve', path.join(f.tmp, 'plain.yml')]);
  await waitPort(regPort);
  const plainRef = `127.0.0.1:${regPort}/installer/${id}:${VERSION}`;
  skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${factoryRef}`, `docker://${plainRef}`);
  const plainIndex = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${plainRef}`);
  if (plainIndex !== index) throw new Error('the plain registry does not hold the same index');
  const amd = JSON.parse(index).manifests.find((m) => m.platform.architecture === 'amd64');
  const manifest = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://127.0.0.1:${f.port}/installer/${id}@${amd.digest}`));
  const bytes = manifest.layers.reduce((n, l) => n + l.size, manifest.config.size);

  const copy = (ref, i) => {
    const dir = path.join(f.tmp, `pull-${i}`);
    const t = process.hrtime.bigint();
    skopeo('copy', '--src-tls-verify=false', '--override-arch', 'amd64', `docker://${ref}`, `oci:${dir}:x`);
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    fs.rmSync(dir, { recursive: true, force: true });
    return ms;
  };
  // The registry-proxy's own port too (what an ingress that routes /v2 to it, as the Helm chart in deploy/helm does, gives).
  const directRef = `127.0.0.1:${f.registryPort}/installer/${id}:${VERSION}`;
  copy(factoryRef, 'warm-f');
  copy(plainRef, 'warm-p');
  copy(directRef, 'warm-d');
  const factoryMs = [];
  const plainMs = [];
  const directMs = [];
  for (let i = 0; i < RUNS; i++) {
    factoryMs.push(copy(factoryRef, `f${i}`));
    plainMs.push(copy(plainRef, `p${i}`));
    directMs.push(copy(directRef, `d${i}`));
  }
  console.log(`\nwarm skopeo copy of ${VERSION} installer (linux/amd64, ${(bytes / 1048576).toFixed(1)} MiB in ${manifest.layers.length} layers), median of ${RUNS}, storage ${f.s3Endpoint ? 's3rver' : 'local directory'}`);
  table([
    ['source', 'median ms', 'runs ms'],
    ['factory (gateway /v2 -> registry-proxy)', median(factoryMs).toFixed(0), factoryMs.map((x) => x.toFixed(0)).join(' ')],
    ['factory (registry-proxy port, no gateway hop)', median(directMs).toFixed(0), directMs.map((x) => x.toFixed(0)).join(' ')],
    ['plain docker-registry', median(plainMs).toFixed(0), plainMs.map((x) => x.toFixed(0)).join(' ')],
  ]);
  console.log(`pull ratio factory/plain: ${(median(factoryMs) / median(plainMs)).toFixed(2)} (target <= 1.2); without the gateway hop: ${(median(directMs) / median(plainMs)).toFixed(2)}`);
  stopAll();
  process.exit(0);
})().catch((e) => { console.error(e); stopAll(); process.exit(1); });
