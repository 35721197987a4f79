/**
 * Reading a request body into a YAML node graph with go-yaml's view of it: node kinds, tags as go-yaml's resolver
 * assigns them, scalar values, 1-based line numbers, anchors/aliases.
 *
 * The syntax itself is parsed with the `yaml` package (YAML 1.2 parser); the pieces where libyaml (go-yaml) reads
 * differently are redone here: input decoding and the reader's character checks, double-quoted escapes (`\'` is
 * accepted, `\/` is rejected, as in libyaml), implicit tag resolution (go-yaml rules, see @factory/goyaml) and alias
 * handling. Only the first document of the stream is looked at.
 */
import { MAP_TAG, SEQ_TAG, STR_TAG, resolveScalar, shortTag } from '@factory/goyaml';
import {
  Alias,
  CST,
  Composer,
  Document,
  Lexer,
  Node,
  Pair,
  Parser,
  Scalar,
  YAMLMap,
  YAMLSeq,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
} from 'yaml';

export type ScalarStyleIn = 'plain' | 'single' | 'double' | 'literal' | 'folded';

export interface GScalar {
  kind: 'scalar';
  /** go-yaml node Tag after the resolver, in short form (`!!str`, `!!int`, `!custom`, `!`, ...). */
  tag: string;
  style: ScalarStyleIn;
  value: string;
  line: number;
}
export interface GSeq {
  kind: 'seq';
  tag: string;
  items: GNode[];
  line: number;
}
export interface GMap {
  kind: 'map';
  tag: string;
  pairs: Array<[GNode, GNode]>;
  line: number;
}
export interface GAlias {
  kind: 'alias';
  name: string;
  line: number;
  readonly target: GNode;
}
export type GNode = GScalar | GSeq | GMap | GAlias;

/** A syntax/reader level failure; `line` is 1-based, 0 when unknown. */
export class YamlSyntaxError extends Error {
  constructor(
    message: string,
    public readonly line: number,
  ) {
    super(message);
  }
}

/** No document in the stream (go-yaml's io.EOF). */
export class YamlEOF extends Error {}

// --- work limits -------------------------------------------------------------------------------------------------

/**
 * Bounds on the work one request body may cause. go-yaml itself only has its excessive-aliasing ratio rule (see
 * construct.ts) and a nesting limit of 10000; the yaml package this reader is built on costs ~1–3 µs per lexical
 * token, so a 1 MiB body of `[x,x,...]` or of comment lines would hold the event loop for seconds, and a document
 * may expand through aliases far beyond its own size. These limits are far above any real schematic (a few KB, a
 * few hundred tokens, a handful of aliases, nesting < 10; an embedded machine configuration is one scalar token
 * however long) and stop a hostile body after a bounded, small amount of work. Each violation is reported as a
 * one-line `yaml: ...` error naming the limit (a 400 at the API). Deviation from go-yaml: it would accept, slowly,
 * a valid schematic that exceeds one of them.
 */
export const YAML_LIMITS = Object.freeze({
  /**
   * Lexical tokens up to the end of the first document (comments and whitespace runs included). At least 8 ×
   * maxExpandedNodes: the canonical form of an accepted schematic (at most ~7 tokens per node, e.g. `- |-` items)
   * must itself be readable, as it is read back from the store.
   */
  maxTokens: 25_000,
  /** Alias nodes (`*name`) in the whole stream. */
  maxAliases: 1000,
  /** Nesting of collections, in the text and after alias expansion (go-yaml: 10000). */
  maxDepth: 100,
  /** Nodes decoded, alias expansion included (real schematics: tens to a few hundred). */
  maxExpandedNodes: 3_000,
  /** Characters of scalar values decoded, alias expansion included (a body is at most 1 MiB by default). */
  maxExpandedChars: 2 * 1024 * 1024,
});

/** A body that exceeds one of YAML_LIMITS; the message names the limit. */
export class YamlLimitError extends Error {}

export const depthLimitMessage = (): string => `exceeded max depth of ${YAML_LIMITS.maxDepth}`;

// --- input decoding (libyaml reader) -----------------------------------------------------------------------------

