/**
 * go-yaml v4 constructor semantics (Decoder with KnownFields(true), UniqueKeys) for the handful of Go types a
 * schematic is made of. The behaviour follows go-yaml's libyaml/constructor.go rules, notably:
 *
 *  - a null scalar (`~`, `null`, empty) leaves a string/number/bool/struct field untouched and without error, sets
 *    slices/maps/interfaces to nil, and *drops* the element when it appears inside a []string or []MetaValue;
 *  - an int/float/bool scalar decoded into a string field keeps its source text (`[123]` -> "123",
 *    `[0x10]` -> "0x10"), but a timestamp-looking plain scalar (`2024-01-01`) into a string field is an error
 *    ("cannot construct !!timestamp `2024-01-01` into string");
 *  - a quoted string into a number or bool is an error, except the YAML 1.1 spellings y/yes/on/n/no/off (any case
 *    variant go-yaml lists) into bool;
 *  - a mapping where a list is expected (or the reverse) is "cannot construct !!map into []string";
 *  - type errors are collected (document order) and reported together:
 *    `yaml: construct errors: line 3: ...; line 5: ...`; decoding continues after a type error;
 *  - duplicate keys: `mapping key "x" already defined at line N` (the whole mapping is then skipped);
 *  - `<<` merge keys are honoured (explicit keys win over merged ones, earlier merged maps over later ones);
 *  - aliases are expanded, with go-yaml's recursion check and excessive-aliasing ratio check, and within
 *    YAML_LIMITS (nesting, nodes and scalar characters after expansion; see yamlnode.ts).
 */
import { goQuote } from '@factory/gocompat';
import {
  BINARY_TAG,
  BOOL_TAG,
  FLOAT_TAG,
  GoBytesString,
  GoFloat,
  GoTime,
  INT_TAG,
  MAP_TAG,
  MERGE_TAG,
  NULL_TAG,
  ResolveError,
  SEQ_TAG,
  STR_TAG,
  TIMESTAMP_TAG,
  isValidUtf8,
  resolveScalar,
} from '@factory/goyaml';
import { YAML_LIMITS, YamlLimitError, depthLimitMessage } from './yamlnode';
import type { GAlias, GMap, GNode, GScalar, GSeq } from './yamlnode';

// --- Go types ----------------------------------------------------------------------------------------------------

export interface StructField {
  key: string;
  type: GoType;
}

export type GoType =
  | { k: 'struct'; name: string; fields: StructField[] }
  | { k: 'slice'; name: string; elem: GoType }
  | { k: 'string'; name: 'string' }
  | { k: 'uint'; name: 'uint8' | 'uint'; max: bigint }
  | { k: 'bool'; name: 'bool' }
  | { k: 'text'; name: string; zero: unknown; parse: (text: string) => { ok: true; value: unknown } | { ok: false; error: string } }
  | { k: 'map'; name: string; stringKeys: boolean }
  | { k: 'any'; name: 'interface {}' };

export const T_STRING: GoType = { k: 'string', name: 'string' };
export const T_BOOL: GoType = { k: 'bool', name: 'bool' };
export const T_UINT8: GoType = { k: 'uint', name: 'uint8', max: 255n };
export const T_UINT: GoType = { k: 'uint', name: 'uint', max: (1n << 64n) - 1n };
export const T_ANY: GoType = { k: 'any', name: 'interface {}' };
export const T_MAP_STRING_ANY: GoType = { k: 'map', name: 'map[string]interface {}', stringKeys: true };
const T_MAP_ANY_ANY: GoType = { k: 'map', name: 'map[interface {}]interface {}', stringKeys: false };

/** A Go map value (map[string]any or map[any]any) with Go key identity. */
export class GoDynMap {
  private readonly m = new Map<string, [unknown, unknown]>();

  constructor(public readonly stringKeys: boolean) {}

  static keyId(k: unknown): string {
    if (typeof k === 'string') return 's:' + k;
    if (typeof k === 'bigint') return 'i:' + k.toString();
    if (typeof k === 'boolean') return 'b:' + k;
    if (k === null || k === undefined) return 'n:';
    if (k instanceof GoFloat) return 'f:' + (Object.is(k.value, -0) ? '-0' : String(k.value));
    if (k instanceof GoTime) return 't:' + k.toString();
    if (k instanceof GoBytesString) return 'y:' + Buffer.from(k.bytes).toString('hex');
    return 'o:' + String(k);
  }

