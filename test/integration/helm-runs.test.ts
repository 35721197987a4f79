/**
 * "The chart runs": no Kubernetes API server can run here, so the wiring the chart renders is proven by running it.
 * Each rendered Deployment's command and environment (ConfigMaps and Secrets resolved from the rendered manifests,
 * `$(VAR)` expanded as the kubelet does) become real processes — 2 gateways, 3 build-workers, one of each other —
 * beside the chart's own Redis command (AOF, password from the generated Secret), an S3 protocol server and the demo
 * upstream registry. The signing key comes from the chart's pre-install Job script, run against a minimal fake of the
 * Kubernetes API. Substitutions, and nothing else: in-cluster service names → loopback ports; each pod's ports (own
 * network namespace in a cluster) → free loopback ports; volume mount paths → temporary directories; an Ingress
 * emulator routes /v2 to the registry-proxy and the rest to a gateway, as the chart's Ingress does.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cosignMissingReason, cosignVerify } from '../support/cosign';
import { ensureDemoReleases } from '../support/factory';
import { helmMissingReason, K8sObject, objectsOf, renderChart, ROOT } from '../support/helm';
import { freePort, ProcHandle, startRegistry, startS3, waitForPort } from '../support/procs';
import { describeIf } from '../support/skip';
import { until } from '../support/wait';
import IORedis from '../../libs/queue/node_modules/ioredis';
import { verifyWebhookSignature } from '../../services/gateway/src/notify/signature';

interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface Container { name: string; command: string[]; workingDir?: string; env?: EnvVar[]; envFrom?: { configMapRef?: { name: string } }[]; volumeMounts?: { name: string; mountPath: string }[] }
type Workload = K8sObject & { spec: { replicas?: number; template: { spec: { containers: Container[]; volumes?: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[] } } } };
type DataObject = K8sObject & { data?: Record<string, string> };

const RELEASE = 'factory';
const FULLNAME = `${RELEASE}-talos-image-factory`;
const NAMESPACE = 'image-factory';
const REPLICAS: Record<string, number> = { gateway: 2, 'build-worker': 3, 'registry-proxy': 1, 'schematic-store': 1, signing: 1 };
/** The global webhook's signing secret, in the operator's Secret `factory-webhooks` (FACTORY_WEBHOOKS). */
const WEBHOOK_SECRET = 'helm-runs-receiver-secret';
/** builds.* of the rendered chart: a retention and a request limit no default has */
const BUILD_RETENTION_MS = 2 * 3600_000;
const MAX_BUILDS_PER_REQUEST = 2;

const missing = helmMissingReason() ?? cosignMissingReason();

/** `$(NAME)` references to earlier variables, expanded as the kubelet expands them. */
function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name: string) => env[name] ?? ref);
}

/** The environment Kubernetes would give this container, from the rendered ConfigMaps and Secrets (plus outside ones). */
function containerEnv(c: Container, objects: K8sObject[], outsideSecrets: Record<string, Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const cm = objectsOf<DataObject>(objects, 'ConfigMap').find((o) => o.metadata.name === from.configMapRef!.name);
    if (!cm) throw new Error(`ConfigMap ${from.configMapRef!.name} is not rendered`);
    Object.assign(env, cm.data);
  }
  for (const v of c.env ?? []) {
    if (v.value !== undefined) env[v.name] = expand(v.value, env);
    else if (v.valueFrom?.secretKeyRef) {
      const { name, key } = v.valueFrom.secretKeyRef;
      const rendered = objectsOf<DataObject>(objects, 'Secret').find((o) => o.metadata.name === name);
      const value = rendered?.data?.[key] !== undefined ? Buffer.from(rendered.data[key], 'base64').toString() : outsideSecrets[name]?.[key];
      if (value === undefined) throw new Error(`Secret ${name} key ${key} is neither rendered nor provided`);
      env[v.name] = value;
    }
  }
  return env;
}

