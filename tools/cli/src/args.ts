/**
 * Command-line parsing without a dependency: options anywhere (`--name value`, `--name=value`, `-x value`, flags
 * alone), `--` ends them, the leading words name the command. Anything not declared is a usage error.
 */
import { usageError } from './exit';

export interface OptionSpec {
  /** long name without `--` */
  name: string;
  short?: string;
  /** placeholder of its value; absent for a flag */
  value?: string;
  help: string;
}

export interface CommandSpec {
  /** command words, e.g. ['schematic', 'create'] */
  words: string[];
  /** positional arguments as shown in usage, e.g. '<id> <version> <asset>...' */
  args: string;
  minArgs: number;
  maxArgs: number;
  options: OptionSpec[];
  summary: string;
}

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'url', value: '<url>', help: 'factory base URL (default $TALOS_FACTORY_URL, else http://localhost:8080)' },
  { name: 'json', help: 'print JSON for scripts instead of text' },
  { name: 'help', short: 'h', help: 'show help' },
];

export interface ParsedCommandLine {
  /** undefined: no command words given */
  command?: CommandSpec;
  args: string[];
  /** option name → value ('' for flags) */
  options: Map<string, string>;
}

export function parseCommandLine(argv: string[], commands: CommandSpec[]): ParsedCommandLine {
  const words: string[] = [];
  const raw: { name: string; value?: string; token: string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (token.startsWith('--') && token.length > 2) {
      const eq = token.indexOf('=');
      raw.push(eq < 0 ? { name: token.slice(2), token } : { name: token.slice(2, eq), value: token.slice(eq + 1), token });
    } else if (token.startsWith('-') && token.length === 2 && token !== '-') {
      raw.push({ name: token.slice(1), token });
    } else {
      words.push(token);
      continue;
    }
    // the value of an option that takes one is the next argument (looked up once the command is known)
    const last = raw[raw.length - 1];
    if (last.value === undefined && takesValue(last.name, commands)) {
      if (i + 1 >= argv.length) throw usageError(`option ${token} needs a value`);
      last.value = argv[++i];
    }
  }

  const command = [...commands].sort((a, b) => b.words.length - a.words.length).find((c) => c.words.every((w, i) => words[i] === w));
  const options = new Map<string, string>();
  const allowed = [...GLOBAL_OPTIONS, ...(command?.options ?? [])];
  for (const o of raw) {
    const spec = allowed.find((s) => s.name === o.name || s.short === o.name);
    if (!spec) throw usageError(`unknown option ${o.token}${command ? ` for ${command.words.join(' ')}` : ''}`);
    if (!spec.value && o.value !== undefined && o.token.includes('=')) throw usageError(`option --${spec.name} takes no value`);
    options.set(spec.name, spec.value ? (o.value ?? '') : '');
  }
  if (!command) {
    if (words.length && !options.has('help')) throw usageError(`unknown command "${words.join(' ')}"`);
    return { args: [], options };
  }
  const args = words.slice(command.words.length);
  if (!options.has('help')) {
    if (args.length < command.minArgs) throw usageError(`${command.words.join(' ')}: missing arguments: ${command.args}`);
    if (args.length > command.maxArgs) throw usageError(`${command.words.join(' ')}: too many arguments (usage: ${command.words.join(' ')} ${command.args})`);
  }
  return { command, args, options };
}

/** Whether any command (or the globals) declares this name as an option with a value. */
function takesValue(name: string, commands: CommandSpec[]): boolean {
  return [...GLOBAL_OPTIONS, ...commands.flatMap((c) => c.options)].some((s) => (s.name === name || s.short === name) && !!s.value);
}

export function usageLine(c: CommandSpec): string {
  const opts = c.options.map((o) => (o.value ? `[--${o.name} ${o.value}]` : `[--${o.name}]`)).join(' ');
  return ['talos-factory', ...c.words, c.args, opts].filter(Boolean).join(' ');
}

export function optionHelp(options: OptionSpec[]): string {
  const left = options.map((o) => `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.value ? ` ${o.value}` : ''}`);
  const width = Math.max(...left.map((l) => l.length));
  return options.map((o, i) => `  ${left[i].padEnd(width)}  ${o.help}`).join('\n');
}