  has(k: unknown): boolean {
    return this.m.has(GoDynMap.keyId(k));
  }

  set(k: unknown, v: unknown): void {
    const id = GoDynMap.keyId(k);
    const prev = this.m.get(id);
    // Go keeps the original key when overwriting an existing entry.
    this.m.set(id, [prev ? prev[0] : k, v]);
  }

  get size(): number {
    return this.m.size;
  }

  entries(): Array<[unknown, unknown]> {
    return [...this.m.values()];
  }
}

export function zeroValue(t: GoType): unknown {
  switch (t.k) {
    case 'struct': {
      const o: Record<string, unknown> = {};
      for (const f of t.fields) o[f.key] = zeroValue(f.type);
      return o;
    }
    case 'string':
      return '';
    case 'uint':
      return 0n;
    case 'bool':
      return false;
    case 'text':
      return t.zero;
    case 'slice':
    case 'map':
    case 'any':
      return null;
  }
}

// --- errors ------------------------------------------------------------------------------------------------------

export interface ConstructError {
  line: number;
  message: string;
}

/** A failure that aborts decoding (go-yaml panics with these rather than collecting them). */
export class FatalConstructError extends Error {
  constructor(
    message: string,
    public readonly line: number,
  ) {
    super(message);
  }
}

// --- constructor -------------------------------------------------------------------------------------------------

interface Result {
  good: boolean;
  value: unknown;
}

const OLD_TRUE = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON']);
const OLD_FALSE = new Set(['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF']);
const MAX_UINT64_F = 2 ** 64;
const MAX_DUP_ERRORS = 1000;

/** Go's base64.StdEncoding.DecodeString (which skips \r and \n). */
function decodeStdBase64(s: string): Uint8Array | null {
  const t = s.replace(/[\r\n]/g, '');
  if (t.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(t)) return null;
  const b = Buffer.from(t, 'base64');
  // Reject non-canonical trailing bits the way Go's strict padding check would not; Buffer is lenient, so
  // round-trip to make sure the text really is what it claims.
  if (b.toString('base64') !== t) return null;
  return new Uint8Array(b);
}

export class Constructor {
  readonly errors: ConstructError[] = [];
  private constructCount = 0;
  private aliasCount = 0;
  private aliasDepth = 0;
  private depth = 0;
  private expandedChars = 0;
  private readonly activeAliases = new Set<GAlias>();
  private mergedFields: Set<string> | null = null;

  construct(n: GNode, t: GoType, cur: unknown): Result {
    this.constructCount++;
    if (this.aliasDepth > 0) this.aliasCount++;
    this.aliasCheck(n);
    if (this.constructCount > YAML_LIMITS.maxExpandedNodes) {
      throw new YamlLimitError(`document contains excessive aliasing (more than ${YAML_LIMITS.maxExpandedNodes} nodes after alias expansion)`);
    }
    if (n.kind === 'alias') return this.alias(n, t, cur);
    if (n.kind !== 'scalar' && t.k === 'text') {
      this.typeError(n, `cannot construct ${n.tag} into ${t.name} (TextUnmarshaler)`);
      return { good: false, value: cur };
    }
    switch (n.kind) {
      case 'scalar':
        this.expandedChars += n.value.length;
        if (this.expandedChars > YAML_LIMITS.maxExpandedChars) {
          throw new YamlLimitError(
            `document contains excessive aliasing (more than ${YAML_LIMITS.maxExpandedChars} characters of scalars after alias expansion)`,
          );
        }
        return this.scalar(n, t, cur);
      case 'map':
      case 'seq':
        // Collections nest through aliases too (`b: &b [*a]`, `c: &c [*b]`, ...), beyond the text's own nesting.
        if (++this.depth > YAML_LIMITS.maxDepth) throw new YamlLimitError(depthLimitMessage());
        try {
          return n.kind === 'map' ? this.mapping(n, t, cur) : this.sequence(n, t, cur);
        } finally {
          this.depth--;
        }
    }
  }