/** A minimal Kubernetes API over HTTPS: get/create/update of Secrets and ConfigMaps in one namespace, bearer-checked. */
async function startFakeApiServer(dir: string, token: string): Promise<{ port: number; ca: string; objects: Map<string, DataObject>; close: () => void }> {
  const key = path.join(dir, 'api.key');
  const cert = path.join(dir, 'api.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  const objects = new Map<string, DataObject>();
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, { reason: 'Unauthorized' });
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/(secrets|configmaps)(?:\/([^/]+))?$/.exec(req.url ?? '');
    if (!m || m[1] !== NAMESPACE) return send(404, { reason: 'NotFound' });
    const [, , resource, name] = m;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as DataObject) : undefined;
      const id = (n: string) => `${resource}/${n}`;
      if (req.method === 'GET' && name) return objects.has(id(name)) ? send(200, objects.get(id(name))) : send(404, { reason: 'NotFound' });
      if (req.method === 'POST' && !name && body) {
        if (objects.has(id(body.metadata.name))) return send(409, { reason: 'AlreadyExists' });
        objects.set(id(body.metadata.name), body);
        return send(201, body);
      }
      if (req.method === 'PUT' && name && body) {
        if (!objects.has(id(name))) return send(404, { reason: 'NotFound' });
        objects.set(id(name), body);
        return send(200, body);
      }
      send(405, { reason: 'MethodNotAllowed' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, ca: readFileSync(cert, 'utf8'), objects, close: () => server.close() };
}

