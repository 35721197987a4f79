// Quick probe: cache-hit redirect throughput of the factory vs a bare 302 server (part of bench/boot-assets).
'use strict';
const path = require('node:path');
const { startFactory, createSchematic, wrk, freePort, start, waitPort, table, stopAll } = require('./lib');

(async () => {
  const f = await startFactory({ s3: true });
  const id = await createSchematic(f.url, { customization: { extraKernelArgs: ['bench'] } });
  const target = `${f.url}/image/${id}/v1.11.3/kernel-amd64`;
  const first = await fetch(target, { redirect: 'manual' });
  if (first.status !== 302) throw new Error(`expected 302, got ${first.status}`);
  const barePort = await freePort();
  start(process.execPath, [path.join(__dirname, 'bare-redirect-server.js'), String(barePort)]);
  await waitPort(barePort);
  const seconds = Number(process.env.BENCH_SECONDS || 8);
  const factory = wrk(target, { seconds });
  const bare = wrk(`http://127.0.0.1:${barePort}/image/x`, { seconds });
  table([
    ['server', 'req/s', 'p50 ms', 'p99 ms', 'non-3xx'],
    ['factory (cache hit, 302 to S3)', factory.rps.toFixed(0), factory.p50.toFixed(2), factory.p99.toFixed(2), factory.errors],
    ['bare node:http constant 302', bare.rps.toFixed(0), bare.p50.toFixed(2), bare.p99.toFixed(2), bare.errors],
  ]);
  console.log(`throughput ratio factory/bare: ${(factory.rps / bare.rps).toFixed(3)} (target >= 0.5)`);
  console.log(`p99 ratio factory/bare: ${(factory.p99 / bare.p99).toFixed(2)}`);
  stopAll();
  process.exit(0);
})().catch((e) => { console.error(e); stopAll(); process.exit(1); });
