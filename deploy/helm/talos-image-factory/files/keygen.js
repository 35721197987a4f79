// Pre-install/pre-upgrade hook: makes sure the signing key Secret exists (an ECDSA P-256 key in PKCS#8 PEM, as the
// signing service loads it) and publishes its public key in a ConfigMap. Idempotent: an existing key is kept, so
// upgrades never rotate it. Talks to the Kubernetes API with the Job's own service-account token.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');

const saDir = process.env.SERVICE_ACCOUNT_DIR || '/var/run/secrets/kubernetes.io/serviceaccount';
const namespace = process.env.POD_NAMESPACE || fs.readFileSync(path.join(saDir, 'namespace'), 'utf8').trim();
const secretName = process.env.SIGNING_SECRET;
const configMapName = process.env.PUBLIC_KEY_CONFIGMAP;
const labels = JSON.parse(process.env.RESOURCE_LABELS || '{}');
const token = fs.readFileSync(path.join(saDir, 'token'), 'utf8').trim();
const ca = fs.readFileSync(path.join(saDir, 'ca.crt'));
const host = process.env.KUBERNETES_SERVICE_HOST;
const port = Number(process.env.KUBERNETES_SERVICE_PORT || 443);

function api(method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = https.request(
      { host, port, method, path: urlPath, ca, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode, json: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

function expect(res, ok, what) {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
}

async function main() {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
  let privatePem;
  const existing = await api('GET', `${base}/secrets/${encodeURIComponent(secretName)}`);
  expect(existing, [200, 404], `reading Secret ${secretName}`);
  if (existing.status === 200) {
    privatePem = Buffer.from(existing.json.data['cosign.key'], 'base64').toString();
    console.log(`Secret ${secretName} exists: keeping its key`);
  } else {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const created = await api('POST', `${base}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretName, labels },
      type: 'Opaque',
      data: { 'cosign.key': Buffer.from(privatePem).toString('base64') },
    });
    expect(created, [201], `creating Secret ${secretName}`);
    console.log(`generated a P-256 signing key into Secret ${secretName}`);
  }
  const publicPem = crypto.createPublicKey(privatePem).export({ type: 'spki', format: 'pem' }).toString();
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: configMapName, labels }, data: { 'cosign.pub': publicPem } };
  const put = await api('PUT', `${base}/configmaps/${encodeURIComponent(configMapName)}`, configMap);
  if (put.status === 404) expect(await api('POST', `${base}/configmaps`, configMap), [201], `creating ConfigMap ${configMapName}`);
  else expect(put, [200], `updating ConfigMap ${configMapName}`);
  console.log(`public key in ConfigMap ${configMapName}`);
}

main().catch((err) => {
  console.error(err.message || err);
  process.exit(1);
});
