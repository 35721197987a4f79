/**
 * `talos-factory`: parse the command line, run the command, and turn every failure into one line on stderr and an
 * exit code that says what failed (see exit.ts).
 */
import { FactoryClient } from '@factory/client';
import { GLOBAL_OPTIONS, optionHelp, parseCommandLine, usageLine } from './args';
import { CliIo, Command, COMMANDS } from './commands';
import { CliError, EXIT, EXIT_CODE_HELP, exitCodeOf, messageOf } from './exit';
import { ProgressLines } from './progress';

export const DEFAULT_URL = 'http://localhost:8080';

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => [...c.words, c.args].join(' ').length));
  const commands = COMMANDS.map((c) => `  ${[...c.words, c.args].join(' ').padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: talos-factory [--url <url>] [--json] <command> [arguments]

Commands:
${commands}

Options:
${optionHelp(GLOBAL_OPTIONS)}

${EXIT_CODE_HELP}
`;
}

function commandHelp(c: Command): string {
  return `Usage: ${usageLine(c)}\n\n${c.summary}\n${c.options.length ? `\nOptions:\n${optionHelp(c.options)}\n` : ''}`;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  try {
    const parsed = parseCommandLine(argv, COMMANDS);
    const command = parsed.command as Command | undefined;
    if (parsed.options.has('help')) {
      io.stdout.write(command ? commandHelp(command) : helpText());
      return EXIT.ok;
    }
    if (!command) {
      io.stderr.write(helpText());
      return EXIT.usage;
    }
    const url = parsed.options.get('url') || io.env.TALOS_FACTORY_URL || DEFAULT_URL;
    let client: FactoryClient;
    try {
      client = new FactoryClient({ baseUrl: url, fetch: io.fetch });
    } catch (err) {
      throw new CliError(messageOf(err), EXIT.usage);
    }
    return await command.run({
      io,
      client,
      json: parsed.options.has('json'),
      args: parsed.args,
      options: parsed.options,
      progress: new ProgressLines(io.stderr, io.stderr.isTTY === true),
    });
  } catch (err) {
    const code = exitCodeOf(err);
    io.stderr.write(`talos-factory: ${messageOf(err)}${code === EXIT.usage && !(err instanceof CliError && err.message.startsWith('cannot read')) ? ' (see talos-factory --help)' : ''}\n`);
    return code;
  }
}

/** The process: real streams and environment; the exit code once everything is written. */
export function run(): void {
  // Ctrl-C: end a progress line being drawn before the shell prompt returns; a download's .part stays for the next run
  process.once('SIGINT', () => {
    process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}talos-factory: interrupted\n`);
    process.exit(130);
  });
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`talos-factory: ${messageOf(err)}\n`);
      process.exitCode = EXIT.failure;
    },
  );
}
