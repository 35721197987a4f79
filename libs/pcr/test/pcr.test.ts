/**
 * The PCR 11 policy against the real `systemd-measure` (bookworm's systemd 252): the same section files give the same
 * PCR values in every bank and phase (`calculate`), and the same `.pcrsig` JSON byte for byte (`sign`; PKCS#1 v1.5 is
 * deterministic). 252's `sign` computes the policy digest in a TPM (a trial session), so it runs against swtpm.
 * Sections 252 does not know (.ucode .uname .sbat .profile .dtbauto .hwids, systemd ≥ 257) are checked against the
 * chain spelled out step by step below.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  BOOT_PHASES,
  digestSection,
  digestSections,
  PCR_BANKS,
  pcr11Values,
  pcrPolicies,
  pcrPublicKeyFingerprint,
  pcrPublicKeyPem,
  pcrSignatureJson,
  PcrBank,
  policyPcrDigest,
  profileSections,
  SectionDigest,
  signPcrPolicy,
  UkiSection,
  verifyPcrSignatureDocument,
} from '@factory/pcr';
import { freePort } from '@factory/process';
import { describeIf } from '../../../test/support/skip';

const MEASURE = '/usr/lib/systemd/systemd-measure';
const hasMeasure = existsSync(MEASURE);
const swtpm = ['/usr/bin/swtpm', '/usr/local/bin/swtpm'].find((p) => existsSync(p));
const hasTss2Esys = (() => {
  try {
    return /libtss2-esys\.so\.0\b/.test(execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
})();

let dir: string;
let pcrKey: KeyObject;
let pcrKeyFile: string;
let pcrPubFile: string;
const files: Record<string, string> = {};

/** The files a UKI's sections come from; the kernel and initramfs are large enough to be read in several chunks. */
function writeSections(): void {
  const write = (name: string, bytes: Buffer | string) => {
    files[name] = path.join(dir, name.slice(1));
    writeFileSync(files[name], bytes);
  };
  const pseudoRandom = (n: number, seed: string) => {
    const out = Buffer.alloc(n);
    for (let off = 0, i = 0; off < n; i++) off += createHash('sha512').update(`${seed}${i}`).digest().copy(out, off);
    return out;
  };
  write('.linux', pseudoRandom(3 * 1024 * 1024 + 17, 'kernel'));
  write('.osrel', 'NAME="Talos"\nID=talos\nVERSION_ID=v1.11.5\nPRETTY_NAME="Talos (v1.11.5)"\n');
  write('.cmdline', 'talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on lockdown=confidentiality');
  write('.initrd', pseudoRandom(5 * 1024 * 1024 + 3, 'initrd'));
  write('.splash', Buffer.concat([Buffer.from('BM'), pseudoRandom(4000, 'splash')]));
  write('.dtb', pseudoRandom(999, 'dtb'));
  write('.pcrpkey', pcrPublicKeyPem(pcrKey));
}

const sectionsFromFiles = (names: string[]): UkiSection[] => names.map((name) => ({ name, content: { file: files[name] } }));

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pcr-test-'));
  pcrKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  pcrKeyFile = path.join(dir, 'pcr-signing-key.pem');
  pcrPubFile = path.join(dir, 'pcr-signing-key.pub');
  writeFileSync(pcrKeyFile, pcrKey.export({ type: 'pkcs1', format: 'pem' }));
  writeFileSync(pcrPubFile, pcrPublicKeyPem(pcrKey));
  writeSections();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** systemd-measure's options for the sections it knows. */
const measureArgs = (names: string[]) => names.map((n) => `--${n.slice(1)}=${files[n]}`);
const bankArgs = PCR_BANKS.map((b) => `--bank=${b.toUpperCase()}`);
const localSigner = (key: KeyObject) => async (policy: Buffer, bank: PcrBank) => sign(bank, policy, key);

const SECTIONS_252 = ['.linux', '.osrel', '.cmdline', '.initrd', '.splash', '.pcrpkey'];

