/**
 * Completion of a growing GPT image (libs/imaging/src/iso/xorriso.ts): the ISO builder stops waiting for xorriso as soon
 * as the image's own GPT says it is whole. Images made by sgdisk, then cut, grown and damaged.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GPT_HEAD_BYTES, gptDeclaredSize, gptImageState } from '../src/iso/xorriso';

let tmp: string;
let image: Buffer;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'gpt-state-'));
  const f = path.join(tmp, 'disk.img');
  writeFileSync(f, Buffer.alloc(4 * 1024 * 1024));
  execFileSync('sgdisk', ['-n', '1:2048:+1M', '-t', '1:ef00', f], { stdio: 'ignore' });
  image = readFileSync(f);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function variant(name: string, edit: (b: Buffer) => Buffer): string {
  const f = path.join(tmp, name);
  writeFileSync(f, edit(Buffer.from(image)));
  return f;
}

test('a whole image is complete', async () => {
  expect(await gptImageState(variant('whole', (b) => b))).toBe('complete');
});

test('an image still being written is incomplete: short, empty, or missing', async () => {
  expect(await gptImageState(variant('short', (b) => b.subarray(0, b.length - 512)))).toBe('incomplete');
  expect(await gptImageState(variant('header-only', (b) => b.subarray(0, 34 * 512)))).toBe('incomplete');
  expect(await gptImageState(variant('empty', () => Buffer.alloc(0)))).toBe('incomplete');
  expect(await gptImageState(path.join(tmp, 'absent'))).toBe('incomplete');
  const longer = variant('longer', (b) => b);
  appendFileSync(longer, Buffer.alloc(512));
  expect(await gptImageState(longer)).toBe('incomplete');
});

test('a damaged backup header or entry array is incomplete', async () => {
  expect(await gptImageState(variant('backup-zeroed', (b) => Buffer.concat([b.subarray(0, b.length - 512), Buffer.alloc(512)])))).toBe('incomplete');
  const entries = variant('entries', (b) => {
    b[b.length - 33 * 512 + 40] ^= 0xff; // inside the backup partition entries
    return b;
  });
  expect(await gptImageState(entries)).toBe('incomplete');
});

test('an image without a GPT says so (the caller then waits for the tool to exit)', async () => {
  expect(await gptImageState(variant('no-gpt', (b) => Buffer.alloc(b.length)))).toBe('no-gpt');
});

test('the primary header alone declares the final size (what lets an upload start while the image is written)', () => {
  expect(gptDeclaredSize(image.subarray(0, GPT_HEAD_BYTES))).toBe(image.length);
  expect(gptDeclaredSize(image)).toBe(image.length);
  expect(gptDeclaredSize(image.subarray(0, GPT_HEAD_BYTES - 1))).toBeUndefined();
  expect(gptDeclaredSize(Buffer.alloc(GPT_HEAD_BYTES))).toBeUndefined();
  const damaged = Buffer.from(image.subarray(0, GPT_HEAD_BYTES));
  damaged[512 + 32] ^= 0x01; // the backup LBA, outside what the header CRC vouches for: refused
  expect(gptDeclaredSize(damaged)).toBeUndefined();
});
