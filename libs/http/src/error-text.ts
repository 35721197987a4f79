/**
 * Plain-text error bodies are one line (message + newline): what clients and the OpenAPI document expect. Messages
 * quote what a client sent (a digest, an image name, a path), which may hold control characters once
 * percent-decoded; those are written as Go-style escapes (`\n`, `\t`, `\x00`), so one request can never add lines.
 */
export function errorTextLine(message: string): string {
  // eslint-disable-next-line no-control-regex
  return `${message.replace(/[\x00-\x1f\x7f]/g, escapeControl)}\n`;
}

function escapeControl(c: string): string {
  switch (c) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    default:
      return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  }
}
