/** Extension manifest.yaml (talos-formats §3.2): decoding like go-yaml into the Talos structs, loading, validation. */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, isSeq, Node, parseAllDocuments, Scalar } from 'yaml';

export interface ExtensionMetadata {
  name: string;
  version: string;
  author: string;
  description: string;
  compatibility: { talos: { version: string } };
  /** omitted when empty */
  extraInfo?: string;
}

export interface ExtensionManifest {
  version: string;
  metadata: ExtensionMetadata;
}

const NULLS = new Set(['', '~', 'null', 'Null', 'NULL']);

/** A scalar decoded into a Go string field: plain nulls become "", everything else its text. */
function goString(node: unknown, field: string): string {
  if (node === undefined || node === null) return '';
  if (!isScalar(node)) throw new Error(`yaml: cannot unmarshal ${isMap(node) ? '!!map' : isSeq(node) ? '!!seq' : 'node'} into string field ${field}`);
  const s = node as Scalar;
  const v = s.value === null || s.value === undefined ? '' : String(s.value);
  if (s.type === 'PLAIN' && NULLS.has(v)) return '';
  return v;
}

/** Look up a key in a mapping node; duplicate keys were already rejected by the parser. */
function child(node: unknown, key: string, field: string): unknown {
  if (node === undefined || node === null) return undefined;
  if (isScalar(node) && (node.value === null || (node.type === 'PLAIN' && NULLS.has(String(node.value))))) return undefined;
  if (!isMap(node)) throw new Error(`yaml: cannot unmarshal ${isSeq(node) ? '!!seq' : '!!str'} into struct field ${field}`);
  for (const item of node.items) {
    const k = isScalar(item.key) ? String((item.key as Scalar).value) : undefined;
    if (k === key) return item.value as Node | null;
  }
  return undefined;
}

/** Decode manifest.yaml text (first YAML document), like Talos' `yaml.NewDecoder(f).Decode(&Manifest)`. */
export function parseManifest(text: string): ExtensionManifest {
  const docs = parseAllDocuments(text, { schema: 'failsafe', uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(docs)) throw new Error('EOF'); // an empty stream: go-yaml's decoder reports io.EOF
  const doc = docs[0];
  if (!doc) throw new Error('EOF');
  if (doc.errors.length) throw new Error(`yaml: ${doc.errors[0].message}`);
  const root = doc.contents;
  const md = child(root, 'metadata', 'Manifest.metadata');
  const compat = child(md, 'compatibility', 'Metadata.compatibility');
  const talos = child(compat, 'talos', 'Compatibility.talos');
  const metadata: ExtensionMetadata = {
    name: goString(child(md, 'name', 'name'), 'Metadata.name'),
    version: goString(child(md, 'version', 'version'), 'Metadata.version'),
    author: goString(child(md, 'author', 'author'), 'Metadata.author'),
    description: goString(child(md, 'description', 'description'), 'Metadata.description'),
    compatibility: { talos: { version: goString(child(talos, 'version', 'version'), 'Constraint.version') } },
  };
  const extra = goString(child(md, 'extraInfo', 'extraInfo'), 'Metadata.extraInfo');
  if (extra !== '') metadata.extraInfo = extra;
  return { version: goString(child(root, 'version', 'version'), 'Manifest.version'), metadata };
}

/** Metadata as a plain object in Go struct field order, ready for goyaml (extraInfo omitted when empty). */
export function metadataForYaml(m: ExtensionMetadata): Record<string, unknown> {
  const o: Record<string, unknown> = {
    name: m.name,
    version: m.version,
    author: m.author,
    description: m.description,
    compatibility: { talos: { version: m.compatibility.talos.version } },
  };
  if (m.extraInfo) o.extraInfo = m.extraInfo;
  return o;
}

export interface LoadedExtension {
  dir: string;
  rootfs: string;
  manifest: ExtensionManifest;
}

/** Talos `extensions.Load`: only manifest.yaml and rootfs at the top, both required, manifest version v1alpha1. */
export async function loadExtension(dir: string): Promise<LoadedExtension> {
  let manifest: ExtensionManifest | undefined;
  let rootfs: string | undefined;
  for (const name of (await fsp.readdir(dir)).sort()) {
    if (name === 'manifest.yaml') {
      const text = await fsp.readFile(path.join(dir, name), 'utf8');
      manifest = parseManifest(text);
      if (manifest.version !== 'v1alpha1') throw new Error(`unsupported manifest version: ${JSON.stringify(manifest.version)}`);
    } else if (name === 'rootfs') {
      const st = await fsp.lstat(path.join(dir, name));
      if (!st.isDirectory()) throw new Error(`extension rootfs ${path.join(dir, name)} is not a directory`);
      rootfs = path.join(dir, name);
    } else {
      throw new Error(`unexpected file ${JSON.stringify(name)}`);
    }
  }
  if (!manifest) throw new Error('extension manifest is missing');
  if (!rootfs) throw new Error('extension rootfs is missing');
  return { dir, rootfs, manifest };
}
