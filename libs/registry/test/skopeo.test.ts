/**
 * A real OCI client against the router: skopeo inspects and copies the hand-made image (manifest, config, gzip layer)
 * and gets "manifest unknown" for a missing tag.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MediaTypes } from '@factory/oci';
import { ID, TAG, startTestServer } from './fixture';
import { describeIf } from '../../../test/support/skip';

const SKOPEO = process.env.SKOPEO ?? '/usr/bin/skopeo';
const run = describeIf(existsSync(SKOPEO), `${SKOPEO} is not installed`);

let authFile = '';

function skopeo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(SKOPEO, ['--insecure-policy', ...args], { timeout: 60_000, env: { ...process.env, REGISTRY_AUTH_FILE: authFile } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

run('skopeo against the registry router', () => {
  let srv: Awaited<ReturnType<typeof startTestServer>>;
  let work: string;
  beforeAll(async () => {
    srv = await startTestServer();
    work = mkdtempSync(join(tmpdir(), 'registry-skopeo-'));
    authFile = join(work, 'auth.json');
    writeFileSync(authFile, '{"auths":{}}');
  });
  afterAll(async () => {
    await srv?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const ref = (tag: string) => `docker://${srv.host}/installer/${ID}:${tag}`;

  test('inspect', async () => {
    // Generated repositories have no tags/list (anchor §5.1: `/<image>/<id>/tags/list` is a 404), so plain
    // `skopeo inspect` fails listing tags exactly as it does against the anchor; --no-tags skips that call.
    const plain = await skopeo(['inspect', '--tls-verify=false', ref(TAG)]);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/fetching tags list: invalid status code from registry 404/);

    const r = await skopeo(['inspect', '--no-tags', '--tls-verify=false', ref(TAG)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.Digest).toBe(srv.image.manifestDigest);
    expect(out.Architecture).toBe('amd64');
    expect(out.Os).toBe('linux');
    expect(out.Layers).toEqual([srv.image.layerDigest]);

    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', ref(TAG)]);
    expect(raw.code).toBe(0);
    expect(Buffer.from(raw.stdout)).toEqual(srv.image.manifest);
  });

  test('copy to an OCI layout (digest preserved with --preserve-digests) and to dir:', async () => {
    const oci = join(work, 'oci');
    const r = await skopeo(['copy', '--src-tls-verify=false', ref(TAG), `oci:${oci}:x`]);
    expect(r.code).toBe(0);
    const blobs = readdirSync(join(oci, 'blobs', 'sha256'));
    expect(blobs).toContain(srv.image.layerDigest.slice(7));
    for (const b of blobs) {
      const hex = createHash('sha256').update(readFileSync(join(oci, 'blobs', 'sha256', b))).digest('hex');
      expect(hex).toBe(b);
    }

    // A plain copy converts the Docker schema2 manifest to OCI (skopeo's choice for oci: destinations); with
    // --preserve-digests the manifest is stored as served, so the layout names the source digest.
    const same = join(work, 'oci-preserved');
    const p = await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', ref(TAG), `oci:${same}:x`]);
    expect(p.code).toBe(0);
    const index = JSON.parse(readFileSync(join(same, 'index.json'), 'utf8'));
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0].digest).toBe(srv.image.manifestDigest);
    expect(readFileSync(join(same, 'blobs', 'sha256', srv.image.manifestDigest.slice(7)))).toEqual(srv.image.manifest);

    const dir = join(work, 'dir');
    const d = await skopeo(['copy', '--src-tls-verify=false', ref(TAG), `dir:${dir}`]);
    expect(d.code).toBe(0);
    const manifest = readFileSync(join(dir, 'manifest.json'));
    expect(manifest).toEqual(srv.image.manifest);
    expect(readFileSync(join(dir, srv.image.layerDigest.slice(7)))).toEqual(srv.image.layer);
    expect(JSON.parse(manifest.toString()).mediaType).toBe(MediaTypes.dockerManifest);
  });

  test('copy by digest with --preserve-digests', async () => {
    const dir = join(work, 'bydigest');
    const r = await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false',
      `docker://${srv.host}/installer/${ID}@${srv.image.manifestDigest}`, `dir:${dir}`]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'manifest.json'))).toEqual(srv.image.manifest);
  });

  test('missing tag: manifest unknown', async () => {
    for (const args of [['inspect', '--no-tags'], ['inspect', '--raw']]) {
      const r = await skopeo([...args, '--tls-verify=false', ref('v9.9.9')]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/manifest unknown/);
    }
    const byDigest = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${srv.host}/installer/${ID}@sha256:${'0'.repeat(64)}`]);
    expect(byDigest.code).not.toBe(0);
    expect(byDigest.stderr).toMatch(/manifest unknown/);
  });
});
