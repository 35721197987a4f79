#!/usr/bin/env node
/**
 * Second half of scripts/well-known-certs.sh (run that): node scripts/well-known-certs.js [--write]
 * SUITE/PACKAGE=VERSION=UNPACKED_ROOT...
 *
 * For each certificate of libs/authenticode/data/well-known/manifest.json, reads the variable store its source names
 * (EDK2 store in the OVMF_VARS firmware volume), takes the KEK or db EFI_SIGNATURE_LISTs, and finds the X.509 entry
 * whose subject CN is the manifest's commonName; it must be owned by the Microsoft owner GUID. Every other given
 * store holding the same CN must hold the same bytes. Then checks (default) or writes (--write) the DER file and the
 * manifest's subject, sha256 and source version.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const { createHash, X509Certificate } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const authenticode = require('../libs/authenticode/dist');

const dataDir = path.join(__dirname, '..', 'libs', 'authenticode', 'data', 'well-known');
const manifestPath = path.join(dataDir, 'manifest.json');
const VENDOR = { KEK: authenticode.EFI_GLOBAL_VARIABLE_GUID, db: authenticode.EFI_IMAGE_SECURITY_DATABASE_GUID };

const args = process.argv.slice(2);
const write = args.includes('--write');
/** "suite/package" -> { version, root } */
const sources = new Map();
for (const a of args.filter((x) => x !== '--write')) {
  const [key, version, root] = a.split('=');
  if (!root) throw new Error(`bad source argument ${a} (want SUITE/PACKAGE=VERSION=ROOT)`);
  sources.set(key, { version, root });
}

const commonName = (der) => {
  const cn = new X509Certificate(der).subject.split('\n').find((l) => l.startsWith('CN='));
  return cn ? cn.slice(3) : undefined;
};
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const opensslSubject = (der) =>
  execFileSync('openssl', ['x509', '-inform', 'der', '-noout', '-subject'], { input: der, encoding: 'utf8' }).trim().replace(/^subject=/, '');

/** KEK or db entries of the store file `file` under `root` */
function storeEntries(root, file, variable) {
  const variables = authenticode.readVariableStore(fs.readFileSync(path.join(root, file)));
  const esl = authenticode.storedVariable(variables, variable, VENDOR[variable]);
  if (!esl) throw new Error(`${path.join(root, file)}: no ${variable} variable`);
  return authenticode.parseX509SignatureLists(esl);
}

const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
let failures = 0;
const fail = (msg) => {
  failures++;
  console.error(`[well-known-certs] FAIL ${msg}`);
};

for (const cert of manifest.certificates) {
  const key = `${cert.source.suite}/${cert.source.package}`;
  const source = sources.get(key);
  if (!source) throw new Error(`${cert.file}: source ${key} was not given`);
  const found = storeEntries(source.root, cert.source.file, cert.variable).filter((e) => commonName(e.certificate) === cert.commonName);
  if (found.length !== 1) {
    fail(`${cert.file}: ${found.length} entries with CN "${cert.commonName}" in ${cert.variable} of ${key} ${cert.source.file}`);
    continue;
  }
  const { certificate: der, owner } = found[0];
  if (owner !== authenticode.MICROSOFT_OWNER_GUID) fail(`${cert.file}: owner ${owner} in ${key}, expected ${authenticode.MICROSOFT_OWNER_GUID}`);
  const crossChecks = [];
  for (const [otherKey, other] of sources) {
    if (otherKey === key) continue;
    const same = storeEntries(other.root, cert.source.file, cert.variable).filter((e) => commonName(e.certificate) === cert.commonName);
    if (same.length === 0) continue;
    if (same.some((e) => !e.certificate.equals(der))) fail(`${cert.file}: ${otherKey} ${other.version} holds a different "${cert.commonName}"`);
    else crossChecks.push(`${otherKey} ${other.version}`);
  }
  const recorded = { subject: opensslSubject(der), sha256: sha256(der) };
  console.log(`${cert.variable}\t${cert.file}\t${recorded.sha256}\t${recorded.subject}\tfrom ${key} ${source.version}${crossChecks.length ? `; identical in ${crossChecks.join(', ')}` : ''}`);
  const filePath = path.join(dataDir, cert.file);
  if (write) {
    fs.writeFileSync(filePath, der);
    cert.subject = recorded.subject;
    cert.sha256 = recorded.sha256;
    cert.source = { suite: cert.source.suite, package: cert.source.package, version: source.version, file: cert.source.file };
    continue;
  }
  if (!fs.existsSync(filePath) || !fs.readFileSync(filePath).equals(der)) fail(`${cert.file}: the committed file differs from ${key} ${source.version}`);
  if (cert.sha256 !== recorded.sha256 || cert.subject !== recorded.subject) fail(`${cert.file}: manifest subject/sha256 differ from the certificate`);
  if (cert.source.version !== source.version) console.error(`[well-known-certs] note: ${cert.file} was taken from ${key} ${cert.source.version}, checked against ${source.version}`);
}

if (write) {
  // field order as documented in libs/authenticode/src/well-known.ts
  manifest.certificates = manifest.certificates.map((c) => ({
    variable: c.variable,
    file: c.file,
    commonName: c.commonName,
    subject: c.subject,
    sha256: c.sha256,
    source: c.source,
  }));
  fs.writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
}
if (failures) process.exit(1);
console.error(`[well-known-certs] ${manifest.certificates.length} certificates ${write ? 'written' : 'checked'}`);
