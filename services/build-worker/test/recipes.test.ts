/**
 * The build dispatcher with mocked adapters: the recipe of each kind gets the resolved profile and the imager files,
 * trusts the profile (no schematic parsing, no catalog lookups), and pulls only what its kind needs.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildFactoryCmdline, parseRequestVersion } from '@factory/talos';
import { buildAsset, BuildContext } from '../src/recipes';
import { testProfile } from './profiles';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'recipes-'));
const kernel = path.join(tmp, 'vmlinuz');
writeFileSync(kernel, 'kernel bytes');

function context() {
  const pulled: string[] = [];
  const stages: string[] = [];
  const ctx = {
    catalog: {} as BuildContext['catalog'],
    oci: {} as BuildContext['oci'],
    externalUrl: 'https://factory.example',
    progress: (stage: string) => stages.push(stage),
    inputs: {
      imager: async (tag: string, arch: string) => (pulled.push(`imager ${tag} ${arch}`), { kernel, initramfs: '', stub: '', sdBoot: '' }),
      extension: async () => (pulled.push('extension'), ''),
      overlay: async () => (pulled.push('overlay'), ''),
      rawImage: async () => (pulled.push('rawImage'), { reference: '', config: Buffer.alloc(0), layers: [] }),
    } as unknown as BuildContext['inputs'],
  } satisfies BuildContext;
  return { ctx, pulled, stages };
}

const profile = testProfile;

test('kernel: the imager kernel as it is, nothing else pulled', async () => {
  const { ctx, pulled } = context();
  const work = mkdtempSync(path.join(tmp, 'w-'));
  const built = await buildAsset(ctx, profile({}), work);
  expect(readFileSync(built.file, 'utf8')).toBe('kernel bytes');
  expect(pulled).toEqual(['imager v1.11.3 amd64']);
});

test('cmdline: the platform command line with the profile extra args and META, exactly as @factory/talos builds it', async () => {
  const { ctx, pulled } = context();
  const work = mkdtempSync(path.join(tmp, 'w-'));
  const p = profile({ kind: 'cmdline', path: 'cmdline-metal-arm64', arch: 'arm64', extraKernelArgs: ['console=ttyS0', 'fixture=1'], meta: [{ key: 10, value: 'x' }] });
  const built = await buildAsset(ctx, p, work);
  const expected = buildFactoryCmdline({ platform: 'metal', arch: 'arm64', version: parseRequestVersion('v1.11.3')!, kind: 'cmdline', secureboot: false, meta: [{ key: 10, value: 'x' }], extraArgs: ['console=ttyS0', 'fixture=1'] });
  expect(readFileSync(built.file, 'utf8')).toBe(expected);
  expect(expected).toContain('talos.environment=');
  expect(expected).toMatch(/ fixture=1$/);
  expect(pulled).toEqual(['imager v1.11.3 arm64']);
});

test('a profile whose version is not a normalized tag is a producer bug, not a client error', async () => {
  const { ctx } = context();
  await expect(buildAsset(ctx, profile({ version: '1.11.3' }), tmp)).rejects.toThrow('asset profile has a malformed version "1.11.3"');
});