  private aliasCheck(n: GNode): void {
    const aliasCount = this.aliasCount;
    const constructCount = this.constructCount;
    if (aliasCount <= 100 || constructCount <= 1000) return;
    let allowed: number;
    if (constructCount <= 400000) allowed = 0.99;
    else if (constructCount >= 4000000) allowed = 0.1;
    else allowed = 0.99 - 0.89 * ((constructCount - 400000) / 3600000);
    if (aliasCount / constructCount > allowed) throw new FatalConstructError('document contains excessive aliasing', n.line);
  }

  private alias(n: GAlias, t: GoType, cur: unknown): Result {
    if (this.activeAliases.has(n)) throw new FatalConstructError(`anchor '${n.name}' value contains itself`, n.line);
    this.activeAliases.add(n);
    this.aliasDepth++;
    try {
      return this.construct(n.target, t, cur);
    } finally {
      this.aliasDepth--;
      this.activeAliases.delete(n);
    }
  }

  private typeError(n: GNode, message: string): void {
    this.errors.push({ line: n.line, message });
  }

  /** "cannot construct !!int `256` into uint8" */
  private tagError(n: GNode, tag: string, t: GoType): void {
    if (n.kind !== 'alias' && n.tag !== '') tag = n.tag;
    let shown = '';
    if (tag !== SEQ_TAG && tag !== MAP_TAG) {
      const value = n.kind === 'scalar' ? n.value : n.kind === 'alias' ? n.name : '';
      const bytes = Buffer.from(value, 'utf8');
      shown = bytes.length > 10 ? ' `' + bytes.subarray(0, 7).toString('utf8') + '...`' : ' `' + value + '`';
    }
    this.typeError(n, `cannot construct ${tag}${shown} into ${t.name}`);
  }

  /** Node.ShortTag(). */
  private shortTagOf(n: GNode): string {
    if (n.kind === 'alias') return this.shortTagOf(n.target);
    if (n.kind === 'scalar' && this.indicatedString(n)) return STR_TAG;
    if (n.tag === '' || n.tag === '!') return n.kind === 'map' ? MAP_TAG : n.kind === 'seq' ? SEQ_TAG : STR_TAG;
    return n.tag;
  }

  private indicatedString(n: GScalar): boolean {
    return n.tag === STR_TAG || ((n.tag === '' || n.tag === '!') && n.style !== 'plain');
  }

  private null(t: GoType, cur: unknown): Result {
    if (t.k === 'slice' || t.k === 'map' || t.k === 'any') return { good: true, value: null };
    return { good: false, value: cur };
  }

  private scalar(n: GScalar, t: GoType, cur: unknown): Result {
    let tag: string;
    let resolved: unknown;
    if (this.indicatedString(n)) {
      tag = STR_TAG;
      resolved = n.value;
    } else {
      try {
        const r = resolveScalar(n.value, n.tag);
        tag = r.tag;
        resolved = r.value;
      } catch (e) {
        if (e instanceof ResolveError) throw new FatalConstructError(e.message, 0);
        throw e;
      }
      if (tag === BINARY_TAG) {
        const bytes = decodeStdBase64(resolved as string);
        if (!bytes) throw new FatalConstructError('!!binary value contains invalid base64 data', n.line);
        resolved = isValidUtf8(bytes) ? Buffer.from(bytes).toString('utf8') : new GoBytesString(bytes);
      }
    }
    if (resolved === null) return this.null(t, cur);

    // Exact Go type match.
    if (t.k === 'string' && typeof resolved === 'string') return { good: true, value: resolved };
    if (t.k === 'bool' && typeof resolved === 'boolean') return { good: true, value: resolved };

    if (t.k === 'text') {
      const text = tag === BINARY_TAG ? binaryText(resolved) : n.value;
      const r = t.parse(text);
      if (!r.ok) {
        this.typeError(n, r.error);
        return { good: false, value: cur };
      }
      return { good: true, value: r.value };
    }

    switch (tag) {
      case STR_TAG:
        if (t.k === 'bool') {
          if (OLD_TRUE.has(n.value)) return { good: true, value: true };
          if (OLD_FALSE.has(n.value)) return { good: true, value: false };
        }
        if (t.k === 'any') return { good: true, value: resolved };
        break;
      case INT_TAG: {
        const v = resolved as bigint;
        if (t.k === 'uint' && v >= 0n && v <= t.max) return { good: true, value: v };
        if (t.k === 'string') return { good: true, value: n.value };
        if (t.k === 'any') return { good: true, value: v };
        break;
      }
      case BOOL_TAG:
        if (t.k === 'string') return { good: true, value: n.value };
        if (t.k === 'any') return { good: true, value: resolved };
        break;
      case FLOAT_TAG: {
        const f = resolved as number;
        if (t.k === 'uint' && f >= 0 && f < MAX_UINT64_F && Number.isInteger(f) && BigInt(f) <= t.max) {
          return { good: true, value: BigInt(f) };
        }
        if (t.k === 'string') return { good: true, value: n.value };
        if (t.k === 'any') return { good: true, value: new GoFloat(f) };
        break;
      }
      case TIMESTAMP_TAG:
        if (t.k === 'any') return { good: true, value: resolved };
        break;
      case BINARY_TAG:
        if (t.k === 'string') {
          // A Go string may hold any bytes; this TypeScript model only carries valid UTF-8 text (deviation).
          this.typeError(n, `cannot construct ${BINARY_TAG} into ${t.name}: data is not valid UTF-8`);
          return { good: false, value: cur };
        }
        if (t.k === 'any') return { good: true, value: resolved };
        break;
      case MERGE_TAG:
        return { good: false, value: cur };
      case NULL_TAG:
        return this.null(t, cur);
      default:
        // Unknown (custom) tag: only an interface{} takes it, as its string value.
        if (t.k === 'any') return { good: true, value: resolved };
    }
    this.tagError(n, tag, t);
    return { good: false, value: cur };
  }

