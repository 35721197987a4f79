/** Tiny YAML emitting helpers for the few fixed document shapes the demo releases write. */

const PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9 _./+@()-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

/** A scalar: plain when unambiguous, else double-quoted (JSON escaping is valid YAML double-quoted style). */
export function scalar(s: string): string {
  if (s !== '' && PLAIN.test(s) && !RESERVED.test(s) && !/^[0-9.+-]+$/.test(s) && !s.endsWith(' ')) return s;
  return JSON.stringify(s);
}

/** Always double-quoted (like the real extension manifests do for versions and constraints). */
export function quoted(s: string): string {
  return JSON.stringify(s);
}

/** A literal block scalar for a multi-line string (text must end with "\n"), indented by `indent` spaces. */
export function block(text: string, indent: number): string {
  const pad = ' '.repeat(indent);
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const chomp = text.endsWith('\n') ? '|' : '|-';
  return `${chomp}\n${body.split('\n').map((l) => (l ? pad + l : '')).join('\n')}\n`;
}