function decodeUtf8Strict(b: Uint8Array): string {
  // Validate like libyaml's reader, producing its messages.
  for (let i = 0; i < b.length; ) {
    const o = b[i];
    let w: number;
    if ((o & 0x80) === 0) w = 1;
    else if ((o & 0xe0) === 0xc0) w = 2;
    else if ((o & 0xf0) === 0xe0) w = 3;
    else if ((o & 0xf8) === 0xf0) w = 4;
    else throw new YamlSyntaxError(`invalid leading UTF-8 octet (value: ${o})`, 0);
    if (i + w > b.length) throw new YamlSyntaxError('incomplete UTF-8 octet sequence', 0);
    let v = w === 1 ? o : w === 2 ? o & 0x1f : w === 3 ? o & 0x0f : o & 0x07;
    for (let k = 1; k < w; k++) {
      const t = b[i + k];
      if ((t & 0xc0) !== 0x80) throw new YamlSyntaxError(`invalid trailing UTF-8 octet (value: ${t})`, 0);
      v = (v << 6) + (t & 0x3f);
    }
    if (!(w === 1 || (w === 2 && v >= 0x80) || (w === 3 && v >= 0x800) || (w === 4 && v >= 0x10000))) {
      throw new YamlSyntaxError('invalid length of a UTF-8 sequence', 0);
    }
    if ((v >= 0xd800 && v <= 0xdfff) || v > 0x10ffff) throw new YamlSyntaxError(`invalid Unicode character (value: ${v})`, 0);
    i += w;
  }
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

function decodeUtf16(b: Uint8Array, littleEndian: boolean): string {
  if (b.length % 2 !== 0) throw new YamlSyntaxError('incomplete UTF-16 character', 0);
  let s = '';
  for (let i = 0; i < b.length; i += 2) {
    s += String.fromCharCode(littleEndian ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1]);
  }
  return s;
}

/** Body bytes -> text, honouring a UTF-8/UTF-16 BOM like libyaml (which strips it). */
export function decodeBody(body: string | Uint8Array): string {
  let text: string;
  if (typeof body === 'string') {
    text = body;
  } else if (body.length >= 2 && body[0] === 0xff && body[1] === 0xfe) {
    text = decodeUtf16(body.subarray(2), true);
  } else if (body.length >= 2 && body[0] === 0xfe && body[1] === 0xff) {
    text = decodeUtf16(body.subarray(2), false);
  } else {
    text = decodeUtf8Strict(body);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // libyaml's reader accepts TAB, LF, CR, and every printable/DEL/C1 character; the rest is refused.
  const bad = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(text);
  if (bad) {
    const cp = bad[0].charCodeAt(0);
    if (cp >= 0xd800 && cp <= 0xdfff) throw new YamlSyntaxError(`invalid Unicode character (value: ${cp})`, 0);
    throw new YamlSyntaxError(`control characters are not allowed (value: ${cp})`, 0);
  }
  return text;
}

// --- line numbers ------------------------------------------------------------------------------------------------

class Lines {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0d) {
        if (text.charCodeAt(i + 1) === 0x0a) i++;
        this.starts.push(i + 1);
      } else if (c === 0x0a) {
        this.starts.push(i + 1);
      }
    }
  }

  /** 1-based line of a character offset. */
  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }
}

// --- double-quoted scalars (libyaml escapes and folding) ---------------------------------------------------------

const SIMPLE_ESCAPES: Record<string, string> = {
  '0': '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b', ' ': ' ',
  '"': '"', "'": "'", '\\': '\\', N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029',
};
const HEX_LEN: Record<string, number> = { x: 2, u: 4, U: 8 };

/**
 * Decode the source text of a double-quoted scalar (including its quotes). Returns the value, or an error with
 * the character offset (relative to `raw`) where it was found.
 */
