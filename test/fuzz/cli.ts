/** Command-line flags of the fuzz and soak scripts: `--name value` or `--name=value`, numbers only. */
export function numberFlag(argv: string[], name: string, def: number): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = a === `--${name}` ? argv[i + 1] : a.startsWith(`--${name}=`) ? a.slice(name.length + 3) : undefined;
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${JSON.stringify(v)}`);
    return n;
  }
  return def;
}
