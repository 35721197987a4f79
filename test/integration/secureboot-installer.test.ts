/**
 * The factory's Secure Boot installers end to end (talos-formats §1.4): the embedded factory (`npm start`, whose
 * signing service generates the Secure Boot keys) publishes `installer-secureboot/<id>:<version>` through its own
 * registry. Pulled with skopeo, the artifacts layer holds systemd-boot and the UKI (`reset-maintenance` profile,
 * `lockdown=confidentiality`), both verifying with sbverify against the certificate `/secureboot/signing-cert.pem`
 * serves; a stock cosign verifies the index with the factory's key; `<platform>-installer-secureboot` and the
 * `installer-amd64-secureboot.tar` download are the same image. Before 1.10 the signed UKI is `vmlinuz.efi.signed`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePe, peSectionData } from '@factory/authenticode';
import { cosignMissingReason, cosignVerify } from '../support/cosign';
import { DEMO_DIR } from '../support/demo-imager';
import { launchFactory, LaunchedFactory, stopProcess } from '../support/launcher';
import { freePort } from '../support/procs';
import { describeIf, testIf } from '../support/skip';

jest.setTimeout(600_000);

const VERSION = 'v1.12.2';
const LEGACY_VERSION = 'v1.7.7';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const READY = ['skopeo', 'sbverify'].every(have) && fs.existsSync(path.join(DEMO_DIR, 'releases.json'));
const cosignSkip = cosignMissingReason();

/** Entries of a gzip'ed layer (tar -tvzf) as "mode path" lines. */
function layerListing(blob: string): string[] {
  return execFileSync('tar', ['-tvzf', blob], { encoding: 'utf8' }).trim().split('\n').map((l) => {
    const f = l.split(/\s+/);
    return `${f[0]} ${f.slice(5).join(' ')}`;
  });
}

const seconds = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1);