export function decodeDoubleQuoted(raw: string): { value: string } | { error: string; at: number } {
  const s = raw.slice(1, raw.endsWith('"') && raw.length > 1 ? -1 : undefined);
  const isBlank = (c: string | undefined) => c === ' ' || c === '\t';
  const isBreak = (c: string | undefined) => c === '\n' || c === '\r';
  const skipBreak = (i: number) => (s[i] === '\r' && s[i + 1] === '\n' ? i + 2 : i + 1);
  let out = '';
  let i = 0;
  while (i < s.length) {
    let leadingBlanks = false;
    // Non-blank characters.
    while (i < s.length && !isBlank(s[i]) && !isBreak(s[i])) {
      if (s[i] === '\\' && isBreak(s[i + 1])) {
        i = skipBreak(i + 1);
        leadingBlanks = true;
        break;
      }
      if (s[i] === '\\') {
        const e = s[i + 1];
        if (e !== undefined && SIMPLE_ESCAPES[e] !== undefined) {
          out += SIMPLE_ESCAPES[e];
          i += 2;
          continue;
        }
        const n = e === undefined ? undefined : HEX_LEN[e];
        if (n === undefined) return { error: 'found unknown escape character while parsing a quoted scalar', at: i + 1 };
        const hex = s.slice(i + 2, i + 2 + n);
        if (hex.length !== n || !/^[0-9A-Fa-f]+$/.test(hex)) {
          return { error: 'did not find expected hexdecimal number while parsing a quoted scalar', at: i + 1 };
        }
        const cp = parseInt(hex, 16);
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
          return { error: 'found invalid Unicode character escape code while parsing a quoted scalar', at: i + 1 };
        }
        out += String.fromCodePoint(cp);
        i += 2 + n;
        continue;
      }
      // Copy the run of ordinary characters up to the next escape, blank or break (one slice, not one
      // concatenation per character: a 1 MiB scalar took 150 ms that way).
      let end = i + 1;
      while (end < s.length && s[end] !== '\\' && !isBlank(s[end]) && !isBreak(s[end])) end++;
      out += s.slice(i, end);
      i = end;
    }
    if (i >= s.length) break;
    // Blanks and line breaks.
    let whitespaces = '';
    let leadingBreak = '';
    let trailingBreaks = '';
    while (i < s.length && (isBlank(s[i]) || isBreak(s[i]))) {
      if (isBlank(s[i])) {
        if (!leadingBlanks) whitespaces += s[i];
        i++;
      } else {
        if (!leadingBlanks) {
          whitespaces = '';
          leadingBreak = '\n';
          leadingBlanks = true;
        } else {
          trailingBreaks += '\n';
        }
        i = skipBreak(i);
      }
    }
    if (leadingBlanks) {
      if (leadingBreak === '\n') out += trailingBreaks === '' ? ' ' : trailingBreaks;
      else out += leadingBreak + trailingBreaks;
    } else {
      out += whitespaces;
    }
  }
  return { value: out };
}

// --- AST conversion ----------------------------------------------------------------------------------------------

const STYLE_OF: Record<Scalar.Type, ScalarStyleIn> = {
  PLAIN: 'plain',
  QUOTE_SINGLE: 'single',
  QUOTE_DOUBLE: 'double',
  BLOCK_LITERAL: 'literal',
  BLOCK_FOLDED: 'folded',
};

/**
 * Every alias of `doc` with the node it refers to: the last node before it, in document order, that carries its
 * anchor (go-yaml and the yaml package agree on this). One pre-order walk; the yaml package's `Alias.resolve` walks
 * the whole document for each alias, which made a body of n aliases cost n² (issue 10, item 1).
 */
function resolveAliases(doc: Document.Parsed): Map<Alias, unknown> {
  const targets = new Map<Alias, unknown>();
  const anchored = new Map<string, unknown>();
  const pending: unknown[] = [doc.contents];
  while (pending.length > 0) {
    const node = pending.pop();
    if (node === null || node === undefined) continue;
    if (isPair(node)) {
      pending.push((node as Pair).value, (node as Pair).key);
      continue;
    }
    if (isAlias(node)) {
      const alias = node as Alias;
      targets.set(alias, anchored.get(alias.source));
      continue;
    }
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor) anchored.set(anchor, node);
    if (isMap(node) || isSeq(node)) {
      const items = (node as YAMLMap | YAMLSeq).items as unknown[];
      for (let i = items.length - 1; i >= 0; i--) pending.push(items[i]);
    }
  }
  return targets;
}

