/**
 * The real cosign binary, for tests that check signatures the way users check them. scripts/setup.sh unpacks
 * Debian trixie's cosign 2.x into .cache/tools/cosign (bookworm has no cosign package); FACTORY_COSIGN_BIN (or the
 * older DEMO_COSIGN_BIN) points at another cosign 2.x binary instead.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
export const BUNDLED_COSIGN = path.join(ROOT, '.cache/tools/cosign/usr/bin/cosign');
const ENV_NAMES = ['FACTORY_COSIGN_BIN', 'DEMO_COSIGN_BIN'] as const;

/** Path of the cosign binary to use, or undefined when there is none (see cosignMissingReason). */
export function cosignBinary(): string | undefined {
  for (const name of ENV_NAMES) {
    const v = process.env[name]?.trim();
    // An explicit choice is used as given: if it is broken, the tests fail instead of being skipped silently.
    if (v) return v;
  }
  try {
    accessSync(BUNDLED_COSIGN, constants.X_OK);
    return BUNDLED_COSIGN;
  } catch {
    return undefined;
  }
}

/** Why cosign tests are skipped (for test titles and logs); undefined when a binary is available. */
export function cosignMissingReason(): string | undefined {
  if (cosignBinary()) return undefined;
  return (
    `no cosign binary: ${BUNDLED_COSIGN} is missing (scripts/setup.sh fetches it from Debian trixie; ` +
    `its output says why that failed) and FACTORY_COSIGN_BIN is not set`
  );
}

export interface CosignResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `cosign verify` of `ref` (host[:port]/repo:tag or @digest) against a PEM public key, fully offline: no
 * transparency log (--insecure-ignore-tlog), no TUF/Rekor/Fulcio lookups (--offline), plain-http registry allowed.
 * Exit code 0 and a JSON array of the verified payloads on stdout mean valid.
 */
export function cosignVerify(ref: string, pubKeyFile: string, opts: { extraArgs?: string[]; timeoutMs?: number } = {}): CosignResult {
  const bin = cosignBinary();
  if (!bin) throw new Error(cosignMissingReason());
  const r = spawnSync(
    bin,
    ['verify', '--key', pubKeyFile, '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--offline=true', ...(opts.extraArgs ?? []), ref],
    { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (r.error) return { code: null, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${String(r.error)}` };
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