  private sequence(n: GSeq, t: GoType, cur: unknown): Result {
    let elem: GoType;
    if (t.k === 'slice') elem = t.elem;
    else if (t.k === 'any') elem = T_ANY;
    else {
      this.tagError(n, SEQ_TAG, t);
      return { good: false, value: cur };
    }
    const out: unknown[] = [];
    for (const item of n.items) {
      const r = this.construct(item, elem, zeroValue(elem));
      if (r.good) out.push(r.value);
    }
    return { good: true, value: out };
  }

  private isMerge(n: GNode): boolean {
    return n.kind === 'scalar' && n.tag === MERGE_TAG;
  }

  private mapping(n: GMap, t: GoType, cur: unknown): Result {
    // UniqueKeys: compare raw key nodes (kind + value).
    // (go-yaml compares every pair of keys; grouping gives the same errors in the same (i, j) order without the
    // quadratic scan. Pathological inputs with huge numbers of repeats get their list cut at MAX_DUP_ERRORS.)
    const groups = new Map<string, number[]>();
    n.pairs.forEach(([k], i) => {
      const id = k.kind + '\u0000' + rawValue(k);
      const g = groups.get(id);
      if (g) g.push(i);
      else groups.set(id, [i]);
    });
    const dups: Array<[number, number]> = [];
    for (const g of groups.values()) {
      for (let a = 0; a < g.length - 1 && dups.length < MAX_DUP_ERRORS; a++) {
        for (let b = a + 1; b < g.length && dups.length < MAX_DUP_ERRORS; b++) dups.push([g[a], g[b]]);
      }
    }
    if (dups.length > 0) {
      dups.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
      for (const [i, j] of dups) {
        const ki = n.pairs[i][0];
        const kj = n.pairs[j][0];
        this.typeError(kj, `mapping key ${goQuote(rawValue(kj))} already defined at line ${ki.line}`);
      }
      return { good: false, value: cur };
    }

    if (t.k === 'struct') return this.mappingStruct(n, t, cur as Record<string, unknown>);
    let map: GoDynMap;
    let mapIsNew = false;
    if (t.k === 'map') {
      if (cur instanceof GoDynMap) {
        map = cur;
      } else {
        map = new GoDynMap(t.stringKeys);
        mapIsNew = true;
      }
    } else if (t.k === 'any') {
      map = new GoDynMap(isStringMap(n));
    } else {
      this.tagError(n, MAP_TAG, t);
      return { good: false, value: cur };
    }
    const keyType = map.stringKeys ? T_STRING : T_ANY;

    const mergedFields = this.mergedFields;
    this.mergedFields = null;
    let mergeNode: GNode | null = null;
    for (const [kn, vn] of n.pairs) {
      if (this.isMerge(kn)) {
        mergeNode = vn;
        continue;
      }
      const k = this.construct(kn, keyType, zeroValue(keyType));
      if (!k.good) continue;
      if (mergedFields) {
        const id = GoDynMap.keyId(k.value);
        if (mergedFields.has(id)) continue;
        mergedFields.add(id);
      }
      if (Array.isArray(k.value) || k.value instanceof GoDynMap) {
        throw new FatalConstructError("cannot use a sequence or mapping as a map key; try decoding into yaml.Node", kn.line);
      }
      const v = this.construct(vn, T_ANY, null);
      if (v.good || (this.shortTagOf(vn) === NULL_TAG && (mapIsNew || !map.has(k.value)))) map.set(k.value, v.value);
    }
    this.mergedFields = mergedFields;
    if (mergeNode) this.merge(n, mergeNode, map.stringKeys ? T_MAP_STRING_ANY : T_MAP_ANY_ANY, map);
    return { good: true, value: map };
  }