class Converter {
  private readonly cache = new Map<unknown, GNode>();
  private readonly aliasTargets: Map<Alias, unknown>;
  private depth = 0;

  constructor(
    private readonly text: string,
    doc: Document.Parsed,
    private readonly lines: Lines,
  ) {
    this.aliasTargets = resolveAliases(doc);
  }

  private lineAt(node: { range?: [number, number, number] | null } | null | undefined, fallback: number): number {
    const r = node?.range;
    return r ? this.lines.lineOf(r[0]) : fallback;
  }

  private emptyScalar(line: number): GScalar {
    return { kind: 'scalar', tag: '!!null', style: 'plain', value: '', line };
  }

  convert(node: unknown, fallbackLine: number): GNode {
    if (node === null || node === undefined) return this.emptyScalar(fallbackLine);
    const cached = this.cache.get(node);
    if (cached) return cached;
    if (isAlias(node)) return this.alias(node as Alias, fallbackLine);
    if (isScalar(node)) return this.scalar(node as Scalar, fallbackLine);
    if (++this.depth > YAML_LIMITS.maxDepth) throw new YamlLimitError(depthLimitMessage());
    try {
      if (isMap(node)) return this.mapping(node as YAMLMap, fallbackLine);
      if (isSeq(node)) return this.sequence(node as YAMLSeq, fallbackLine);
    } finally {
      this.depth--;
    }
    throw new YamlSyntaxError('unsupported YAML node', fallbackLine);
  }

  private alias(node: Alias, fallbackLine: number): GAlias {
    const line = this.lineAt(node, fallbackLine);
    const target = this.aliasTargets.get(node);
    if (!target) throw new YamlSyntaxError(`unknown anchor '${node.source}' referenced`, line);
    const self = this;
    let resolved: GNode | undefined;
    // The target is converted lazily: it may be an ancestor of the alias (a recursive structure), which the
    // constructor then reports the way go-yaml does.
    const g: GAlias = {
      kind: 'alias',
      name: node.source,
      line,
      get target(): GNode {
        if (!resolved) resolved = self.convert(target, line);
        return resolved;
      },
    };
    return g;
  }

  private scalar(node: Scalar, fallbackLine: number): GScalar {
    const line = this.lineAt(node, fallbackLine);
    const style = STYLE_OF[(node.type ?? 'PLAIN') as Scalar.Type] ?? 'plain';
    let value: string;
    if (style === 'double' && node.range) {
      const raw = this.text.slice(node.range[0], node.range[1]);
      const r = decodeDoubleQuoted(raw);
      if ('error' in r) throw new YamlSyntaxError(r.error, this.lines.lineOf(node.range[0] + 1 + r.at));
      value = r.value;
    } else {
      // `source` is the scalar's text before any tag-based conversion (the yaml package resolves e.g. !!binary).
      const src = (node as Scalar & { source?: unknown }).source;
      value = typeof src === 'string' ? src : node.value === null || node.value === undefined ? '' : String(node.value);
    }
    let tag: string;
    if (node.tag) {
      tag = shortTag(node.tag);
    } else if (style !== 'plain') {
      tag = STR_TAG;
    } else {
      tag = resolveScalar(value).tag;
    }
    const g: GScalar = { kind: 'scalar', tag, style, value, line };
    this.cache.set(node, g);
    return g;
  }

  private mapping(node: YAMLMap, fallbackLine: number): GMap {
    const line = this.lineAt(node, fallbackLine);
    const g: GMap = { kind: 'map', tag: node.tag ? shortTag(node.tag) : MAP_TAG, pairs: [], line };
    this.cache.set(node, g);
    for (const item of node.items as Pair[]) g.pairs.push(this.pair(item, line));
    return g;
  }

  private pair(item: Pair, line: number): [GNode, GNode] {
    const keyNode = item.key as Node | null;
    const valueNode = item.value as Node | null;
    const keyLine = this.lineAt(keyNode, this.lineAt(valueNode, line));
    const key = this.convert(keyNode, keyLine);
    const value = this.convert(valueNode, keyLine);
    return [key, value];
  }