describe('section digests', () => {
  test('a file is streamed and gives the digests of its bytes in every bank', async () => {
    const fromFile = await digestSection({ name: '.initrd', content: { file: files['.initrd'] } });
    const bytes = execFileSync('cat', [files['.initrd']], { maxBuffer: 64 << 20 });
    const fromBuffer = await digestSection({ name: '.initrd', content: bytes });
    expect(fromFile).toEqual(fromBuffer);
    expect(fromFile.size).toBe(5 * 1024 * 1024 + 3);
    for (const bank of PCR_BANKS) expect(fromFile.digests[bank]).toBe(createHash(bank).update(bytes).digest('hex'));
  });

  test('a 256 MiB section is hashed with bounded memory', async () => {
    const big = path.join(dir, 'big');
    execFileSync('truncate', ['-s', '256M', big]);
    const before = process.memoryUsage().rss;
    const d = await digestSection({ name: '.initrd', content: { file: big } });
    const grew = process.memoryUsage().rss - before;
    const sha512 = execFileSync('sha512sum', [big], { encoding: 'utf8' }).split(' ')[0];
    rmSync(big);
    expect(d.size).toBe(256 * 1024 * 1024);
    expect(d.digests.sha512).toBe(sha512);
    expect(grew).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);

  test('sections are put in the stub order; unknown, duplicate and malformed ones are refused', async () => {
    const d = await digestSections(sectionsFromFiles(['.pcrpkey', '.initrd', '.linux', '.cmdline']));
    expect(d.map((s) => s.name)).toEqual(['.linux', '.cmdline', '.initrd', '.pcrpkey']);
    await expect(digestSections([{ name: '.text', content: 'x' }])).rejects.toThrow('section ".text" is not one systemd-stub measures into PCR 11');
    await expect(digestSections([{ name: '.osrel', content: 'a' }, { name: '.osrel', content: 'b' }])).rejects.toThrow('section .osrel is listed twice');
    const bad: SectionDigest = { name: '.osrel', size: 1, digests: { ...d[0].digests, sha384: 'ab' } };
    expect(() => pcr11Values([bad])).toThrow('section .osrel: sha384 digest must be 96 lowercase hex digits');
  });
});

describe('PCR 11 chain', () => {
  /** extend(x) = H(pcr || x), written out independently of the library. */
  function chain(bank: PcrBank, steps: Buffer[]): Buffer {
    return steps.reduce((pcr, x) => createHash(bank).update(pcr).update(x).digest(), Buffer.alloc(createHash(bank).digest().length));
  }
  const h = (bank: PcrBank, b: Buffer | string) => createHash(bank).update(b).digest();

  test('sections systemd 252 does not know (.ucode .uname .sbat .profile .dtbauto .hwids) take their ≥ 257 places', async () => {
    const contents: Record<string, string> = {
      '.hwids': 'hwids', '.dtbauto': 'dtbauto', '.profile': 'ID=main', '.sbat': 'sbat,1,SBAT Version\n', '.pcrpkey': 'pk',
      '.uname': '6.12.5-talos', '.dtb': 'dtb', '.splash': 'BM', '.ucode': 'ucode', '.initrd': 'initrd', '.cmdline': 'cmd', '.osrel': 'os', '.linux': 'kernel',
    };
    const stubOrder = ['.linux', '.osrel', '.cmdline', '.initrd', '.ucode', '.splash', '.dtb', '.uname', '.sbat', '.pcrpkey', '.profile', '.dtbauto', '.hwids'];
    const values = pcr11Values(await digestSections(Object.entries(contents).map(([name, content]) => ({ name, content }))));
    for (const bank of PCR_BANKS) {
      const steps = stubOrder.flatMap((n) => [h(bank, Buffer.concat([Buffer.from(n), Buffer.of(0)])), h(bank, contents[n])]);
      const phases = BOOT_PHASES.map((_, i) => chain(bank, [...steps, ...BOOT_PHASES.slice(0, i + 1).map((p) => h(bank, p))]));
      expect(values[bank].map((v) => v.pcr.toString('hex'))).toEqual(phases.map((p) => p.toString('hex')));
      expect(values[bank].map((v) => v.phasePath)).toEqual(['enter-initrd', 'enter-initrd:leave-initrd', 'enter-initrd:leave-initrd:enter-machined']);
    }
  });

  test("a profile's sections replace the base ones of the same name, and the .profile is measured", async () => {
    const base = await digestSections([
      { name: '.linux', content: 'k' }, { name: '.osrel', content: 'o' }, { name: '.cmdline', content: 'base cmdline' }, { name: '.initrd', content: 'i' },
    ]);
    const reset = await digestSections([{ name: '.profile', content: 'ID=reset\nTITLE=Reset system disk' }, { name: '.cmdline', content: 'base cmdline talos.experimental.wipe=system' }]);
    const merged = profileSections(base, reset);
    expect(merged.map((s) => s.name)).toEqual(['.linux', '.osrel', '.cmdline', '.initrd', '.profile']);
    expect(merged[2]).toBe(reset.find((s) => s.name === '.cmdline'));
    const alone = await digestSections([
      { name: '.linux', content: 'k' }, { name: '.osrel', content: 'o' }, { name: '.cmdline', content: 'base cmdline talos.experimental.wipe=system' }, { name: '.initrd', content: 'i' },
      { name: '.profile', content: 'ID=reset\nTITLE=Reset system disk' },
    ]);
    expect(pcr11Values(merged)).toEqual(pcr11Values(alone));
  });

  test('PolicyPCR digest of PCR 11 in each bank (TPM2 PolicyPCR from a zero policy, SHA-256 session)', () => {
    const value = Buffer.alloc(48, 0xab);
    const expected = createHash('sha256')
      .update(Buffer.alloc(32))
      .update(Buffer.from('0000017f' + '00000001' + '000c' + '03' + '000800', 'hex'))
      .update(createHash('sha256').update(value).digest())
      .digest('hex');
    expect(policyPcrDigest('sha384', value).toString('hex')).toBe(expected);
  });
});

describeIf(hasMeasure, `${MEASURE} is not installed (bookworm's systemd 252 ships it)`)('against systemd-measure calculate (systemd 252)', () => {
  const phaseArgs = BOOT_PHASES.map((_, i) => `--phase=${BOOT_PHASES.slice(0, i + 1).join(':')}`);
  type Calculated = Record<string, Array<{ phase: string; pcr: number; hash: string }>>;

  for (const names of [SECTIONS_252, ['.linux', '.osrel', '.cmdline', '.initrd', '.splash', '.dtb'], ['.linux', '.initrd']]) {
    test(`same PCR 11 values in every bank and phase: ${names.join(' ')}`, async () => {
      const ours = pcr11Values(await digestSections(sectionsFromFiles(names)));
      const theirs = JSON.parse(execFileSync(MEASURE, ['calculate', ...measureArgs(names), ...bankArgs, ...phaseArgs, '--json=short'], { encoding: 'utf8' })) as Calculated;
      for (const bank of PCR_BANKS) {
        expect(theirs[bank].map((e) => ({ phase: e.phase, pcr: e.pcr, hash: e.hash }))).toEqual(ours[bank].map((v) => ({ phase: v.phasePath, pcr: 11, hash: v.pcr.toString('hex') })));
      }
    });
  }
});

/** A software TPM on loopback: 252's `sign` computes the policy digest in a TPM trial session. */
async function startSwtpm(binary: string): Promise<{ port: number; proc: ChildProcess; stop: () => Promise<void> }> {
  const stateDir = mkdtempSync(path.join(dir, 'tpm-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    // The swtpm TCTI talks to its control channel on port + 1.
    const ctrlFree = await new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false));
      s.listen(port + 1, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!ctrlFree && attempt < 10) continue;
    const proc = spawn(binary, ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'], { stdio: 'ignore' });
    const up = await new Promise<boolean>((resolve) => {
      const deadline = Date.now() + 10_000;
      const tryConnect = () => {
        const c = net.connect(port, '127.0.0.1', () => (c.destroy(), resolve(true)));
        c.once('error', () => (Date.now() > deadline || proc.exitCode !== null ? resolve(false) : setTimeout(tryConnect, 50)));
      };
      tryConnect();
    });
    const stop = () => new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : (proc.once('exit', () => resolve()), proc.kill('SIGTERM'))));
    if (up) return { port, proc, stop };
    await stop();
    if (attempt >= 10) throw new Error('swtpm did not start');
  }
}

