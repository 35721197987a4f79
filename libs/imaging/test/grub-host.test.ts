/** A build-worker without GRUB's modules for a platform says so with a typed error (answered as a 501, never retried). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MissingHostSupportError } from '../src/disk';
import { makeEfiGrub } from '../src/disk/grub';

test('GRUB modules missing for the platform: MissingHostSupportError naming the directory', async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'grub-none-'));
  try {
    const err = await makeEfiGrub('arm64', path.join(empty, 'out.efi'), { grubLibDir: empty, env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingHostSupportError);
    expect((err as Error).message).toBe(`GRUB arm64-efi modules are not installed on this build-worker (${path.join(empty, 'arm64-efi')}); they are needed for a GRUB-layout arm64 disk image`);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});