describeIf(!missing, missing ?? '')('the chart runs: its rendered processes serve the smoke', () => {
  const procs: { name: string; proc: ChildProcess; log: () => string }[] = [];
  let s3: ProcHandle & { endpoint: string; bucket: string };
  let upstream: ProcHandle & { host: string };
  let tmp: string;
  let ingressHost: string;
  let gatewayUrls: string[] = [];
  let workerMetrics: string[] = [];
  let publicKeyFile: string;
  let objects: K8sObject[];
  /** the operator-provided Secure Boot signing certificate (PEM) */
  let secureBootCert: string;
  /** the operator's own PK and KEK certificates (PEM), from the same Secret */
  let enrolmentCerts: Record<string, string>;
  /** REDIS_URL as the gateways got it (the chart's Redis, password from its Secret) */
  let redisUrl: string;
  /** the operator's webhook receiver: what the gateways POSTed to it */
  let receiver: http.Server;
  const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const started = Date.now();

  const launch = (name: string, command: string[], env: Record<string, string>, cwd: string) => {
    const proc = spawn(command[0], command.slice(1), { cwd, env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer) => (out = (out + d.toString()).slice(-6000));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    procs.push({ name, proc, log: () => out });
    return proc;
  };
  const logs = () => procs.map((p) => `--- ${p.name} (exit ${p.proc.exitCode})\n${p.log().slice(-1500)}`).join('\n');

  beforeAll(async () => {
    const demoDir = ensureDemoReleases();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'helm-runs-'));
    [s3, upstream] = await Promise.all([startS3(), startRegistry(path.join(demoDir, 'registry'))]);
    const ingressPort = await freePort();
    ingressHost = `127.0.0.1:${ingressPort}`;
    // The operator's Secure Boot keys (as `talosctl gen secureboot` makes them: RSA PKCS#1 PEM) in a Secret of their own.
    const sbDir = path.join(tmp, 'secureboot-source');
    mkdirSync(sbDir);
    const openssl = (...args: string[]) => expect(spawnSync('openssl', args, { cwd: sbDir, encoding: 'utf8' }).status).toBe(0);
    openssl('genrsa', '-traditional', '-out', 'uki-signing-key.pem', '2048');
    openssl('req', '-new', '-x509', '-key', 'uki-signing-key.pem', '-sha256', '-days', '30', '-subj', '/CN=helm-runs Secure Boot/', '-out', 'uki-signing-cert.pem');
    openssl('genrsa', '-traditional', '-out', 'pcr-signing-key.pem', '2048');
    // and their own enrolment keys: PK signs the KEK update, KEK the db update
    for (const role of ['pk', 'kek']) {
      openssl('genrsa', '-traditional', '-out', `${role}-key.pem`, '2048');
      openssl('req', '-new', '-x509', '-key', `${role}-key.pem`, '-sha256', '-days', '30', '-subj', `/CN=helm-runs ${role.toUpperCase()}/`, '-out', `${role}-cert.pem`);
    }
    secureBootCert = readFileSync(path.join(sbDir, 'uki-signing-cert.pem'), 'utf8');
    enrolmentCerts = Object.fromEntries(['pk', 'kek'].map((role) => [role, readFileSync(path.join(sbDir, `${role}-cert.pem`), 'utf8')]));
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/factory-hooks`;
    objects = renderChart(
      {
        externalUrl: `http://${ingressHost}/`,
        s3: { bucket: s3.bucket, endpoint: s3.endpoint, existingSecret: 'factory-s3' },
        signing: { secureBoot: { existingSecret: 'factory-secureboot', platformKey: true, keyExchangeKey: true } },
        upstream: { registry: upstream.host, insecure: true, verify: true, publicKey: readFileSync(path.join(demoDir, 'cosign.pub'), 'utf8') },
        // one loopback address for every test client: no per-client limits
        config: { FACTORY_TRUST_PROXY: 'uniquelocal', FACTORY_RATE_SCHEMATICS: 'off', FACTORY_RATE_BUILDS: 'off', FACTORY_MAX_CLIENT_BUILDS: '0' },
        // global webhooks from the operator's Secret; the receiver is on loopback, which only allowPrivateTargets admits
        webhooks: { existingSecret: 'factory-webhooks', allowPrivateTargets: true },
        builds: { retention: `${BUILD_RETENTION_MS / 1000}s`, maxPerRequest: MAX_BUILDS_PER_REQUEST },
      },
      { release: RELEASE, namespace: NAMESPACE },
    );
    const outsideSecrets = {
      'factory-s3': { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      'factory-webhooks': { 'webhooks.json': JSON.stringify([{ url: receiverUrl, secret: WEBHOOK_SECRET, events: ['build.succeeded'] }]) },
    };
    /** Secrets that exist in the cluster beside the chart's own, mounted as files (name → file → content) */
    const outsideSecretFiles: Record<string, Record<string, Buffer>> = {
      'factory-secureboot': Object.fromEntries(
        ['uki-signing-key.pem', 'uki-signing-cert.pem', 'pcr-signing-key.pem', 'pk-key.pem', 'pk-cert.pem', 'kek-key.pem', 'kek-cert.pem'].map((f) => [f, readFileSync(path.join(sbDir, f))]),
      ),
    };

    // 1. The pre-install hook: the rendered Job's script, env and service account against the fake API server.
    const token = 'test-token';
    const api = await startFakeApiServer(tmp, token);
    try {
      const job = objectsOf<Workload>(objects, 'Job')[0];
      const jobContainer = job.spec.template.spec.containers[0];
      const script = objectsOf<DataObject>(objects, 'ConfigMap').find((o) => o.metadata.name === `${FULLNAME}-keygen`)!.data!['keygen.js'];
      const scriptDir = path.join(tmp, 'keygen');
      const saDir = path.join(tmp, 'serviceaccount');
      mkdirSync(scriptDir);
      mkdirSync(saDir);
      writeFileSync(path.join(scriptDir, 'keygen.js'), script);
      writeFileSync(path.join(saDir, 'token'), token);
      writeFileSync(path.join(saDir, 'ca.crt'), api.ca);
      writeFileSync(path.join(saDir, 'namespace'), NAMESPACE);
      const jobEnv = { ...containerEnv(jobContainer, objects, {}), SERVICE_ACCOUNT_DIR: saDir, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) };
      const command = jobContainer.command.map((a) => a.replace('/etc/factory/keygen', scriptDir)).map((a) => (a === 'node' ? process.execPath : a));
      for (const run of ['first install', 'upgrade']) {
        // asynchronously: the fake API server answers from this process
        const r = await runToExit(command, { PATH: process.env.PATH!, ...jobEnv });
        expect({ run, code: r.code, err: r.stderr }).toEqual({ run, code: 0, err: '' });
      }
      // the Secret and the public-key ConfigMap the Job made join the "cluster"
      objects.push(api.objects.get(`secrets/${FULLNAME}-signing-key`)!, api.objects.get(`configmaps/${FULLNAME}-signing-public-key`)!);
      expect(objects.at(-2)!.metadata.labels?.['app.kubernetes.io/instance']).toBe(RELEASE);
    } finally {
      api.close();
    }
    publicKeyFile = path.join(tmp, 'factory.pub');
    writeFileSync(publicKeyFile, objectsOf<DataObject>(objects, 'ConfigMap').find((o) => o.metadata.name === `${FULLNAME}-signing-public-key`)!.data!['cosign.pub']);

    // 2. The chart's Redis: its StatefulSet's command with its Secret's password.
    const redisSts = objectsOf<Workload>(objects, 'StatefulSet')[0].spec.template.spec.containers[0];
    const redisPort = await freePort();
    const redisDir = path.join(tmp, 'redis');
    mkdirSync(redisDir);
    const redisCommand = redisSts.command.map((a) => a.replace('--dir /data', `--dir ${redisDir} --port ${redisPort} --bind 127.0.0.1`));
    launch('redis', redisCommand, containerEnv(redisSts, objects, {}), redisDir);
    await waitForPort(redisPort);

    // 3. The services, as many as the smoke asks for.
    const serviceAddresses: Record<string, string> = { [`${FULLNAME}-redis:6379`]: `127.0.0.1:${redisPort}` };
    const rpPort = await freePort();
    serviceAddresses[`${FULLNAME}-registry-proxy:8081`] = `127.0.0.1:${rpPort}`;
    const deployments = objectsOf<Workload>(objects, 'Deployment');
    const order = ['signing', 'schematic-store', 'registry-proxy', 'build-worker', 'gateway'];
    for (const component of order) {
      const d = deployments.find((o) => o.metadata.name === `${FULLNAME}-${component}`)!;
      const pod = d.spec.template.spec;
      const c = pod.containers[0];
      for (let i = 0; i < REPLICAS[component]; i++) {
        const podDir = path.join(tmp, `${component}-${i}`);
        const mounts = (c.volumeMounts ?? []).map((m) => ({ ...m, local: path.join(podDir, m.name) }));
        for (const m of mounts) mkdirSync(m.local, { recursive: true });
        // files of the mounted Secrets and ConfigMaps
        for (const m of mounts) {
          const volume = pod.volumes!.find((v) => v.name === m.name)!;
          const source = volume.secret
            ? objectsOf<DataObject>(objects, 'Secret').find((o) => o.metadata.name === volume.secret!.secretName)
            : volume.configMap ? objectsOf<DataObject>(objects, 'ConfigMap').find((o) => o.metadata.name === volume.configMap!.name) : undefined;
          for (const [file, data] of Object.entries(source?.data ?? {})) writeFileSync(path.join(m.local, file), volume.secret ? Buffer.from(data, 'base64') : data, { mode: 0o440 });
          if (volume.secret && !source) {
            const files = outsideSecretFiles[volume.secret.secretName];
            if (!files) throw new Error(`Secret ${volume.secret.secretName} is neither rendered nor provided`);
            for (const [file, data] of Object.entries(files)) writeFileSync(path.join(m.local, file), data, { mode: 0o440 });
          }
        }
        const env = containerEnv(c, objects, outsideSecrets);
        for (const [k, v] of Object.entries(env)) {
          let value = v;
          for (const [inCluster, local] of Object.entries(serviceAddresses)) value = value.split(inCluster).join(local);
          for (const m of mounts) if (value === m.mountPath || value.startsWith(`${m.mountPath}/`)) value = m.local + value.slice(m.mountPath.length);
          env[k] = value;
        }
        expect(env.HOST).toBe('0.0.0.0');
        env.HOST = '127.0.0.1';
        env.METRICS_HOST = '127.0.0.1';
        env.METRICS_PORT = String(await freePort());
        if (component === 'registry-proxy') env.REGISTRY_PORT = String(rpPort);
        if (component === 'gateway') {
          redisUrl = env.REDIS_URL;
          env.PORT = String(await freePort());
          gatewayUrls.push(`http://127.0.0.1:${env.PORT}`);
        }
        if (component === 'build-worker') workerMetrics.push(`http://127.0.0.1:${env.METRICS_PORT}/metrics`);
        const command = c.command.map((a) => (a === 'node' ? process.execPath : a));
        expect(c.workingDir).toBe('/app');
        launch(`${component}-${i}`, command, env, ROOT);
      }
    }
    for (const url of gatewayUrls) await waitReady(`${url}/readyz`, 30_000, logs);
    for (const url of workerMetrics) await waitReady(url.replace("/metrics", "/readyz"), 30_000, logs);

    // 4. The Ingress, emulated from the rendered rules: /v2 → registry-proxy, the rest → the first gateway.
    const ing = objectsOf<{ spec: { rules: { http: { paths: { path: string; backend: { service: { name: string } } }[] } }[] } }>(objects, 'Ingress')[0];
    const backends: Record<string, string> = { [`${FULLNAME}-registry-proxy`]: `127.0.0.1:${rpPort}`, [`${FULLNAME}-gateway`]: new URL(gatewayUrls[0]).host };
    // In its own process: skopeo and cosign run synchronously from this one.
    const routes = ing.spec.rules[0].http.paths.map((p) => [p.path, backends[p.backend.service.name]]);
    const script = `
      const http = require('node:http');
      const routes = ${JSON.stringify(routes)};
      http.createServer((req, res) => {
        const [host, port] = routes.find(([prefix]) => req.url.startsWith(prefix))[1].split(':');
        const up = http.request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        });
        up.on('error', () => res.destroy());
        req.pipe(up);
      }).listen(${ingressPort}, '127.0.0.1');
    `;
    launch('ingress', [process.execPath, '-e', script], {}, tmp);
    await waitForPort(ingressPort);
    process.stdout.write(`chart-rendered factory up (${procs.length} processes) in ${Date.now() - started} ms\n`);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(
      procs.map(
        ({ proc }) =>
          new Promise<void>((resolve) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
            const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
            proc.once('exit', () => (clearTimeout(t), resolve()));
            proc.kill('SIGTERM');
          }),
      ),
    );
    await Promise.all([s3?.stop(), upstream?.stop(), new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()))]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 30_000);

  test('a schematic is created, and an ISO is answered with a 302 to S3 through each gateway', async () => {
    const t0 = Date.now();
    const created = await fetch(`${gatewayUrls[1]}/schematics`, { method: 'POST', body: JSON.stringify({ customization: { extraKernelArgs: ['console=ttyS0'] } }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    for (const gateway of gatewayUrls) {
      const res = await fetch(`${gateway}/image/${id}/v1.11.3/metal-amd64.iso`, { redirect: 'manual' });
      expect({ gateway, status: res.status, body: res.status === 302 ? '' : `${await res.text()}\n${logs()}` }).toEqual({ gateway, status: 302, body: '' });
      const location = new URL(res.headers.get('location')!);
      expect(location.origin).toBe(s3.endpoint);
      const iso = await fetch(location);
      expect(iso.status).toBe(200);
      expect(Buffer.from(await iso.arrayBuffer()).subarray(0x8001, 0x8006).toString()).toBe('CD001');
    }
    process.stdout.write(`schematic + ISO through 2 gateways: ${Date.now() - t0} ms\n`);
  }, 240_000);

  test('Secure Boot from the operator\'s key Secret: the certificate is served, a Secure Boot UKI is signed with it, the ISO enrols its PK and KEK', async () => {
    for (const gateway of gatewayUrls) expect(await (await fetch(`${gateway}/secureboot/signing-cert.pem`)).text()).toBe(secureBootCert);
    const created = await fetch(`${gatewayUrls[0]}/schematics`, { method: 'POST', body: JSON.stringify({ customization: { extraKernelArgs: ['helm.secureboot=yes'] } }) });
    const { id } = (await created.json()) as { id: string };
    const res = await fetch(`${gatewayUrls[1]}/image/${id}/v1.12.2/metal-amd64-secureboot-uki.efi`);
    expect({ status: res.status, body: res.status === 200 ? '' : `${await res.text()}\n${logs()}` }).toEqual({ status: 200, body: '' });
    const uki = path.join(tmp, 'secureboot-uki.efi');
    writeFileSync(uki, Buffer.from(await res.arrayBuffer()));
    const cert = path.join(tmp, 'secureboot-cert.pem');
    writeFileSync(cert, secureBootCert);
    const verified = spawnSync('sbverify', ['--cert', cert, uki], { encoding: 'utf8' });
    expect({ code: verified.status, out: `${verified.stdout}${verified.stderr}`.includes('Signature verification OK') }).toEqual({ code: 0, out: true });

    // The ISO's enrolment files carry the operator's PK and KEK from the same Secret, each in its role: PK.auth
    // enrols PK; KEK.auth enrols KEK and is signed by PK; db.auth enrols the signing certificate and is signed by KEK
    // (an authenticated variable's PKCS#7 carries its signer's certificate).
    const isoRes = await fetch(`${gatewayUrls[0]}/image/${id}/v1.12.2/metal-amd64-secureboot.iso`);
    expect({ status: isoRes.status, body: isoRes.status === 200 ? '' : `${await isoRes.text()}\n${logs()}` }).toEqual({ status: 200, body: '' });
    const iso = path.join(tmp, 'secureboot.iso');
    writeFileSync(iso, Buffer.from(await isoRes.arrayBuffer()));
    const der = (pem: string) => new X509Certificate(pem).raw;
    const certs = { pk: der(enrolmentCerts.pk), kek: der(enrolmentCerts.kek), db: der(secureBootCert) };
    const holds = (name: string) => {
      const out = path.join(tmp, `iso-${name}.auth`);
      expect(spawnSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', `/loader/keys/auto/${name}.auth`, out], { encoding: 'utf8' }).status).toBe(0);
      const bytes = readFileSync(out);
      return Object.entries(certs).filter(([, c]) => bytes.includes(c)).map(([role]) => role).sort();
    };
    expect({ PK: holds('PK'), KEK: holds('KEK'), db: holds('db') }).toEqual({ PK: ['pk'], KEK: ['kek', 'pk'], db: ['db', 'kek'] });
  }, 240_000);

  test('an installer is pulled with skopeo through the registry route and verifies with the chart\'s public key', async () => {
    const t0 = Date.now();
    const created = await fetch(`http://${ingressHost}/schematics`, { method: 'POST', body: JSON.stringify({ customization: { extraKernelArgs: ['fixture.installer=yes'] } }) });
    const { id } = (await created.json()) as { id: string };
    const ref = `${ingressHost}/installer/${id}:v1.11.3`;
    const dir = path.join(tmp, 'pulled');
    const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', '--override-arch', 'amd64', '--override-os', 'linux', `docker://${ref}`, `oci:${dir}:x`], { encoding: 'utf8', timeout: 240_000 });
    expect({ code: copy.status, err: copy.status === 0 ? '' : `${copy.stderr}\n${logs()}` }).toEqual({ code: 0, err: '' });
    const verified = cosignVerify(ref, publicKeyFile);
    expect({ code: verified.code, err: verified.code === 0 ? '' : verified.stderr }).toEqual({ code: 0, err: '' });
    // the key the factory signs with is the one the chart published
    expect(await (await fetch(`${gatewayUrls[0]}/oci/cosign/signing-key.pub`)).text()).toBe(readFileSync(publicKeyFile, 'utf8'));
    process.stdout.write(`installer pull + cosign verify: ${Date.now() - t0} ms\n`);
  }, 240_000);

  test('builds.* and webhooks.* as the chart sets them: the request limit, the record retention, a signed delivery to the Secret\'s hook', async () => {
    const created = await fetch(`${gatewayUrls[0]}/schematics`, { method: 'POST', body: JSON.stringify({ customization: { extraKernelArgs: ['helm.webhooks=yes'] } }) });
    const { id: schematic } = (await created.json()) as { id: string };
    const postBuilds = (assets: string[]) => fetch(`${gatewayUrls[1]}/builds`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ schematic, version: 'v1.11.3', assets }) });
    const tooMany = await postBuilds(['cmdline-metal-amd64', 'kernel-amd64', 'initramfs-amd64.xz']);
    expect([tooMany.status, await tooMany.text()]).toEqual([400, `too many builds in one request: 3 (limit ${MAX_BUILDS_PER_REQUEST})\n`]);
    const accepted = await postBuilds(['cmdline-metal-amd64']);
    expect(accepted.status).toBe(202);
    const [build] = ((await accepted.json()) as { builds: { id: string }[] }).builds;

    // the build-worker wrote `done` with the chart's retention as the record's expiry
    const done = await until('the build done', async () => {
      const record = (await (await fetch(`${gatewayUrls[0]}/builds/${build.id}`)).json()) as { state: string; sha256?: string };
      return ['done', 'failed'].includes(record.state) && record;
    }, { ms: 60_000, context: logs });
    expect(done.state).toBe('done');
    const redis = new IORedis(redisUrl, { maxRetriesPerRequest: null });
    try {
      const ttl = await redis.pttl(`factory:builds:${build.id}`);
      expect(ttl).toBeGreaterThan(BUILD_RETENTION_MS - 10 * 60_000);
      expect(ttl).toBeLessThanOrEqual(BUILD_RETENTION_MS);
    } finally {
      redis.disconnect();
    }

    // the hook of the operator's Secret got it, signed with that Secret's secret
    const delivery = await until('the build.succeeded delivery', () => received.find((r) => JSON.parse(r.body).data?.id === build.id), { ms: 30_000, context: logs });
    expect(delivery.headers['x-factory-event']).toBe('build.succeeded');
    expect(verifyWebhookSignature(WEBHOOK_SECRET, delivery.body, delivery.headers['x-factory-signature'] as string)).toBe(true);
    expect(JSON.parse(delivery.body).data).toMatchObject({ schematic, asset: 'cmdline-metal-amd64', state: 'done', sha256: done.sha256 });
    // every gateway knows the configured hook, and none shows its secret
    for (const gateway of gatewayUrls) {
      const hook = await fetch(`${gateway}/webhooks/global-0`);
      const text = await hook.text();
      expect([hook.status, text.includes(WEBHOOK_SECRET)]).toEqual([200, false]);
    }
  }, 120_000);

  test('the metrics the chart\'s alerts and KEDA trigger query are exported under those names', async () => {
    const rule = JSON.stringify(renderChart({ prometheusRule: { enabled: true }, 'buildWorker.autoscaling.keda.enabled': true }).filter((o) => ['PrometheusRule', 'ScaledObject'].includes(o.kind)));
    const used = [...new Set(rule.match(/\b(factory|image_factory)_[a-z_]+/g))].filter((m) => !m.startsWith('factory_talos'));
    const exported = (await Promise.all(workerMetrics.map(async (u) => (await fetch(u)).text()))).join('\n');
    expect(used.sort()).toEqual(['factory_queue_jobs', 'image_factory_assets_built_total']);
    for (const name of used) expect([name, exported.includes(`\n${name}{`)]).toEqual([name, true]);
    expect(exported).toMatch(/factory_queue_jobs\{queue="build",state="prioritized",service="build-worker"\} \d+/);
  });
});

function runToExit(command: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command[0], command.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.on('error', reject);
    proc.on('exit', (code) => (clearTimeout(timer), resolve({ code, stderr })));
  });
}

async function waitReady(url: string, timeoutMs: number, logs: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
