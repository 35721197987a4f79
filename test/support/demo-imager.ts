/**
 * The demo releases' imager boot files (`usr/install/<arch>/…` of `siderolabs/imager:<version>`), written out as
 * files for tests that build from them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readImageFiles, readReleases } from '../../tools/demo-releases/src';

/** The demo releases the tests read (built by `npm test` before jest starts). */
export const DEMO_DIR = process.env.FACTORY_TEST_DEMO_DIR ?? path.resolve(__dirname, '../../.cache/demo-releases');

export interface DemoImagerFiles {
  kernel: string;
  initramfs: string;
  stub: string;
  sdBoot: string;
}

/** Whether the demo releases were built with arm64 inputs (releases.json `arches`). */
export function demoHasArm64(demoDir = DEMO_DIR): boolean {
  return readReleases(demoDir)?.arches.includes('arm64') ?? false;
}

/** Writes the imager's kernel, initramfs, systemd-stub and systemd-boot for version and arch into `dir`. */
export function extractDemoImager(version: string, arch: 'amd64' | 'arm64', dir: string, demoDir = DEMO_DIR): DemoImagerFiles {
  const img = readImageFiles(path.join(demoDir, 'oci/siderolabs/imager'), version, arch);
  fs.mkdirSync(dir, { recursive: true });
  const get = (name: string) => {
    const e = img.get(`usr/install/${arch}/${name}`);
    if (!e) throw new Error(`demo imager ${version} ${arch} lacks ${name}`);
    const p = path.join(dir, name);
    fs.writeFileSync(p, e.data);
    return p;
  };
  return { kernel: get('vmlinuz'), initramfs: get('initramfs.xz'), stub: get('systemd-stub.efi'), sdBoot: get('systemd-boot.efi') };
}

/** `len` bytes of a file at `offset`. */
export function readRange(file: string, offset: bigint | number, len: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(len);
    fs.readSync(fd, b, 0, len, Number(offset));
    return b;
  } finally {
    fs.closeSync(fd);
  }
}