  private mappingStruct(n: GMap, t: Extract<GoType, { k: 'struct' }>, obj: Record<string, unknown>): Result {
    const mergedFields = this.mergedFields;
    this.mergedFields = null;
    let mergeNode: GNode | null = null;
    const done = new Set<string>();
    for (const [kn, vn] of n.pairs) {
      if (this.isMerge(kn)) {
        mergeNode = vn;
        continue;
      }
      const k = this.construct(kn, T_STRING, '');
      if (!k.good) continue;
      const name = k.value as string;
      if (mergedFields) {
        if (mergedFields.has('s:' + name)) continue;
        mergedFields.add('s:' + name);
      }
      const field = t.fields.find((f) => f.key === name);
      if (field) {
        if (done.has(field.key)) {
          this.typeError(kn, `field ${name} already set in type ${t.name}`);
          continue;
        }
        done.add(field.key);
        obj[field.key] = this.construct(vn, field.type, obj[field.key]).value;
      } else {
        this.typeError(kn, `field ${name} not found in type ${t.name}`);
      }
    }
    this.mergedFields = mergedFields;
    if (mergeNode) this.merge(n, mergeNode, t, obj);
    return { good: true, value: obj };
  }

  private merge(parent: GMap, merge: GNode, t: GoType, out: unknown): void {
    const saved = this.mergedFields;
    if (saved === null) {
      const fields = new Set<string>();
      for (const [kn] of parent.pairs) {
        const k = this.construct(kn, T_ANY, null);
        if (k.good) fields.add(GoDynMap.keyId(k.value));
      }
      this.mergedFields = fields;
    }
    const wantMap = (m: GNode) => new FatalConstructError('map merge requires map or sequence of maps as the value', m.line);
    switch (merge.kind) {
      case 'map':
        this.construct(merge, t, out);
        break;
      case 'alias':
        if (merge.target.kind !== 'map') throw wantMap(merge.target);
        this.construct(merge, t, out);
        break;
      case 'seq':
        for (const item of merge.items) {
          if (item.kind === 'alias') {
            if (item.target.kind !== 'map') throw wantMap(item.target);
          } else if (item.kind !== 'map') {
            throw wantMap(item);
          }
          this.construct(item, t, out);
        }
        break;
      default:
        throw wantMap(merge);
    }
    this.mergedFields = saved;
  }
}

function binaryText(resolved: unknown): string {
  return resolved instanceof GoBytesString ? Buffer.from(resolved.bytes).toString('latin1') : (resolved as string);
}

/** Node.Value as go-yaml keeps it: scalar text, anchor name for aliases, "" for collections. */
function rawValue(n: GNode): string {
  if (n.kind === 'scalar') return n.value;
  if (n.kind === 'alias') return n.name;
  return '';
}

/** A mapping whose keys are all strings (or merge keys) decodes into map[string]any, else map[any]any. */
function isStringMap(n: GMap): boolean {
  return n.pairs.every(([k]) => {
    const tag = shortTagOfStatic(k);
    return tag === STR_TAG || tag === MERGE_TAG;
  });
}

function shortTagOfStatic(n: GNode): string {
  if (n.kind === 'alias') return shortTagOfStatic(n.target);
  if (n.kind === 'scalar' && (n.tag === STR_TAG || ((n.tag === '' || n.tag === '!') && n.style !== 'plain'))) return STR_TAG;
  if (n.tag === '' || n.tag === '!') return n.kind === 'map' ? MAP_TAG : n.kind === 'seq' ? SEQ_TAG : STR_TAG;
  return n.tag;
}
