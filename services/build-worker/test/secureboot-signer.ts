/**
 * Secure Boot recipe tests' signing side: throwaway keys for the signing service's real Secure Boot handlers, called
 * in-process behind the build-worker's queue adapter (with a JSON round trip, as over Redis), and a build context
 * whose imager is the demo release's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pcrPublicKeyPem } from '@factory/pcr';
import type { JobName, PayloadOf, ResultOf } from '@factory/queue';
import { secureBootHandlers } from '../../signing/src/secureboot-handlers';
import { secureBootKeyHandlers } from '../../signing/src/pcr-handlers';
import type { SecureBootKeys } from '../../signing/src/secureboot-keys';
import { extractDemoImager } from '../../../test/support/demo-imager';
import { makeTestKeyPair, TestKeyPair } from '../../../test/support/secureboot-keys';
import type { BuildContext } from '../src/recipes';
import { queueSecureBootSigner } from '../src/secureboot';

/** A PKCS#1 signing key with its certificate (also as files, for sbverify) and a PCR key, under `dir`. */
export function makeSecureBootTestKeys(dir: string): { signing: TestKeyPair; keys: SecureBootKeys } {
  const signing = makeTestKeyPair(dir, 'signing', { pkcs1: true });
  const pcrKeyPath = path.join(dir, 'pcr.key');
  execFileSync('openssl', ['genrsa', '-traditional', '-out', pcrKeyPath, '2048'], { stdio: 'ignore' });
  const pcrKeyPem = fs.readFileSync(pcrKeyPath, 'utf8');
  return { signing, keys: { signing: { keyPem: signing.keyPem, certPem: signing.certPem }, pcr: { keyPem: pcrKeyPem, publicPem: pcrPublicKeyPem(pcrKeyPem) } } };
}

/** The signing service's handlers as the queue would call them; each job name is pushed to `calls`. */
export function signingJobs(k: SecureBootKeys, calls: string[] = []) {
  const handlers = { ...secureBootHandlers(k), ...secureBootKeyHandlers({ keys: k, metrics: { signed: () => undefined } as never }) };
  return {
    call: async <K extends JobName>(name: K, payload: PayloadOf<K>): Promise<ResultOf<K>> => {
      calls.push(name);
      const handler = handlers[name as keyof typeof handlers] as unknown as (p: unknown) => Promise<ResultOf<K>>;
      return JSON.parse(JSON.stringify(await handler(JSON.parse(JSON.stringify(payload)))));
    },
  };
}

/** A build context with the demo imager of `version` (extracted under `dir`) and, with keys, the Secure Boot signer. */
export function secureBootBuildContext(dir: string, version: string, k: SecureBootKeys | undefined, calls?: string[]): BuildContext {
  return {
    catalog: {} as BuildContext['catalog'],
    oci: {} as BuildContext['oci'],
    externalUrl: 'https://factory.example',
    progress: () => undefined,
    inputs: { imager: async () => extractDemoImager(version, 'amd64', path.join(dir, 'demo')) } as unknown as BuildContext['inputs'],
    ...(k ? { secureBoot: queueSecureBootSigner(signingJobs(k, calls), 10_000) } : {}),
  };
}

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** sbverify and osslsigncode both accept the PE file's Authenticode signature with the certificate at `certPath`. */
export function expectSignedBy(file: string, certPath: string): void {
  const sb = run('sbverify', ['--cert', certPath, file]);
  expect(sb.out).toContain('Signature verification OK');
  expect(sb.status).toBe(0);
  const oss = run('osslsigncode', ['verify', '-CAfile', certPath, '-in', file]);
  expect(oss.out).toMatch(/Signature verification: ok/);
  expect(oss.status).toBe(0);
}
