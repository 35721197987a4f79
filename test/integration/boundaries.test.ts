/**
 * Import boundaries of the workspace, read from the sources (libs/*, services/*, tools/*: every .ts file under src/):
 *
 * - a service never imports another service; a lib never imports a service or a tool; a tool imports libs only;
 * - a relative import never leaves its package (another package is imported by its `@factory/<name>`);
 * - every `@factory/<name>` import is declared in the importing package's package.json dependencies and its
 *   tsconfig.json references (else a fresh `pnpm install` / `tsc -b` breaks while jest's path mapping hides it);
 * - the package dependency graph has no cycles.
 *
 * Each failure names the file and the edge that broke the rule. The checker itself is first run on a small made-up
 * workspace with one violation of each kind, so that a checker that finds nothing cannot pass unnoticed.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const KINDS = ['libs', 'services', 'tools'] as const;
type Kind = (typeof KINDS)[number];

interface Pkg {
  kind: Kind;
  /** folder relative to the workspace root, e.g. `libs/oci` */
  dir: string;
  name: string;
  dependencies: Set<string>;
  /** tsconfig references, as folders relative to the workspace root */
  references: Set<string>;
}

interface SourceFile {
  /** relative to the workspace root */
  file: string;
  text: string;
}

/** What one import names, resolved to a package (or to nothing in the workspace). */
interface ImportEdge {
  from: Pkg;
  file: string;
  specifier: string;
  /** the imported package, when the specifier is a workspace package or a relative path into one */
  to?: Pkg;
  relative: boolean;
}

/** Module specifiers of static imports/exports, `import x = require()`, `require()`, `import()` and `import('x').T` types. */
function moduleSpecifiers(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      out.push(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1 && ts.isStringLiteralLike(node.arguments[0])) {
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isImport || isRequire) out.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function packageOfPath(pkgs: Pkg[], relPath: string): Pkg | undefined {
  return pkgs.find((p) => relPath === p.dir || relPath.startsWith(`${p.dir}/`));
}

function resolveEdges(pkgs: Pkg[], files: SourceFile[]): ImportEdge[] {
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const edges: ImportEdge[] = [];
  for (const f of files) {
    const from = packageOfPath(pkgs, f.file);
    if (!from) throw new Error(`${f.file} is in no package`);
    for (const specifier of moduleSpecifiers(f.file, f.text)) {
      if (specifier.startsWith('.')) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f.file), specifier));
        const to = packageOfPath(pkgs, target);
        if (to !== from) edges.push({ from, file: f.file, specifier, to, relative: true });
      } else if (specifier.startsWith('@factory/')) {
        const name = specifier.split('/').slice(0, 2).join('/');
        edges.push({ from, file: f.file, specifier, to: byName.get(name), relative: false });
      }
    }
  }
  return edges;
}

/** Every cycle of the package graph, each as `a -> b -> ... -> a` (one per strongly connected component). */
function cycles(pkgs: Pkg[], edges: ImportEdge[]): string[] {
  const next = new Map<string, Set<string>>(pkgs.map((p) => [p.dir, new Set<string>()]));
  for (const e of edges) if (e.to && e.to !== e.from) next.get(e.from.dir)!.add(e.to.dir);
  // Tarjan's strongly connected components
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[] = [];
  const strongConnect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) found.push(describeCycle(component, next));
  };
  for (const p of pkgs) if (!index.has(p.dir)) strongConnect(p.dir);
  return found;
}

/** One concrete cycle through the first member of a strongly connected component. */
function describeCycle(component: string[], next: Map<string, Set<string>>): string {
  const members = new Set(component);
  const start = [...members].sort()[0];
  const pathTo = new Map<string, string[]>([[start, [start]]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of next.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) return [...pathTo.get(v)!, start].join(' -> ');
      if (!pathTo.has(w)) {
        pathTo.set(w, [...pathTo.get(v)!, w]);
        queue.push(w);
      }
    }
  }
  return component.join(', ');
}

/** Every broken rule, one line each, naming the file and the edge. */
function boundaryViolations(pkgs: Pkg[], files: SourceFile[]): string[] {
  const edges = resolveEdges(pkgs, files);
  const out: string[] = [];
  for (const e of edges) {
    const edge = `${e.file}: ${e.from.dir} -> ${e.to?.dir ?? '?'} (${JSON.stringify(e.specifier)})`;
    if (!e.to) {
      out.push(`${edge}: no workspace package has that name or folder`);
      continue;
    }
    if (e.relative) out.push(`${edge}: a relative import leaves its package; import ${e.to.name} instead`);
    if (e.from.kind === 'services' && e.to.kind === 'services') out.push(`${edge}: a service imports another service`);
    if (e.from.kind === 'libs' && e.to.kind !== 'libs') out.push(`${edge}: a lib imports a ${e.to.kind === 'services' ? 'service' : 'tool'}`);
    if (e.from.kind === 'tools' && e.to.kind !== 'libs') out.push(`${edge}: a tool imports a ${e.to.kind === 'services' ? 'service' : 'tool'}`);
    if (!e.relative) {
      if (!e.from.dependencies.has(e.to.name)) out.push(`${edge}: ${e.to.name} is not in ${e.from.dir}/package.json dependencies`);
      if (!e.from.references.has(e.to.dir)) out.push(`${edge}: ${e.to.dir} is not in ${e.from.dir}/tsconfig.json references`);
    }
  }
  for (const c of cycles(pkgs, edges)) out.push(`package dependency cycle: ${c}`);
  return [...new Set(out)];
}

