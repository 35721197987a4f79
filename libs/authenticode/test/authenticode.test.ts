/**
 * Authenticode signing (libs/authenticode) cross-checked with the real tools: sbverify and osslsigncode accept our
 * signatures on systemd-boot, on a UKI written by libs/imaging and on a PE32 image, and refuse them with another
 * certificate or after a one-byte change; with sbsign's signing time our signed file is byte-identical to sbsign's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes, sign as rsaSign } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  authenticodeDigest,
  authenticodeSignedData,
  parsePe,
  signPeFile,
  AuthenticodeSigner,
} from '@factory/authenticode';
import { assemblePe } from '../../imaging/src/uki';
import { makeTestKeyPair, TestKeyPair } from '../../../test/support/secureboot-keys';
import { testIf } from '../../../test/support/skip';

const SD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const TOOLS = ['sbsign', 'sbverify', 'osslsigncode', 'openssl'].every(have) && fs.existsSync(SD_BOOT) && fs.existsSync(STUB);
const toolIt = testIf(TOOLS, 'needs sbsigntool, osslsigncode, openssl and systemd-boot-efi (scripts/setup.sh)');

let tmp: string;
const keys: Record<string, TestKeyPair> = {};

function signerFor(k: TestKeyPair, extra: Partial<Parameters<typeof authenticodeSignedData>[0]> = {}): AuthenticodeSigner {
  return (sha256) => authenticodeSignedData({ sha256, certificates: [k.certPem], sign: async (tbs) => rsaSign('sha256', tbs, k.keyPem), ...extra });
}

function run(cmd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function expectVerifies(file: string, k: TestKeyPair): void {
  const sb = run('sbverify', ['--cert', k.certPath, file]);
  expect(sb.out).toContain('Signature verification OK');
  expect(sb.status).toBe(0);
  const oss = run('osslsigncode', ['verify', '-CAfile', k.certPath, '-in', file]);
  expect(oss.out).toMatch(/Signature verification: ok/);
  expect(oss.out).toMatch(/^Succeeded$/m);
  expect(oss.status).toBe(0);
}

function expectRefused(file: string, k: TestKeyPair): void {
  const sb = run('sbverify', ['--cert', k.certPath, file]);
  expect(sb.out).toContain('Signature verification failed');
  expect(sb.status).not.toBe(0);
  const oss = run('osslsigncode', ['verify', '-CAfile', k.certPath, '-in', file]);
  expect(oss.out).toMatch(/^Failed$/m);
  expect(oss.status).not.toBe(0);
}

/** the signingTime sbsign (OpenSSL's PKCS7_sign) put into a signature: OID 1.2.840.113549.1.9.5, SET { UTCTime } */
function signingTimeOf(signedFile: string): Date {
  const b = fs.readFileSync(signedFile);
  const oid = Buffer.from('06092a864886f70d010905310f170d', 'hex');
  const at = b.indexOf(oid);
  if (at < 0) throw new Error('no signingTime in sbsign output');
  const t = b.toString('latin1', at + oid.length, at + oid.length + 13); // YYMMDDHHMMSSZ
  return new Date(`20${t.slice(0, 2)}-${t.slice(2, 4)}-${t.slice(4, 6)}T${t.slice(6, 8)}:${t.slice(8, 10)}:${t.slice(10, 12)}Z`);
}

/** sbsign the input; then sign it ourselves with sbsign's signing time: the files must be identical. */
async function expectSameAsSbsign(input: string, k: TestKeyPair): Promise<void> {
  const theirs = `${input}.sbsign`;
  execFileSync('sbsign', ['--key', k.keyPath, '--cert', k.certPath, '--output', theirs, input], { stdio: 'ignore' });
  const ours = `${input}.ours-as-sbsign`;
  await signPeFile(input, ours, signerFor(k, { opensslAttributes: { signingTime: signingTimeOf(theirs) } }));
  expect(createHash('sha256').update(fs.readFileSync(ours)).digest('hex')).toBe(createHash('sha256').update(fs.readFileSync(theirs)).digest('hex'));
  // and the digest we compute over sbsign's signed file is the one sbsign embedded
  expect((await authenticodeDigest(theirs)).equals(await authenticodeDigest(input))).toBe(true);
}