describeIf(hasMeasure && !!swtpm && hasTss2Esys, `systemd-measure sign needs ${MEASURE}, swtpm and libtss2-esys (scripts/setup.sh installs them)`)('against systemd-measure sign (systemd 252, swtpm)', () => {
  let tpm: Awaited<ReturnType<typeof startSwtpm>>;
  beforeAll(async () => {
    tpm = await startSwtpm(swtpm!);
  }, 30_000);
  afterAll(async () => tpm && (await tpm.stop()));

  const measureSign = (names: string[], phase: string) =>
    execFileSync(MEASURE, ['sign', `--tpm2-device=swtpm:host=127.0.0.1,port=${tpm.port}`, ...measureArgs(names), ...bankArgs, `--phase=${phase}`, `--private-key=${pcrKeyFile}`, `--public-key=${pcrPubFile}`, '--json=short'], { encoding: 'utf8' }).trim();

  test('the same .pcrsig JSON, byte for byte, for the phase Talos signs', async () => {
    const doc = await signPcrPolicy(await digestSections(sectionsFromFiles(SECTIONS_252)), pcrPublicKeyPem(pcrKey), localSigner(pcrKey));
    const ours = pcrSignatureJson(doc);
    expect(ours).toBe(measureSign(SECTIONS_252, 'enter-initrd:leave-initrd:enter-machined'));
    expect(Object.keys(doc)).toEqual(['sha256', 'sha384', 'sha512']);
    expect(doc.sha256![0].pkfp).toBe(pcrPublicKeyFingerprint(pcrKey));
    expect(verifyPcrSignatureDocument(doc, readFileSync(files['.pcrpkey']))).toBe(true);
  }, 60_000);

  test('the same policies for every phase (one entry per phase and bank)', async () => {
    const sections = await digestSections(sectionsFromFiles(SECTIONS_252));
    const doc = await signPcrPolicy(sections, pcrPublicKeyPem(pcrKey), localSigner(pcrKey), BOOT_PHASES);
    const theirs = JSON.parse(
      execFileSync(MEASURE, ['sign', `--tpm2-device=swtpm:host=127.0.0.1,port=${tpm.port}`, ...measureArgs(SECTIONS_252), ...bankArgs, ...BOOT_PHASES.map((_, i) => `--phase=${BOOT_PHASES.slice(0, i + 1).join(':')}`), `--private-key=${pcrKeyFile}`, `--public-key=${pcrPubFile}`, '--json=short'], { encoding: 'utf8' }),
    );
    expect(pcrSignatureJson(doc)).toBe(JSON.stringify(theirs));
    expect(pcrPolicies(sections, BOOT_PHASES)).toHaveLength(9);
  }, 60_000);
});

describe('signing', () => {
  test('a signer holding another key is caught before the document is returned', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const sections = await digestSections([{ name: '.linux', content: 'k' }]);
    await expect(signPcrPolicy(sections, pcrPublicKeyPem(pcrKey), localSigner(other))).rejects.toThrow(/sha256 PCR policy signature does not verify with the PCR public key/);
  });

  test('the PCR key must be RSA; .pcrpkey is the PKIX PEM of a PKCS#1 private key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(() => pcrPublicKeyPem(ec)).toThrow('the PCR signing key must be an RSA key, not ec');
    const pkcs1 = pcrKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1.startsWith('-----BEGIN RSA PRIVATE KEY-----')).toBe(true);
    const pem = pcrPublicKeyPem(createPrivateKey(pkcs1));
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n(?:[A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END PUBLIC KEY-----\n$/);
  });
});
