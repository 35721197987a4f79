#!/usr/bin/env node
/**
 * demo-releases CLI
 *   build   --out DIR [--cache DIR] [--force] [--amd64-only]   build (or reuse) the demo releases in DIR
 *   publish --out DIR [--force]                                 push DIR/oci/* into DIR/registry (skopeo, digests kept)
 *   serve   --out DIR [--port N]                                serve DIR/registry until interrupted
 *   all     --out DIR                                           build + publish
 */
import path from 'node:path';
import { buildDemoReleases } from './build';
import { publishDemoReleases, startDemoRegistry } from './registry';

function usage(): never {
  process.stderr.write(
    [
      'usage: demo-releases <command> --out DIR [options]',
      '  build   --out DIR [--cache DIR] [--force] [--amd64-only]',
      '  publish --out DIR [--force]',
      '  all     --out DIR [--cache DIR] [--force]      (build + publish)',
      '  serve   --out DIR [--port N]                   (serve DIR/registry until SIGINT/SIGTERM)',
      'env: DEMO_CACHE_DIR (default ~/.cache/talos-factory-demo) caches Debian packages and kernel kits',
      '',
    ].join('\n'),
  );
  process.exit(2);
}

function parseArgs(argv: string[]): { cmd: string; flags: Record<string, string | boolean> } {
  const [cmd, ...rest] = argv;
  if (!cmd) usage();
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) usage();
    const eq = a.indexOf('=');
    if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
    else if (['out', 'cache', 'port'].includes(a.slice(2))) flags[a.slice(2)] = rest[++i] ?? usage();
    else flags[a.slice(2)] = true;
  }
  return { cmd, flags };
}

async function main(): Promise<void> {
  const { cmd, flags } = parseArgs(process.argv.slice(2));
  const out = typeof flags.out === 'string' ? path.resolve(flags.out) : usage();
  const log = (l: string) => process.stderr.write(l + '\n');
  const t0 = Date.now();
  const build = async () => {
    const r = await buildDemoReleases({
      outDir: out,
      cacheDir: typeof flags.cache === 'string' ? flags.cache : undefined,
      force: flags.force === true,
      arches: flags['amd64-only'] ? ['amd64'] : undefined,
      log,
    });
    log(`[demo-releases] versions ${r.versions.map((v) => v.version).join(', ')}; arches ${r.arches.join(', ')}; kernel ${Object.values(r.kernel).map((k) => k?.version).join(', ')}`);
  };
  switch (cmd) {
    case 'build':
      await build();
      break;
    case 'publish':
      await publishDemoReleases(out, { force: flags.force === true, log });
      break;
    case 'all':
      await build();
      await publishDemoReleases(out, { force: flags.force === true, log });
      break;
    case 'serve': {
      const reg = await startDemoRegistry(out, { port: typeof flags.port === 'string' ? Number(flags.port) : undefined });
      process.stdout.write(`${reg.host}\n`);
      log(`[demo-releases] serving ${reg.storageDir} on http://${reg.host} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        const stop = () => void reg.stop().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      return;
    }
    default:
      usage();
  }
  log(`[demo-releases] ${cmd} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e: unknown) => {
  process.stderr.write(`[demo-releases] error: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
