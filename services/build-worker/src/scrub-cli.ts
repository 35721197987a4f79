/**
 * `npm run scrub`: verifies every stored asset now, in this process, against the storage the factory is configured
 * with (the same environment as the services: FACTORY_DATA_DIR or S3_*). Needs the signing service's PUBLIC key only:
 * `--public-key <pem file>`, or `--factory <url>` to read it from the factory's `/oci/cosign/signing-key.pub`
 * (default http://localhost:$PORT). Corrupted assets are quarantined; the next request for one rebuilds it.
 * Exit status: 0 all good, 1 corruption found, 2 the scrub could not run. `--json` prints the report on stdout.
 */
import { createPublicKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { scrubAssets } from '@factory/asset';
import { EnvReader, readStorage } from '@factory/config';
import { createObjectStore } from '@factory/storage';
import { summary } from './scrub';

const USAGE = 'usage: npm run scrub -- [--public-key <pem file> | --factory <url>] [--json]';

async function publicKey(args: Map<string, string>, port: number): Promise<KeyObject> {
  const file = args.get('--public-key');
  if (file) return createPublicKey(readFileSync(file));
  const base = (args.get('--factory') ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const res = await fetch(`${base}/oci/cosign/signing-key.pub`, { signal: AbortSignal.timeout(30_000) });
  if (res.status !== 200) throw new Error(`${base}/oci/cosign/signing-key.pub answered ${res.status}`);
  return createPublicKey(await res.text());
}

function parseArgs(argv: string[]): { args: Map<string, string>; json: boolean } {
  const args = new Map<string, string>();
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if ((a === '--public-key' || a === '--factory') && argv[i + 1] !== undefined) args.set(a, argv[++i]);
    else throw new Error(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
  }
  return { args, json };
}

async function main(): Promise<number> {
  const { args, json } = parseArgs(process.argv.slice(2));
  const env = new EnvReader();
  const storage = readStorage(env);
  const port = env.port('PORT', 8080);
  env.done();
  const report = await scrubAssets(createObjectStore(storage), await publicKey(args, port));
  process.stderr.write(`${summary(report)}\n`);
  for (const p of report.problems) process.stderr.write(`  ${p.key}: ${p.problem}: ${p.detail}\n`);
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return report.corrupt ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`scrub failed: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