// ------------------------------------------------------------------------------------------- reading the workspace

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

function readPackages(): Pkg[] {
  const pkgs: Pkg[] = [];
  for (const kind of KINDS) {
    for (const entry of fs.readdirSync(path.join(ROOT, kind), { withFileTypes: true })) {
      const dir = `${kind}/${entry.name}`;
      if (!entry.isDirectory() || !fs.existsSync(path.join(ROOT, dir, 'package.json'))) continue;
      const pj = readJson(path.join(ROOT, dir, 'package.json'));
      const tsconfigFile = path.join(ROOT, dir, 'tsconfig.json');
      const tsconfig = fs.existsSync(tsconfigFile) ? readJson(tsconfigFile) : {};
      const refs = (tsconfig.references as Array<{ path: string }> | undefined) ?? [];
      pkgs.push({
        kind,
        dir,
        name: String(pj.name),
        dependencies: new Set(Object.keys({ ...(pj.dependencies as object), ...(pj.devDependencies as object) })),
        references: new Set(refs.map((r) => path.relative(ROOT, path.resolve(ROOT, dir, r.path)).split(path.sep).join('/'))),
      });
    }
  }
  return pkgs;
}

function readSources(pkgs: Pkg[]): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(rel);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        files.push({ file: rel, text: fs.readFileSync(path.join(ROOT, rel), 'utf8') });
      }
    }
  };
  for (const p of pkgs) if (fs.existsSync(path.join(ROOT, p.dir, 'src'))) walk(`${p.dir}/src`);
  return files;
}

// ------------------------------------------------------------------------------------------------------- the tests

describe('the boundary checker', () => {
  const pkg = (kind: Kind, name: string, deps: string[] = [], refs: string[] = []): Pkg => ({
    kind,
    dir: `${kind}/${name}`,
    name: `@factory/${name}`,
    dependencies: new Set(deps.map((d) => `@factory/${d}`)),
    references: new Set(refs),
  });

  test('finds one violation of each kind in a made-up workspace', () => {
    const pkgs = [
      pkg('libs', 'a', ['b', 'gw'], ['libs/b', 'services/gw']),
      pkg('libs', 'b', ['a'], ['libs/a']),
      pkg('libs', 'c'),
      pkg('services', 'gw', ['a', 'api'], ['libs/a', 'services/api']),
      pkg('services', 'api'),
      pkg('tools', 't', ['a'], []),
    ];
    const files: SourceFile[] = [
      { file: 'libs/a/src/index.ts', text: "import { b } from '@factory/b';\nexport type { G } from '@factory/gw';\n" },
      { file: 'libs/b/src/index.ts', text: "import { a } from '@factory/a';\nconst x = require('../../c/src/x');\n" },
      { file: 'libs/c/src/x.ts', text: "const probe = `require('@factory/gw')`; // in a string: not an import\nexport const t: import('@factory/t').T = 1;\n" },
      { file: 'services/gw/src/main.ts', text: "import '@factory/api';\nimport { a } from '@factory/a';\nimport './local';\n" },
      { file: 'tools/t/src/cli.ts', text: "import { a } from '@factory/a';\nawait import('@factory/nope');\n" },
    ];
    expect(boundaryViolations(pkgs, files).sort()).toEqual(
      [
        `libs/a/src/index.ts: libs/a -> services/gw ("@factory/gw"): a lib imports a service`,
        `libs/b/src/index.ts: libs/b -> libs/c ("../../c/src/x"): a relative import leaves its package; import @factory/c instead`,
        `libs/c/src/x.ts: libs/c -> tools/t ("@factory/t"): a lib imports a tool`,
        `libs/c/src/x.ts: libs/c -> tools/t ("@factory/t"): @factory/t is not in libs/c/package.json dependencies`,
        `libs/c/src/x.ts: libs/c -> tools/t ("@factory/t"): tools/t is not in libs/c/tsconfig.json references`,
        `services/gw/src/main.ts: services/gw -> services/api ("@factory/api"): a service imports another service`,
        `tools/t/src/cli.ts: tools/t -> libs/a ("@factory/a"): libs/a is not in tools/t/tsconfig.json references`,
        `tools/t/src/cli.ts: tools/t -> ? ("@factory/nope"): no workspace package has that name or folder`,
        'package dependency cycle: libs/a -> libs/b -> libs/a',
      ].sort(),
    );
  });
});

describe('workspace import boundaries', () => {
  const pkgs = readPackages();
  const files = readSources(pkgs);

  test('the scan sees the workspace', () => {
    for (const kind of KINDS) expect(pkgs.filter((p) => p.kind === kind).length).toBeGreaterThan(0);
    expect(files.length).toBeGreaterThan(100);
    const gateway = files.filter((f) => f.file.startsWith('services/gateway/src/'));
    expect(gateway.flatMap((f) => moduleSpecifiers(f.file, f.text))).toContain('@factory/talos');
  });

  test('services never import each other; libs never import services or tools; tools import libs only; no relative import leaves its package; every @factory import is declared; no cycles', () => {
    const violations = boundaryViolations(pkgs, files);
    if (violations.length) process.stderr.write(`[boundaries] ${violations.length} broken:\n  ${violations.join('\n  ')}\n`);
    expect(violations).toEqual([]);
  });
});