function flipByte(file: string, offset: number, out: string): void {
  const b = fs.readFileSync(file);
  b[offset] ^= 0x01;
  fs.writeFileSync(out, b);
}

/** A minimal PE32 (i386) image: headers, one .text section; enough for signing tools. */
function minimalPe32(): Buffer {
  const b = Buffer.alloc(0x400);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x40, 0x3c);
  b.write('PE\0\0', 0x40, 'latin1');
  const coff = 0x44;
  b.writeUInt16LE(0x14c, coff); // i386
  b.writeUInt16LE(1, coff + 2);
  b.writeUInt16LE(224, coff + 16); // SizeOfOptionalHeader: 96 + 16 data directories
  b.writeUInt16LE(0x0102, coff + 18); // executable, 32-bit
  const opt = coff + 20;
  b.writeUInt16LE(0x10b, opt);
  b.writeUInt32LE(0x200, opt + 4); // SizeOfCode
  b.writeUInt32LE(0x1000, opt + 16); // AddressOfEntryPoint
  b.writeUInt32LE(0x1000, opt + 20); // BaseOfCode
  b.writeUInt32LE(0x400000, opt + 28); // ImageBase
  b.writeUInt32LE(0x1000, opt + 32); // SectionAlignment
  b.writeUInt32LE(0x200, opt + 36); // FileAlignment
  b.writeUInt32LE(0x2000, opt + 56); // SizeOfImage
  b.writeUInt32LE(0x200, opt + 60); // SizeOfHeaders
  b.writeUInt16LE(10, opt + 68); // EFI application
  b.writeUInt32LE(16, opt + 92); // NumberOfRvaAndSizes
  const sec = opt + 224;
  b.write('.text', sec, 'latin1');
  b.writeUInt32LE(0x10, sec + 8);
  b.writeUInt32LE(0x1000, sec + 12);
  b.writeUInt32LE(0x200, sec + 16);
  b.writeUInt32LE(0x200, sec + 20);
  b.writeUInt32LE(0x60000020, sec + 36);
  b.fill(0xc3, 0x200, 0x210); // ret
  return b;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'authenticode-test-'));
  if (!TOOLS) return;
  keys.db = makeTestKeyPair(tmp, 'db');
  keys.other = makeTestKeyPair(tmp, 'other');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('systemd-boot', () => {
  let signed: string;
  beforeAll(async () => {
    if (!TOOLS) return;
    signed = path.join(tmp, 'sd-boot.signed.efi');
    await signPeFile(SD_BOOT, signed, signerFor(keys.db));
  });

  toolIt('sbverify and osslsigncode accept our signature; the layout is a WIN_CERTIFICATE at an 8-byte boundary', async () => {
    expectVerifies(signed, keys.db);
    const b = fs.readFileSync(signed);
    const info = parsePe(b);
    const dir = info.dataDirectories[4];
    expect(dir.virtualAddress % 8).toBe(0);
    expect(dir.size % 8).toBe(0);
    expect(dir.virtualAddress + dir.size).toBe(b.length);
    expect(b.readUInt16LE(dir.virtualAddress + 4)).toBe(0x0200);
    expect(b.readUInt16LE(dir.virtualAddress + 6)).toBe(0x0002);
    expect(b.readUInt32LE(dir.virtualAddress)).toBeLessThanOrEqual(dir.size);
    // before the table: the original file (only CheckSum and the directory entry changed), then zero padding
    const original = fs.readFileSync(SD_BOOT);
    const patched = Buffer.from(b.subarray(0, original.length));
    const checkSumAt = info.optionalHeaderOffset + 64;
    const dirAt = info.optionalHeaderOffset + 108 + 4 + 8 * 4;
    original.copy(patched, checkSumAt, checkSumAt, checkSumAt + 4);
    original.copy(patched, dirAt, dirAt, dirAt + 8);
    expect(patched.equals(original)).toBe(true);
    expect(b.subarray(original.length, dir.virtualAddress).equals(Buffer.alloc(dir.virtualAddress - original.length))).toBe(true);
    expect(b.readUInt32LE(checkSumAt)).not.toBe(original.readUInt32LE(checkSumAt));
  });

  toolIt('another certificate is refused', () => expectRefused(signed, keys.other));

  toolIt('a one-byte change after signing is refused (in a section, and in the trailing symbol table)', () => {
    const info = parsePe(fs.readFileSync(signed));
    const text = info.sections.find((s) => s.name === '.text')!;
    flipByte(signed, text.pointerToRawData + 100, path.join(tmp, 'sd-boot.tampered.efi'));
    expectRefused(path.join(tmp, 'sd-boot.tampered.efi'), keys.db);
    // systemd-boot keeps a COFF symbol table after its last section: it is covered too
    expect(info.endOfSectionData).toBeLessThan(info.dataDirectories[4].virtualAddress - 8);
    flipByte(signed, info.endOfSectionData + 16, path.join(tmp, 'sd-boot.tampered-trailing.efi'));
    expectRefused(path.join(tmp, 'sd-boot.tampered-trailing.efi'), keys.db);
  });

  toolIt('deterministic: signing again gives the same bytes', async () => {
    const again = path.join(tmp, 'sd-boot.signed-again.efi');
    await signPeFile(SD_BOOT, again, signerFor(keys.db));
    expect(fs.readFileSync(again).equals(fs.readFileSync(signed))).toBe(true);
  });

  toolIt('byte-identical to sbsign given sbsign\'s signing time', async () => {
    const input = path.join(tmp, 'sd-boot.efi');
    fs.copyFileSync(SD_BOOT, input);
    await expectSameAsSbsign(input, keys.db);
  });

  toolIt('an already signed image is refused', async () => {
    await expect(signPeFile(signed, path.join(tmp, 'twice.efi'), signerFor(keys.db))).rejects.toThrow(/already signed/);
  });
});

