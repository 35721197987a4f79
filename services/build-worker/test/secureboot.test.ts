/**
 * Secure Boot recipes below the edge: buildAsset with a `-secureboot` profile, the demo imager's stub, kernel and
 * initramfs, and the signing service's real Secure Boot handlers (test keys) behind the build-worker's queue adapter.
 * The signed UKI verifies with sbverify and osslsigncode, carries its sections in talos-formats §6.2 order, its
 * `.pcrsig` equals what @factory/pcr computes from its own sections, and its PCR 11 values equal systemd-measure's;
 * the Secure Boot ISO is UEFI-only with signed sd-boot and UKI, the enrollment files and `secure-boot-enroll`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, sign as rsaSign, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AssetProfile, secureBootSignerId, signingCertificateSha256 } from '@factory/asset';
import { parsePe, peSectionData } from '@factory/authenticode';
import { FactoryError } from '@factory/errors';
import { digestSection, pcr11Values, pcrSignatureJson, profileSections, SectionDigest, signPcrPolicy, isMeasuredSection, BOOT_PHASES } from '@factory/pcr';
import { secureBootHandlers } from '../../signing/src/secureboot-handlers';
import type { SecureBootKeys } from '../../signing/src/secureboot-keys';
import { DEMO_DIR } from '../../../test/support/demo-imager';
import type { TestKeyPair } from '../../../test/support/secureboot-keys';
import { describeIf } from '../../../test/support/skip';
import { buildAsset, BuildContext } from '../src/recipes';
import { queueSecureBootSigner } from '../src/secureboot';
import { testProfile } from './profiles';
import { expectSignedBy, makeSecureBootTestKeys, secureBootBuildContext } from './secureboot-signer';

jest.setTimeout(240_000);

const VERSION = 'v1.12.2';
const MEASURE = '/usr/lib/systemd/systemd-measure';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const READY = ['sbverify', 'osslsigncode', 'openssl', 'objdump', 'xorriso', 'mkfs.vfat', 'mcopy'].every(have) && fs.existsSync(MEASURE) && fs.existsSync(path.join(DEMO_DIR, 'releases.json'));

let tmp: string;
let signing: TestKeyPair;
let keys: SecureBootKeys;
const calls: string[] = [];

const context = (k: SecureBootKeys | undefined): BuildContext => secureBootBuildContext(tmp, VERSION, k, calls);

/** A Secure Boot UKI of the demo version unless `over` says otherwise. */
const profile = (over: Partial<AssetProfile>): AssetProfile => testProfile({ version: VERSION, kind: 'uki', secureboot: true, path: 'metal-amd64-secureboot-uki.efi', ...over });

/** Section names in table order, as objdump prints them. */
function objdumpSections(file: string): string[] {
  return execFileSync('objdump', ['-h', file], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\s*\d+\s+(\S+)\s/.exec(l)?.[1])
    .filter((n): n is string => !!n);
}

/**
 * Every `.pcrsig` of a signed UKI equals the document @factory/pcr signs (with the test PCR key) over what the stub
 * measures for the profile it follows: the measured sections before the first `.profile` (the stub's `.sbat`
 * included), with that profile's own sections in place. Returns the base digests and the base sections as files.
 */
async function expectPcrSignatures(bytes: Buffer, profiles: number): Promise<{ base: SectionDigest[]; files: Record<string, string> }> {
  const info = parsePe(bytes);
  const firstProfile = info.sections.findIndex((s) => s.name === '.profile');
  const base: SectionDigest[] = [];
  const files: Record<string, string> = {};
  for (const s of info.sections.slice(0, firstProfile)) {
    if (!isMeasuredSection(s.name)) continue;
    const data = peSectionData(bytes, s);
    base.push(await digestSection({ name: s.name, content: data }));
    files[s.name] = path.join(tmp, `section${s.name}`);
    fs.writeFileSync(files[s.name], data);
  }
  const pcrKey = createPrivateKey(keys.pcr.keyPem);
  let own: SectionDigest[] = [];
  let checked = 0;
  for (const s of info.sections.slice(firstProfile)) {
    if (s.name !== '.pcrsig') {
      own.push(await digestSection({ name: s.name, content: peSectionData(bytes, s) }));
      continue;
    }
    const expected = pcrSignatureJson(await signPcrPolicy(profileSections(base, own), keys.pcr.publicPem, async (policy, bank) => rsaSign(bank, policy, pcrKey)));
    expect(peSectionData(bytes, s).toString('utf8')).toBe(expected);
    own = [];
    checked++;
  }
  expect(checked).toBe(profiles);
  return { base, files };
}