describeIf(READY, 'needs skopeo, sbsigntool and the demo releases')('the factory\'s Secure Boot installer images', () => {
  let tmp: string;
  let factory: LaunchedFactory | undefined;
  let host: string;
  let externalHost: string;
  let id: string;
  let certFile: string;
  let cosignKey: string;

  /** Writes one file of a gzip'ed layer to tmp and returns its path. */
  const extract = (blob: string, member: string, name: string) => {
    const out = path.join(tmp, name);
    fs.writeFileSync(out, execFileSync('tar', ['-xzOf', blob, member], { maxBuffer: 512 * 1024 * 1024 }));
    return out;
  };
  const sbverify = (file: string) => {
    const r = spawnSync('sbverify', ['--cert', certFile, file], { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const expectSigned = (file: string) => {
    const r = sbverify(file);
    expect(r.out).toContain('Signature verification OK');
    expect(r.status).toBe(0);
  };
  const skopeo = (...args: string[]) => {
    const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 540_000, maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}${r.error ?? ''}\n${factory?.output().slice(-4000)}`);
    return r.stdout;
  };
  /** Pulls one platform of `ref` into an OCI layout: its manifest and a path for each blob. */
  const pull = (ref: string, arch: 'amd64' | 'arm64', name: string) => {
    const dir = path.join(tmp, name);
    skopeo('copy', '--src-tls-verify=false', '--override-arch', arch, '--override-os', 'linux', `docker://${ref}`, `oci:${dir}:x`);
    const blob = (digest: string) => path.join(dir, 'blobs', 'sha256', digest.replace('sha256:', ''));
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
    return { manifest, blob };
  };
  /** Downloads `/image/<id>/<version>/<file>` to tmp. */
  const download = async (version: string, file: string) => {
    const res = await fetch(`${factory!.url}/image/${id}/${version}/${file}`);
    if (res.status !== 200) throw new Error(`${file}: ${res.status} ${await res.text()}\n${factory!.output().slice(-4000)}`);
    const out = path.join(tmp, `${version}-${file}`);
    fs.writeFileSync(out, Buffer.from(await res.arrayBuffer()));
    return out;
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'secureboot-installer-'));
    const t0 = Date.now();
    const port = await freePort();
    factory = await launchFactory({ port, dataDir: path.join(tmp, 'data'), demoDir: DEMO_DIR });
    host = `127.0.0.1:${port}`;
    // the external URL the launcher gives its services, as it announces it
    externalHost = new URL(/Image Factory ready on (\S+)/.exec(factory.output())![1]).host;
    process.stdout.write(`[secureboot-installer] embedded factory ready in ${seconds(t0)} s\n`);
    const created = await fetch(`${factory.url}/schematics`, {
      method: 'POST',
      body: JSON.stringify({ customization: { extraKernelArgs: ['fixture.installer=secureboot'], secureboot: {}, systemExtensions: { officialExtensions: ['siderolabs/hello'] } } }),
    });
    id = ((await created.json()) as { id: string }).id;
    const cert = await fetch(`${factory.url}/secureboot/signing-cert.pem`);
    expect(cert.status).toBe(200);
    certFile = path.join(tmp, 'signing-cert.pem');
    fs.writeFileSync(certFile, await cert.text());
    cosignKey = path.join(tmp, 'cosign.pub');
    fs.writeFileSync(cosignKey, await (await fetch(`${factory.url}/oci/cosign/signing-key.pub`)).text());
  }, 300_000);

  afterAll(async () => {
    if (factory) await stopProcess(factory.proc);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  let indexRaw: string;
  let amd64: ReturnType<typeof pull>;

  test(`skopeo copy of installer-secureboot/<id>:${VERSION}: an amd64+arm64 index; the artifacts layer holds systemd-boot and the UKI, both signed by the factory's certificate`, () => {
    const t0 = Date.now();
    indexRaw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${host}/installer-secureboot/${id}:${VERSION}`);
    process.stdout.write(`[secureboot-installer] built and published installer-secureboot (amd64+arm64) in ${seconds(t0)} s\n`);
    const index = JSON.parse(indexRaw) as { manifests: Array<{ platform: { os: string; architecture: string } }> };
    expect(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);

    for (const arch of ['amd64', 'arm64'] as const) {
      const pulled = pull(`${host}/installer-secureboot/${id}:${VERSION}`, arch, `pull-${arch}`);
      if (arch === 'amd64') amd64 = pulled;
      const artifacts = pulled.blob(pulled.manifest.layers[pulled.manifest.layers.length - 1].digest);
      expect(layerListing(artifacts)).toEqual([`---------- usr/install/${arch}/systemd-boot.efi`, `---------- usr/install/${arch}/vmlinuz.efi`]);
      expectSigned(extract(artifacts, `usr/install/${arch}/systemd-boot.efi`, `systemd-boot-${arch}.efi`));
      const uki = extract(artifacts, `usr/install/${arch}/vmlinuz.efi`, `vmlinuz-${arch}.efi`);
      expectSigned(uki);
      // the installer's UKI: main + reset-maintenance profiles, each with its PCR signature; the Secure Boot command line
      const bytes = fs.readFileSync(uki);
      const sections = parsePe(bytes).sections;
      const text = (s: (typeof sections)[number]) => peSectionData(bytes, s).toString('utf8');
      expect(sections.filter((s) => s.name === '.profile').map((s) => text(s).split('\n')[0])).toEqual(['ID=main', 'ID=reset-maintenance']);
      expect(sections.filter((s) => s.name === '.pcrsig')).toHaveLength(2);
      expect(sections.some((s) => s.name === '.pcrpkey')).toBe(true);
      const cmdline = text(sections.find((s) => s.name === '.cmdline')!);
      expect(cmdline).toContain('lockdown=confidentiality');
      expect(cmdline).toContain('fixture.installer=secureboot');
    }
  });

  test('an EFI binary signed by another key fails the same sbverify (the check can fail)', () => {
    const other = path.join(tmp, 'other');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=not the factory', '-days', '1', '-keyout', `${other}.key`, '-out', `${other}.pem`], { stdio: 'ignore' });
    const uki = path.join(tmp, 'vmlinuz-amd64.efi');
    expectSigned(uki);
    const r = spawnSync('sbverify', ['--cert', `${other}.pem`, uki], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toContain('Signature verification failed');
    expect(r.status).not.toBe(0);
  });

  testIf(!cosignSkip, cosignSkip ?? '')('cosign verify with the factory key passes on installer-secureboot and metal-installer-secureboot (the same image index)', () => {
    const indexDigest = `sha256:${createHash('sha256').update(indexRaw).digest('hex')}`;
    for (const image of ['installer-secureboot', 'metal-installer-secureboot']) {
      const ref = `${host}/${image}/${id}:${VERSION}`;
      const ok = cosignVerify(ref, cosignKey);
      if (ok.code !== 0) throw new Error(`cosign verify ${ref}: ${ok.stderr}`);
      const [payload] = JSON.parse(ok.stdout) as Array<{ critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string } } }>;
      expect(payload.critical.image['docker-manifest-digest']).toBe(indexDigest);
      // signatures name the repository as clients pull it: the factory's external host (the launcher's announced URL)
      expect(payload.critical.identity['docker-reference']).toBe(`${externalHost}/${image}/${id}`);
    }
  });

  test(`<platform>-installer-secureboot (aws-installer-secureboot/<id>:${VERSION}): signed, with the platform's command line`, () => {
    const t0 = Date.now();
    const ref = `${host}/aws-installer-secureboot/${id}:${VERSION}`;
    const index = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`)) as { manifests: Array<{ platform: { architecture: string } }> };
    process.stdout.write(`[secureboot-installer] built and published aws-installer-secureboot (amd64+arm64) in ${seconds(t0)} s\n`);
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    const { manifest, blob } = pull(ref, 'arm64', 'pull-aws-arm64');
    const artifacts = blob(manifest.layers[manifest.layers.length - 1].digest);
    expect(layerListing(artifacts)).toEqual(['---------- usr/install/arm64/systemd-boot.efi', '---------- usr/install/arm64/vmlinuz.efi']);
    expectSigned(extract(artifacts, 'usr/install/arm64/systemd-boot.efi', 'aws-systemd-boot-arm64.efi'));
    const uki = extract(artifacts, 'usr/install/arm64/vmlinuz.efi', 'aws-vmlinuz-arm64.efi');
    expectSigned(uki);
    const bytes = fs.readFileSync(uki);
    const cmdline = peSectionData(bytes, parsePe(bytes).sections.find((s) => s.name === '.cmdline')!).toString('utf8');
    expect(cmdline).toContain('talos.platform=aws');
    expect(cmdline).toContain('lockdown=confidentiality');
    if (!cosignSkip) expect(cosignVerify(ref, cosignKey).code).toBe(0);
  });

  test(`installer-amd64-secureboot.tar is the pulled amd64 image, layer for layer`, async () => {
    const t0 = Date.now();
    const tar = await download(VERSION, 'installer-amd64-secureboot.tar');
    process.stdout.write(`[secureboot-installer] installer-amd64-secureboot.tar downloaded in ${seconds(t0)} s\n`);
    const archive = JSON.parse(execFileSync('tar', ['-xOf', tar, 'manifest.json'], { encoding: 'utf8' })) as Array<{ Config: string; Layers: string[] }>;
    // the registry's manifest (skopeo's OCI layout holds a converted config; its layers are the registry's)
    const index = JSON.parse(indexRaw) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    const amd64Digest = index.manifests.find((m) => m.platform.architecture === 'amd64')!.digest;
    const served = (await (await fetch(`${factory!.url}/v2/installer-secureboot/${id}/manifests/${amd64Digest}`)).json()) as { config: { digest: string }; layers: Array<{ digest: string }> };
    expect(archive[0].Config).toBe(served.config.digest);
    expect(served.layers.map((l) => l.digest)).toEqual(amd64.manifest.layers.map((l) => l.digest));
    expect(archive[0].Layers).toEqual(amd64.manifest.layers.map((l) => `${l.digest.replace('sha256:', '')}.tar.gz`));
    for (const l of amd64.manifest.layers) {
      const member = execFileSync('tar', ['-xOf', tar, `${l.digest.replace('sha256:', '')}.tar.gz`], { maxBuffer: 512 * 1024 * 1024 });
      expect(member.equals(fs.readFileSync(amd64.blob(l.digest)))).toBe(true);
    }
  });

  test(`before 1.10 (${LEGACY_VERSION}): the legacy installer's artifacts are replaced by signed systemd-boot and vmlinuz.efi.signed`, async () => {
    const t0 = Date.now();
    const tar = await download(LEGACY_VERSION, 'metal-installer-amd64-secureboot.tar');
    process.stdout.write(`[secureboot-installer] ${LEGACY_VERSION} metal-installer-amd64-secureboot.tar built in ${seconds(t0)} s\n`);
    const [{ Layers }] = JSON.parse(execFileSync('tar', ['-xOf', tar, 'manifest.json'], { encoding: 'utf8' })) as Array<{ Layers: string[] }>;
    expect(Layers).toHaveLength(2);
    const artifacts = path.join(tmp, 'legacy-artifacts.tar.gz');
    fs.writeFileSync(artifacts, execFileSync('tar', ['-xOf', tar, Layers[1]], { maxBuffer: 512 * 1024 * 1024 }));
    expect(layerListing(artifacts)).toEqual(['---------- usr/install/amd64/systemd-boot.efi', '---------- usr/install/amd64/vmlinuz.efi.signed']);
    expectSigned(extract(artifacts, 'usr/install/amd64/systemd-boot.efi', 'legacy-systemd-boot.efi'));
    const uki = extract(artifacts, 'usr/install/amd64/vmlinuz.efi.signed', 'legacy-vmlinuz.efi');
    expectSigned(uki);
    const bytes = fs.readFileSync(uki);
    const cmdline = parsePe(bytes).sections.find((s) => s.name === '.cmdline')!;
    expect(peSectionData(bytes, cmdline).toString('utf8')).toContain('lockdown=confidentiality');
  });
});