describe('UKI written by libs/imaging (systemd stub + sections, a 24 MiB .linux streamed in 1 MiB reads)', () => {
  let unsigned: string;
  let signed: string;
  beforeAll(async () => {
    if (!TOOLS) return;
    const linux = path.join(tmp, 'linux.bin');
    fs.writeFileSync(linux, randomBytes(24 * 1048576 + 12345));
    unsigned = path.join(tmp, 'uki.efi');
    await assemblePe({
      stub: STUB,
      sections: [
        { name: '.osrel', data: Buffer.from('NAME=Talos\nID=talos\n') },
        { name: '.cmdline', data: Buffer.from('console=ttyS0 lockdown=confidentiality') },
        { name: '.initrd', data: randomBytes(300001) },
        { name: '.linux', data: { path: linux } },
      ],
      out: unsigned,
      timeDateStamp: 0,
    });
    signed = path.join(tmp, 'uki.signed.efi');
    await signPeFile(unsigned, signed, signerFor(keys.db));
  }, 60_000);

  toolIt('sbverify and osslsigncode accept it; another certificate and a changed .cmdline byte are refused', () => {
    expectVerifies(signed, keys.db);
    expectRefused(signed, keys.other);
    const cmdline = parsePe(fs.readFileSync(signed)).sections.find((s) => s.name === '.cmdline')!;
    flipByte(signed, cmdline.pointerToRawData, path.join(tmp, 'uki.tampered.efi'));
    expectRefused(path.join(tmp, 'uki.tampered.efi'), keys.db);
  });

  toolIt('byte-identical to sbsign given sbsign\'s signing time', () => expectSameAsSbsign(unsigned, keys.db), 60_000);
});

describe('PE32', () => {
  toolIt('a PE32 image signs and verifies, and matches sbsign', async () => {
    const input = path.join(tmp, 'pe32.efi');
    fs.writeFileSync(input, minimalPe32());
    expect(parsePe(fs.readFileSync(input)).pe32plus).toBe(false);
    const signed = path.join(tmp, 'pe32.signed.efi');
    await signPeFile(input, signed, signerFor(keys.db));
    expectVerifies(signed, keys.db);
    expectRefused(signed, keys.other);
    await expectSameAsSbsign(input, keys.db);
  });
});
