/**
 * The commands of `talos-factory`: each reads its arguments, calls the client, and prints text for people or, with
 * `--json`, JSON for scripts on stdout. Progress goes to stderr, on a terminal only.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Build, FactoryClient } from '@factory/client';
import type { CommandSpec } from './args';
import { downloadAsset } from './download';
import { EXIT, exitCodeForStatus, usageError } from './exit';
import { followBuilds } from './follow';
import { ProgressLines, ProgressStream } from './progress';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: ProgressStream;
  stdin: AsyncIterable<Buffer | string>;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** fetch for the client (tests); default the global one */
  fetch?: typeof fetch;
}

export interface CommandContext {
  io: CliIo;
  client: FactoryClient;
  json: boolean;
  args: string[];
  options: Map<string, string>;
  /** progress lines on stderr, drawn only when it is a terminal */
  progress: ProgressLines;
}

export interface Command extends CommandSpec {
  run(ctx: CommandContext): Promise<number>;
}

const print = (ctx: CommandContext, text: string) => ctx.io.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
const printJson = (ctx: CommandContext, value: unknown) => ctx.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function readInput(ctx: CommandContext, file: string): Promise<string> {
  if (file === '-') {
    let text = '';
    for await (const chunk of ctx.io.stdin) text += chunk.toString();
    return text;
  }
  try {
    return await fsp.readFile(path.resolve(ctx.io.cwd, file), 'utf8');
  } catch (err) {
    throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function columns(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i].length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n');
}

function buildRow(b: Build): string[] {
  const state = b.state === 'failed' ? `failed: ${b.error?.message ?? 'unknown error'}` : b.state;
  return [b.id, b.version, b.asset, state, b.state === 'done' ? (b.sha256 ?? '') : b.state === 'queued' ? `position ${(b.queuePosition ?? 0) + 1}` : (b.stage ?? '')];
}

/** The exit code of a set of finished builds: that of the first failure's status, else 0. */
function buildsExitCode(builds: Build[]): number {
  const failed = builds.find((b) => b.state === 'failed');
  return failed ? exitCodeForStatus(failed.error?.status ?? 500) : EXIT.ok;
}

export const COMMANDS: Command[] = [
  {
    words: ['schematic', 'create'],
    // -f is required; shown with the arguments so the command list says so
    args: '-f <schematic.yaml>',
    minArgs: 0,
    maxArgs: 0,
    options: [{ name: 'file', short: 'f', value: '<file>', help: 'the schematic (YAML or JSON; - reads stdin)' }],
    summary: 'upload a schematic, print its ID',
    async run(ctx) {
      const file = ctx.options.get('file');
      if (!file) throw usageError('schematic create: -f <schematic.yaml> is required');
      const created = await ctx.client.createSchematic(await readInput(ctx, file));
      if (ctx.json) printJson(ctx, created);
      else print(ctx, created.id);
      return EXIT.ok;
    },
  },
  {
    words: ['schematic', 'get'],
    args: '<id>',
    minArgs: 1,
    maxArgs: 1,
    options: [],
    summary: 'print a schematic (canonical YAML)',
    async run(ctx) {
      const yaml = await ctx.client.getSchematic(ctx.args[0]);
      if (ctx.json) printJson(ctx, { id: ctx.args[0], schematic: yaml });
      else print(ctx, yaml);
      return EXIT.ok;
    },
  },
  {
    words: ['versions'],
    args: '',
    minArgs: 0,
    maxArgs: 0,
    options: [],
    summary: 'list the Talos versions the factory offers',
    async run(ctx) {
      const versions = await ctx.client.versions();
      if (ctx.json) printJson(ctx, versions);
      else print(ctx, versions.join('\n'));
      return EXIT.ok;
    },
  },
  {
    words: ['extensions'],
    args: '<version>',
    minArgs: 1,
    maxArgs: 1,
    options: [],
    summary: 'list the official system extensions of a version',
    async run(ctx) {
      const extensions = await ctx.client.extensions(ctx.args[0]);
      if (ctx.json) printJson(ctx, extensions);
      else print(ctx, columns(extensions.map((e) => [e.name, e.ref, e.description])));
      return EXIT.ok;
    },
  },
  {
    words: ['overlays'],
    args: '<version>',
    minArgs: 1,
    maxArgs: 1,
    options: [],
    summary: 'list the official overlays of a version',
    async run(ctx) {
      const overlays = await ctx.client.overlays(ctx.args[0]);
      if (ctx.json) printJson(ctx, overlays);
      else print(ctx, columns(overlays.map((o) => [o.name, o.image, o.ref])));
      return EXIT.ok;
    },
  },
  {
    words: ['build'],
    args: '<id> <version> <asset>...',
    minArgs: 3,
    maxArgs: Infinity,
    options: [{ name: 'wait', help: 'wait until every build is done, with progress bars on a terminal' }],
    summary: 'start builds of assets (POST /builds)',
    async run(ctx) {
      const [schematic, version, ...assets] = ctx.args;
      let builds = await ctx.client.createBuilds({ schematic, version, assets });
      if (ctx.options.has('wait')) builds = await followBuilds(ctx.client, builds, ctx.progress);
      if (ctx.json) printJson(ctx, { builds });
      else print(ctx, columns(builds.map(buildRow)));
      return ctx.options.has('wait') ? buildsExitCode(builds) : EXIT.ok;
    },
  },
  {
    words: ['download'],
    args: '<id> <version> <asset>',
    minArgs: 3,
    maxArgs: 3,
    options: [{ name: 'output', short: 'o', value: '<file>', help: 'where to write (default: the asset name in the current directory)' }],
    summary: 'build if needed, download (resuming a .part file), verify the sha256',
    async run(ctx) {
      const [schematic, version, asset] = ctx.args;
      const output = ctx.options.get('output') || path.basename(asset);
      const file = path.resolve(ctx.io.cwd, output);
      const result = await downloadAsset(ctx.client, { schematic, version, asset, file }, ctx.progress, (line) => ctx.io.stderr.write(`talos-factory: ${line}\n`));
      if (ctx.json) printJson(ctx, { file: result.file, size: result.size, sha256: result.sha256, verified: true, resumedFrom: result.resumedFrom, build: result.build?.id });
      else print(ctx, result.file);
      return EXIT.ok;
    },
  },
  {
    words: ['pxe'],
    args: '<id> <version> <platform-arch>',
    minArgs: 3,
    maxArgs: 3,
    options: [{ name: 'script', help: 'print the iPXE script instead of its URL' }],
    summary: 'print the PXE (iPXE chain) URL, e.g. for metal-amd64',
    async run(ctx) {
      const [schematic, version, platformArch] = ctx.args;
      const url = ctx.client.pxeUrl(schematic, version, platformArch);
      const script = ctx.options.has('script') ? await ctx.client.pxeScript(schematic, version, platformArch) : undefined;
      if (ctx.json) printJson(ctx, script === undefined ? { url } : { url, script });
      else print(ctx, script ?? url);
      return EXIT.ok;
    },
  },
  {
    words: ['installer-ref'],
    args: '<id> <version>',
    minArgs: 2,
    maxArgs: 2,
    options: [
      { name: 'platform', value: '<platform>', help: 'Talos platform (default metal)' },
      { name: 'secureboot', help: 'the Secure Boot installer' },
    ],
    summary: 'print the installer image reference (install/upgrade)',
    async run(ctx) {
      const [schematic, version] = ctx.args;
      const ref = ctx.client.installerRef(schematic, version, { platform: ctx.options.get('platform') || undefined, secureboot: ctx.options.has('secureboot') });
      if (ctx.json) printJson(ctx, { ref });
      else print(ctx, ref);
      return EXIT.ok;
    },
  },
];