  private sequence(node: YAMLSeq, fallbackLine: number): GSeq {
    const line = this.lineAt(node, fallbackLine);
    const g: GSeq = { kind: 'seq', tag: node.tag ? shortTag(node.tag) : SEQ_TAG, items: [], line };
    this.cache.set(node, g);
    for (const item of node.items) {
      if (isPair(item)) {
        // A `key: value` entry inside a flow sequence is a single-pair mapping.
        const p = this.pair(item as Pair, line);
        g.items.push({ kind: 'map', tag: MAP_TAG, pairs: [p], line: p[0].line });
      } else {
        g.items.push(this.convert(item, line));
      }
    }
    return g;
  }
}

function isPhantomDocument(d: Document.Parsed): boolean {
  if (d.directives?.docStart || d.errors.length > 0) return false;
  const c = d.contents as unknown;
  if (c === null || c === undefined) return true;
  if (!isScalar(c)) return false;
  const sc = c as Scalar & { source?: unknown };
  return sc.source === '' && (sc.type ?? 'PLAIN') === 'PLAIN' && !sc.tag && !sc.anchor;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * The lexical tokens of `text`, stopping with a YamlLimitError as soon as the stream exceeds maxTokens, maxAliases
 * or (flow collections) maxDepth — before the yaml package's parser and composer spend their far larger per-token
 * work on it.
 */
function* limitedTokens(text: string): Generator<string> {
  let tokens = 0;
  let aliases = 0;
  let flowDepth = 0;
  let scalarSourceNext = false;
  for (const token of new Lexer().lex(text)) {
    if (++tokens > YAML_LIMITS.maxTokens) throw new YamlLimitError(`document is too large (more than ${YAML_LIMITS.maxTokens} YAML tokens)`);
    if (scalarSourceNext) {
      // The source of a block scalar, whatever characters it starts with.
      scalarSourceNext = false;
    } else if (token === CST.SCALAR) {
      scalarSourceNext = true;
    } else if (token[0] === '*') {
      if (++aliases > YAML_LIMITS.maxAliases) {
        throw new YamlLimitError(`document contains excessive aliasing (more than ${YAML_LIMITS.maxAliases} aliases)`);
      }
    } else if (token === '[' || token === '{') {
      if (++flowDepth > YAML_LIMITS.maxDepth) throw new YamlLimitError(depthLimitMessage());
    } else if ((token === ']' || token === '}') && flowDepth > 0) {
      flowDepth--;
    }
    yield token;
  }
}

/**
 * The first document of the stream that is not a phantom, composed by the yaml package from limitedTokens. The
 * composer hands out a document (final by then) when the next one starts, so the rest of the stream is never
 * lexed — as libyaml, which go-yaml's Decoder pulls events from lazily, never reads past the first document either.
 */
function firstRealDocument(text: string): Document.Parsed | undefined {
  const parser = new Parser();
  const composer = new Composer({ schema: 'failsafe', uniqueKeys: false, prettyErrors: false, strict: true });
  function* cstTokens() {
    for (const token of limitedTokens(text)) yield* parser.next(token);
    yield* parser.end();
  }
  for (const doc of composer.compose(cstTokens())) {
    // A bare `...` yields a document here, while libyaml just skips stray document end markers.
    if (!isPhantomDocument(doc as Document.Parsed)) return doc as Document.Parsed;
  }
  return undefined;
}

/**
 * Parse the first YAML document of `text` into a go-yaml style node graph.
 * Throws YamlEOF when the stream holds no document, YamlSyntaxError on malformed input, YamlLimitError when the
 * stream exceeds YAML_LIMITS.
 */
export function parseFirstDocument(text: string): GNode {
  const doc = firstRealDocument(text);
  if (!doc) throw new YamlEOF('EOF');
  const lines = new Lines(text);
  // Escapes in double-quoted scalars are checked by decodeDoubleQuoted (libyaml's set differs from YAML 1.2's).
  const errors = doc.errors.filter((e) => e.code !== 'BAD_DQ_ESCAPE');
  if (errors.length > 0) {
    const e = errors[0];
    throw new YamlSyntaxError(oneLine(e.message), lines.lineOf(e.pos[0]));
  }
  return new Converter(text, doc, lines).convert(doc.contents, 1);
}