describeIf(READY, 'needs sbsigntool, osslsigncode, openssl, binutils, xorriso, dosfstools, mtools, systemd-measure and the demo releases')('Secure Boot recipes (signing service handlers behind the queue adapter)', () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-recipes-'));
    ({ signing, keys } = makeSecureBootTestKeys(tmp));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('metal-amd64-secureboot-uki.efi', () => {
    let uki: string;
    let bytes: Buffer;
    beforeAll(async () => {
      const work = fs.mkdtempSync(path.join(tmp, 'uki-'));
      const built = await buildAsset(context(keys), profile({ signer: signingCertificateSha256(signing.certPem) }), work);
      uki = path.join(tmp, 'metal-amd64-secureboot-uki.efi');
      fs.copyFileSync(built.file, uki);
      bytes = fs.readFileSync(uki);
    });

    test('Authenticode: sbverify and osslsigncode accept it with the factory certificate', () => {
      expectSignedBy(uki, signing.certPath);
      expect(calls).toContain('signing.authenticode');
    });

    test('sections in §6.2 order: the stub\'s, then .osrel .cmdline .uname .splash .pcrpkey .linux .initrd .profile .pcrsig', () => {
      const names = objdumpSections(uki);
      expect(names.slice(names.indexOf('.osrel'))).toEqual(['.osrel', '.cmdline', '.uname', '.splash', '.pcrpkey', '.linux', '.initrd', '.profile', '.pcrsig']);
      expect(names.filter((n) => n === '.sbat')).toHaveLength(1);
      const info = parsePe(bytes);
      const text = (name: string) => peSectionData(bytes, info.sections.find((s) => s.name === name)!).toString('utf8');
      expect(text('.pcrpkey')).toBe(keys.pcr.publicPem);
      expect(text('.cmdline')).toContain('lockdown=confidentiality');
      expect(text('.profile')).toBe('ID=main');
    });

    test('.pcrsig equals what @factory/pcr computes over the UKI\'s own measured sections; PCR 11 equals systemd-measure calculate', async () => {
      const { base, files } = await expectPcrSignatures(bytes, 1);
      expect(base.map((s) => s.name).sort()).toEqual(['.cmdline', '.initrd', '.linux', '.osrel', '.pcrpkey', '.sbat', '.splash', '.uname']);
      // systemd 252's measure knows .linux .osrel .cmdline .initrd .splash .pcrpkey: the same extracted files, the same PCR 11
      const known = ['.linux', '.osrel', '.cmdline', '.initrd', '.splash', '.pcrpkey'];
      const args = known.map((n) => `--${n.slice(1)}=${files[n]}`);
      const phases = BOOT_PHASES.map((_, i) => `--phase=${BOOT_PHASES.slice(0, i + 1).join(':')}`);
      const theirs = JSON.parse(execFileSync(MEASURE, ['calculate', ...args, '--bank=sha256', '--bank=sha384', '--bank=sha512', ...phases, '--json=short'], { encoding: 'utf8' })) as Record<string, Array<{ phase: string; hash: string }>>;
      const ours = pcr11Values(base.filter((s) => known.includes(s.name)));
      for (const bank of ['sha256', 'sha384', 'sha512'] as const) {
        const last = ours[bank][ours[bank].length - 1];
        expect(theirs[bank].find((e) => e.phase === last.phasePath)?.hash).toBe(last.pcr.toString('hex'));
      }
    });
  });

  test('metal-amd64-secureboot.iso: UEFI-only, signed sd-boot and UKI (main .pcrsig and reset .pcrsig), enrollment keys, secure-boot-enroll if-safe', async () => {
    const work = fs.mkdtempSync(path.join(tmp, 'iso-'));
    const built = await buildAsset(context(keys), profile({ kind: 'iso', path: 'metal-amd64-secureboot.iso' }), work);
    const out = path.join(tmp, 'iso-tree');
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', built.file, '-extract', '/', out], { stdio: 'ignore' });
    const files = execFileSync('find', [out, '-type', 'f'], { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => path.relative(out, f)).sort();
    expect(files).toEqual([
      'EFI/BOOT/BOOTX64.EFI',
      `EFI/Linux/Talos-${VERSION}.efi`,
      'EFI/keys/uki-signing-cert.der',
      'boot.catalog',
      'loader/keys/auto/KEK.auth',
      'loader/keys/auto/PK.auth',
      'loader/keys/auto/db.auth',
      'loader/loader.conf',
      'loader/random-seed',
    ]);
    expect(fs.readFileSync(path.join(out, 'loader/loader.conf'), 'utf8')).toContain('\nsecure-boot-enroll if-safe\n');
    expect(fs.readFileSync(path.join(out, 'EFI/keys/uki-signing-cert.der'))).toEqual(new X509Certificate(signing.certPem).raw);
    const enrollment = await secureBootHandlers(keys)['signing.secureBootEnrollment']({});
    for (const name of ['PK', 'KEK', 'db'] as const) expect(fs.readFileSync(path.join(out, `loader/keys/auto/${name}.auth`))).toEqual(Buffer.from(enrollment[name], 'base64'));
    for (const efi of ['EFI/BOOT/BOOTX64.EFI', `EFI/Linux/Talos-${VERSION}.efi`]) expectSignedBy(path.join(out, efi), signing.certPath);
    const names = objdumpSections(path.join(out, `EFI/Linux/Talos-${VERSION}.efi`));
    expect(names.slice(names.indexOf('.initrd'))).toEqual(['.initrd', '.profile', '.pcrsig', '.profile', '.cmdline', '.pcrsig']);
    await expectPcrSignatures(fs.readFileSync(path.join(out, `EFI/Linux/Talos-${VERSION}.efi`)), 2);
    // no BIOS boot: no GRUB tree
    expect(files.some((f) => f.startsWith('boot/'))).toBe(false);
  });

  test('includeWellKnownCertificates: the ISO carries the KEK and db files with the well-known UEFI CAs the signing service makes', async () => {
    const built = await buildAsset(context(keys), profile({ kind: 'iso', path: 'metal-amd64-secureboot.iso', includeWellKnownCertificates: true }), fs.mkdtempSync(path.join(tmp, 'wk-')));
    const handlers = secureBootHandlers(keys);
    const withCAs = await handlers['signing.secureBootEnrollment']({ includeWellKnownCertificates: true });
    const without = await handlers['signing.secureBootEnrollment']({});
    const fromIso = (name: string) => {
      const out = path.join(tmp, `wk-${name}.auth`);
      execFileSync('xorriso', ['-osirrox', 'on', '-indev', built.file, '-extract', `/loader/keys/auto/${name}.auth`, out], { stdio: 'ignore' });
      return fs.readFileSync(out);
    };
    for (const name of ['PK', 'KEK', 'db'] as const) expect(fromIso(name)).toEqual(Buffer.from(withCAs[name], 'base64'));
    expect(withCAs.db).not.toBe(without.db);
  });

  test('a rotated signing certificate is refused before anything is built (the asset key names the old one)', async () => {
    const work = fs.mkdtempSync(path.join(tmp, 'rotated-'));
    const err = await buildAsset(context(keys), profile({ signer: 'a'.repeat(64) }), work).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FactoryError);
    expect((err as FactoryError).status).toBe(503);
    expect((err as Error).message).toContain('Secure Boot certificates changed');
  });

  test('a PK configured after the asset was named is refused too (its ISO would enrol a PK the key does not name)', async () => {
    const ctx = context(keys);
    const withPk = { ...ctx.secureBoot!, material: async () => ({ ...(await ctx.secureBoot!.material()), pkCertPem: signing.certPem }) };
    const named = profile({ signer: signingCertificateSha256(signing.certPem) });
    const err = await buildAsset({ ...ctx, secureBoot: withPk }, named, fs.mkdtempSync(path.join(tmp, 'pk-'))).catch((e: unknown) => e);
    expect((err as FactoryError).status).toBe(503);
    // the same certificates as the edge named build
    const built = await buildAsset({ ...ctx, secureBoot: withPk }, profile({ signer: secureBootSignerId({ signingCertPem: signing.certPem, pkCertPem: signing.certPem }) }), fs.mkdtempSync(path.join(tmp, 'pk-ok-')));
    expect(fs.statSync(built.file).size).toBeGreaterThan(0);
  });

  test('Secure Boot off in the signing service: 400 secure boot is disabled', async () => {
    const disabled = { call: async () => ({ enabled: false }) } as unknown as Parameters<typeof queueSecureBootSigner>[0];
    const ctx = { ...context(undefined), secureBoot: queueSecureBootSigner(disabled, 1000) };
    const err = await buildAsset(ctx, profile({}), fs.mkdtempSync(path.join(tmp, 'off-'))).catch((e: unknown) => e);
    expect((err as FactoryError).status).toBe(400);
    expect((err as Error).message).toBe('error enhancing profile from schematic: secure boot is disabled');
  });
});
