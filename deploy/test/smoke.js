// Smoke test of a running container stack (deploy/test/containers.sh), from the host, as a user would use it:
//   1. POST a schematic; 2. GET an ISO: 302 to the S3 server's public endpoint, whose body is an ISO 9660 image;
//   3. `skopeo copy` an installer through the gateway's /v2 (plain http); 4. verify its cosign signature with the
//   stack's own public key (GET /oci/cosign/signing-key.pub): the `cosign` binary when there is one
//   (and the Secure Boot certificate, with a Secure Boot UKI checked against it by sbverify)
//   (FACTORY_COSIGN_BIN, else the one scripts/setup.sh unpacks into .cache/tools), else libs/oci's verifier.
// Usage: node deploy/test/smoke.js <gateway host:port>   Prints one line per check; exits non-zero on a failure.
'use strict';
const { spawnSync } = require('node:child_process');
const { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../..');
const host = process.argv[2];
if (!host) throw new Error('usage: node deploy/test/smoke.js <gateway host:port>');
const base = `http://${host}`;
const VERSION = process.env.SMOKE_TALOS_VERSION || 'v1.11.3';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'containers-smoke-'));

function check(cond, what) {
  if (!cond) throw new Error(`FAILED: ${what}`);
}

async function step(name, fn) {
  const t0 = Date.now();
  const detail = await fn();
  process.stdout.write(`[smoke] ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${detail ? ` — ${detail}` : ''}\n`);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function cosignBinary() {
  const candidates = [process.env.FACTORY_COSIGN_BIN, path.join(ROOT, '.cache/tools/cosign/usr/bin/cosign')];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  return undefined;
}

async function main() {
  let id;
  await step('POST /schematics', async () => {
    const body = { customization: { extraKernelArgs: ['console=ttyS0'], systemExtensions: { officialExtensions: ['siderolabs/hello'] } } };
    const res = await fetch(`${base}/schematics`, { method: 'POST', body: JSON.stringify(body) });
    const text = await res.text();
    check(res.status === 201 || res.status === 200, `POST /schematics answered ${res.status}: ${text}`);
    id = JSON.parse(text).id;
    check(/^[0-9a-f]{64}$/.test(id), `schematic id ${id}`);
    return id;
  });

  await step(`GET /image/<id>/${VERSION}/metal-amd64.iso (cold build, 302 to S3)`, async () => {
    const res = await fetch(`${base}/image/${id}/${VERSION}/metal-amd64.iso`, { redirect: 'manual', signal: AbortSignal.timeout(600_000) });
    check(res.status === 302, `ISO answered ${res.status}: ${await res.text()}`);
    const location = res.headers.get('location');
    check(location && process.env.SMOKE_S3_PUBLIC && location.startsWith(process.env.SMOKE_S3_PUBLIC), `redirect to the S3 public endpoint, got ${location}`);
    const obj = await fetch(location);
    check(obj.status === 200, `S3 answered ${obj.status} for the presigned URL`);
    const iso = Buffer.from(await obj.arrayBuffer());
    check(iso.length > 1 << 20 && iso.subarray(0x8001, 0x8006).toString('latin1') === 'CD001', 'an ISO 9660 image');
    return `${(iso.length / 1048576).toFixed(1)} MiB from ${new URL(location).host}`;
  });

  await step('Secure Boot: GET /secureboot/signing-cert.pem, and a metal-amd64-secureboot-uki.efi signed with it', async () => {
    const res = await fetch(`${base}/secureboot/signing-cert.pem`);
    const pem = await res.text();
    check(res.status === 200 && pem.includes('BEGIN CERTIFICATE'), `certificate answered ${res.status}`);
    const cert = path.join(tmp, 'secureboot.pem');
    writeFileSync(cert, pem);
    const uki = await fetch(`${base}/image/${id}/v1.12.2/metal-amd64-secureboot-uki.efi`, { signal: AbortSignal.timeout(600_000) });
    check(uki.status === 200, `Secure Boot UKI answered ${uki.status}: ${uki.status === 200 ? '' : await uki.text()}`);
    const file = path.join(tmp, 'uki.efi');
    writeFileSync(file, Buffer.from(await uki.arrayBuffer()));
    const r = run('sbverify', ['--cert', cert, file]);
    check(r.status === 0, `sbverify: ${r.stdout}${r.stderr}`);
    return 'sbverify: Signature verification OK';
  });

  const pub = path.join(tmp, 'factory.pub');
  await step('GET /oci/cosign/signing-key.pub', async () => {
    const res = await fetch(`${base}/oci/cosign/signing-key.pub`);
    const pem = await res.text();
    check(res.status === 200 && pem.includes('BEGIN PUBLIC KEY'), `public key answered ${res.status}`);
    writeFileSync(pub, pem);
  });

  const ref = `${host}/installer/${id}:${VERSION}`;
  let digest;
  await step(`skopeo copy docker://${ref} (through the gateway's /v2)`, async () => {
    const layout = path.join(tmp, 'installer');
    const r = run('skopeo', ['copy', '-q', '--src-tls-verify=false', '--override-arch', 'amd64', '--override-os', 'linux', `docker://${ref}`, `oci:${layout}:installer`]);
    check(r.status === 0, `skopeo copy: ${r.stderr}`);
    const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(path.join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    check(manifest.layers.length > 0, 'installer manifest has layers');
    const raw = run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    check(raw.status === 0, `skopeo inspect: ${raw.stderr}`);
    digest = `sha256:${require('node:crypto').createHash('sha256').update(raw.stdout).digest('hex')}`;
    return `${manifest.layers.length} layers, index ${digest.slice(0, 19)}…`;
  });

  const cosign = cosignBinary();
  await step(`cosign signature of the installer (${cosign ? 'cosign verify' : 'libs/oci verifier'})`, async () => {
    if (cosign) {
      const r = run(cosign, ['verify', '--key', pub, '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--offline=true', ref]);
      check(r.status === 0, `cosign verify: ${r.stderr}`);
      return `${JSON.parse(r.stdout).length} signature(s) verified`;
    }
    const { RegistryClient, verifyCosignSignature } = require(path.join(ROOT, 'libs/oci/dist'));
    const client = new RegistryClient({ registry: host, insecure: true });
    const v = await verifyCosignSignature(client, `installer/${id}`, digest, readFileSync(pub, 'utf8'));
    return `payload for ${v.payload.critical.image['docker-manifest-digest'].slice(0, 19)}… verified`;
  });
}

main().then(
  () => rmSync(tmp, { recursive: true, force: true }),
  (err) => {
    process.stderr.write(`[smoke] ${err.stack || err}\n`);
    rmSync(tmp, { recursive: true, force: true });
    process.exit(1);
  },
);
