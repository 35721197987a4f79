/**
 * Block-style YAML writer reproducing the output of go-yaml v4's libyaml-derived emitter byte for byte
 * (indentation bookkeeping, scalar style fallbacks, line folding, literal block scalars).
 *
 * Only what go-yaml's Marshal can produce is supported: block collections, empty collections as `[]`/`{}`,
 * plain / single-quoted / double-quoted / literal scalars, and explicit tags on scalars (`!!binary`).
 */
import { byteLength, codePoints, isBlank, isBlankOrZero, isBreak, isPrintable, isSpace } from './chars';

export type ScalarStyle = 'plain' | 'single' | 'double' | 'literal';

export type YNode =
  | { kind: 'scalar'; value: string; style: ScalarStyle; tag?: string }
  | { kind: 'seq'; items: YNode[] }
  | { kind: 'map'; pairs: Array<[YNode, YNode]> };

export interface EmitOptions {
  /** Indentation width, 2..9 (go-yaml falls back to 2 outside that range). Default 4. */
  indent?: number;
  /** Preferred line width; -1 (or any negative) disables folding. Values 0..2*indent mean 80. Default -1. */
  lineWidth?: number;
}

export interface ScalarAnalysis {
  multiline: boolean;
  flowPlainAllowed: boolean;
  blockPlainAllowed: boolean;
  singleQuotedAllowed: boolean;
  blockAllowed: boolean;
}

/** libyaml's analyze_scalar. */
export function analyzeScalar(value: number[]): ScalarAnalysis {
  if (value.length === 0) {
    return { multiline: false, flowPlainAllowed: false, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: false };
  }
  let blockIndicators = false;
  let flowIndicators = false;
  let lineBreaks = false;
  let specialCharacters = false;
  let tabCharacters = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let previousSpace = false;
  let previousBreak = false;

  const c0 = value[0];
  if (
    value.length >= 3 &&
    ((c0 === 0x2d && value[1] === 0x2d && value[2] === 0x2d) || (c0 === 0x2e && value[1] === 0x2e && value[2] === 0x2e))
  ) {
    blockIndicators = true;
    flowIndicators = true;
  }

  let precededByWhitespace = true;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    const followedByWhitespace = i + 1 >= value.length || isBlank(value[i + 1]);
    const ch = String.fromCodePoint(c);
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) {
        flowIndicators = true;
        blockIndicators = true;
      } else if (ch === '?' || ch === ':') {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      } else if (ch === '-') {
        if (followedByWhitespace) {
          flowIndicators = true;
          blockIndicators = true;
        }
      }
    } else {
      if (',?[]{}'.includes(ch)) {
        flowIndicators = true;
      } else if (ch === ':') {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      } else if (ch === '#') {
        if (precededByWhitespace) {
          flowIndicators = true;
          blockIndicators = true;
        }
      }
    }

    if (c === 0x09) {
      tabCharacters = true;
    } else if (!isPrintable(c)) {
      specialCharacters = true;
    }
    if (isSpace(c)) {
      if (i === 0) leadingSpace = true;
      if (i + 1 === value.length) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(c)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i + 1 === value.length) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlankOrZero(c);
  }

  const a: ScalarAnalysis = {
    multiline: lineBreaks,
    flowPlainAllowed: true,
    blockPlainAllowed: true,
    singleQuotedAllowed: true,
    blockAllowed: true,
  };
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
  }
  if (trailingSpace) a.blockAllowed = false;
  if (breakSpace) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
    a.singleQuotedAllowed = false;
  }
  if (spaceBreak || tabCharacters || specialCharacters) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
    a.singleQuotedAllowed = false;
  }
  if (spaceBreak || specialCharacters) a.blockAllowed = false;
  if (lineBreaks) {
    a.flowPlainAllowed = false;
    a.blockPlainAllowed = false;
  }
  if (flowIndicators) a.flowPlainAllowed = false;
  if (blockIndicators) a.blockPlainAllowed = false;
  return a;
}

/**
 * libyaml's select_scalar_style for an implicitly tagged scalar (or a tagged one, where `tagged` is true):
 * the requested style is downgraded when the content does not allow it. Quote preference is go-yaml's legacy
 * mode, i.e. single quotes when plain is impossible.
 */
export function selectStyle(
  requested: ScalarStyle,
  a: ScalarAnalysis,
  valueLength: number,
  ctx: { flow: boolean; simpleKey: boolean },
): ScalarStyle {
  let style = requested;
  if (ctx.simpleKey && a.multiline) style = 'double';
  if (style === 'plain') {
    if ((ctx.flow && !a.flowPlainAllowed) || (!ctx.flow && !a.blockPlainAllowed)) style = 'single';
    if (valueLength === 0 && (ctx.flow || ctx.simpleKey)) style = 'single';
  }
  if (style === 'single' && !a.singleQuotedAllowed) style = 'double';
  if (style === 'literal' && (!a.blockAllowed || ctx.flow || ctx.simpleKey)) style = 'double';
  return style;
}

interface NodeCtx {
  root: boolean;
  simpleKey: boolean;
  /** The enclosing state is "block sequence item" (affects indentation increase). */
  inBlockSeq: boolean;
}

const HEX = '0123456789ABCDEF';

const SIMPLE_ESCAPES: Record<number, string> = {
  0x00: '0', 0x07: 'a', 0x08: 'b', 0x09: 't', 0x0a: 'n', 0x0b: 'v', 0x0c: 'f', 0x0d: 'r', 0x1b: 'e',
  0x22: '"', 0x5c: '\\', 0x85: 'N', 0xa0: '_', 0x2028: 'L', 0x2029: 'P',
};

class Writer {
  private out: string[] = [];
  private column = 0;
  private whitespace = true;
  private indention = true;
  private indent = -1;
  private readonly indents: number[] = [];
  private flowLevel = 0;
  private readonly bestIndent: number;
  private readonly bestWidth: number;

  constructor(opts: EmitOptions) {
    let indent = opts.indent ?? 4;
    if (indent < 2 || indent > 9) indent = 2;
    this.bestIndent = indent;
    let width = opts.lineWidth ?? -1;
    if (width < 0) width = -1;
    if (width >= 0 && width <= indent * 2) width = 80;
    if (width < 0) width = 2 ** 31 - 1;
    this.bestWidth = width;
  }

  result(): string {
    return this.out.join('');
  }

  // --- low level output ---------------------------------------------------------------------------------------

  private put(s: string): void {
    this.out.push(s);
    this.column++;
  }

  private putBreak(): void {
    this.out.push('\n');
    this.column = 0;
    this.indention = true;
  }

  private writeCp(cp: number): void {
    this.out.push(String.fromCodePoint(cp));
    this.column++;
  }

  private writeBreakCp(cp: number): void {
    if (cp === 0x0a) {
      this.putBreak();
    } else {
      this.out.push(String.fromCodePoint(cp));
      this.column = 0;
      this.indention = true;
    }
  }

  private writeIndent(): void {
    const indent = this.indent < 0 ? 0 : this.indent;
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) {
      this.putBreak();
    }
    while (this.column < indent) this.put(' ');
    this.whitespace = true;
  }

  private writeIndicator(ind: string, needWhitespace: boolean, isWhitespace: boolean, isIndention: boolean): void {
    if (needWhitespace && !this.whitespace) this.put(' ');
    for (const ch of ind) this.put(ch);
    this.whitespace = isWhitespace;
    this.indention = this.indention && isIndention;
  }

  private increaseIndent(flow: boolean, inBlockSeq: boolean): void {
    this.indents.push(this.indent);
    if (this.indent < 0) {
      this.indent = flow ? this.bestIndent : 0;
    } else if (inBlockSeq) {
      // The first indent inside a sequence just skips the "- " indicator.
      this.indent += 2;
    } else {
      this.indent = this.bestIndent * Math.floor((this.indent + this.bestIndent) / this.bestIndent);
    }
  }

  private popIndent(): void {
    this.indent = this.indents.pop()!;
  }

  // --- document / nodes -----------------------------------------------------------------------------------------

  document(node: YNode): void {
    this.node(node, { root: true, simpleKey: false, inBlockSeq: false });
    // DOCUMENT-END: make sure the output ends with a line break.
    this.writeIndent();
  }

  private node(node: YNode, ctx: NodeCtx): void {
    switch (node.kind) {
      case 'scalar':
        return this.scalar(node, ctx);
      case 'seq':
        if (this.flowLevel > 0 || node.items.length === 0) return this.flowCollection('[', ']', node.items.length, ctx);
        return this.blockSequence(node.items, ctx);
      case 'map':
        if (this.flowLevel > 0 || node.pairs.length === 0) return this.flowCollection('{', '}', node.pairs.length, ctx);
        return this.blockMapping(node.pairs, ctx);
    }
  }

  private flowCollection(open: string, close: string, count: number, ctx: NodeCtx): void {
    if (count !== 0) throw new Error('goyaml: non-empty flow collections are not supported');
    this.writeIndicator(open, true, true, false);
    this.increaseIndent(true, ctx.inBlockSeq);
    this.flowLevel++;
    this.flowLevel--;
    this.popIndent();
    this.writeIndicator(close, false, false, false);
  }

  private blockSequence(items: YNode[], ctx: NodeCtx): void {
    this.increaseIndent(false, ctx.inBlockSeq);
    for (const item of items) {
      this.writeIndent();
      this.writeIndicator('-', true, false, true);
      this.node(item, { root: false, simpleKey: false, inBlockSeq: true });
    }
    this.popIndent();
  }

  private blockMapping(pairs: Array<[YNode, YNode]>, ctx: NodeCtx): void {
    this.increaseIndent(false, ctx.inBlockSeq);
    for (const [key, value] of pairs) {
      this.writeIndent();
      if (isSimpleKey(key)) {
        this.node(key, { root: false, simpleKey: true, inBlockSeq: false });
        this.writeIndicator(':', false, false, false);
      } else {
        this.writeIndicator('?', true, false, true);
        this.node(key, { root: false, simpleKey: false, inBlockSeq: false });
        this.writeIndent();
        this.writeIndicator(':', true, false, true);
      }
      this.node(value, { root: false, simpleKey: false, inBlockSeq: false });
    }
    this.popIndent();
  }

  private scalar(node: Extract<YNode, { kind: 'scalar' }>, ctx: NodeCtx): void {
    const cps = codePoints(node.value);
    const a = analyzeScalar(cps);
    const style = selectStyle(node.style, a, cps.length, { flow: this.flowLevel > 0, simpleKey: ctx.simpleKey });
    if (node.tag) this.writeTag(node.tag);
    this.increaseIndent(true, ctx.inBlockSeq);
    const allowBreaks = !ctx.simpleKey;
    switch (style) {
      case 'plain':
        this.writePlain(cps, allowBreaks);
        break;
      case 'single':
        this.writeSingleQuoted(cps, allowBreaks);
        break;
      case 'double':
        this.writeDoubleQuoted(cps, allowBreaks);
        break;
      case 'literal':
        this.writeLiteral(cps);
        break;
    }
    this.popIndent();
  }

  private writeTag(tag: string): void {
    let handle = '';
    let suffix = tag;
    if (tag.startsWith('!!')) {
      handle = '!!';
      suffix = tag.slice(2);
    } else if (tag.startsWith('!')) {
      handle = '!';
      suffix = tag.slice(1);
    }
    if (!handle) throw new Error(`goyaml: unsupported tag ${tag}`);
    if (!this.whitespace) this.put(' ');
    for (const ch of handle) this.put(ch);
    this.whitespace = false;
    this.indention = false;
    for (const ch of suffix) {
      if (/[;/?:@&=+$,_.~*'()[\]0-9A-Za-z-]/.test(ch)) {
        this.put(ch);
      } else {
        for (const b of Buffer.from(ch, 'utf8')) this.out.push('%' + HEX[b >> 4] + HEX[b & 15]), (this.column += 3);
      }
    }
    this.whitespace = false;
    this.indention = false;
  }

  private writePlain(v: number[], allowBreaks: boolean): void {
    if (v.length > 0 && !this.whitespace) this.put(' ');
    let spaces = false;
    let breaks = false;
    for (let i = 0; i < v.length; i++) {
      const c = v[i];
      if (isSpace(c)) {
        if (allowBreaks && !spaces && this.column > this.bestWidth && !isSpace(v[i + 1])) {
          this.writeIndent();
        } else {
          this.writeCp(c);
        }
        spaces = true;
      } else if (isBreak(c)) {
        if (!breaks && c === 0x0a) this.putBreak();
        this.writeBreakCp(c);
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        this.writeCp(c);
        this.indention = false;
        spaces = false;
        breaks = false;
      }
    }
    if (v.length > 0) this.whitespace = false;
    this.indention = false;
  }

  private writeSingleQuoted(v: number[], allowBreaks: boolean): void {
    this.writeIndicator("'", true, false, false);
    let spaces = false;
    let breaks = false;
    for (let i = 0; i < v.length; i++) {
      const c = v[i];
      if (isSpace(c)) {
        if (allowBreaks && !spaces && this.column > this.bestWidth && i > 0 && i < v.length - 1 && !isSpace(v[i + 1])) {
          this.writeIndent();
        } else {
          this.writeCp(c);
        }
        spaces = true;
      } else if (isBreak(c)) {
        if (!breaks && c === 0x0a) this.putBreak();
        this.writeBreakCp(c);
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        if (c === 0x27) this.put("'");
        this.writeCp(c);
        this.indention = false;
        spaces = false;
        breaks = false;
      }
    }
    this.writeIndicator("'", false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private writeDoubleQuoted(v: number[], allowBreaks: boolean): void {
    let spaces = false;
    this.writeIndicator('"', true, false, false);
    // libyaml's is_bom() looks at the start of the value, whatever the position: a leading BOM escapes everything.
    const leadingBom = v[0] === 0xfeff;
    for (let i = 0; i < v.length; i++) {
      const c = v[i];
      if (!isPrintable(c) || leadingBom || isBreak(c) || c === 0x22 || c === 0x5c) {
        this.put('\\');
        const s = SIMPLE_ESCAPES[c];
        if (s !== undefined) {
          this.put(s);
        } else {
          let w: number;
          if (c <= 0xff) {
            this.put('x');
            w = 2;
          } else if (c <= 0xffff) {
            this.put('u');
            w = 4;
          } else {
            this.put('U');
            w = 8;
          }
          for (let k = (w - 1) * 4; k >= 0; k -= 4) this.put(HEX[(c >> k) & 0x0f]);
        }
        spaces = false;
      } else if (isSpace(c)) {
        if (allowBreaks && !spaces && this.column > this.bestWidth && i > 0 && i < v.length - 1) {
          this.writeIndent();
          if (isSpace(v[i + 1])) this.put('\\');
        } else {
          this.writeCp(c);
        }
        spaces = true;
      } else {
        this.writeCp(c);
        spaces = false;
      }
    }
    this.writeIndicator('"', false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private writeLiteral(v: number[]): void {
    this.writeIndicator('|', true, false, false);
    // Block scalar hints.
    if (isSpace(v[0])) this.writeIndicator(String(this.bestIndent), false, false, false);
    let chomp = '';
    if (v.length === 0) {
      chomp = '-';
    } else {
      const last = v.length - 1;
      if (!isBreak(v[last])) chomp = '-';
      else if (last === 0) chomp = '+';
      else if (isBreak(v[last - 1])) chomp = '+';
    }
    if (chomp) this.writeIndicator(chomp, false, false, false);
    this.putBreak();
    this.whitespace = true;
    let breaks = true;
    for (const c of v) {
      if (isBreak(c)) {
        this.writeBreakCp(c);
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        this.writeCp(c);
        this.indention = false;
        breaks = false;
      }
    }
  }
}

/** libyaml check_simple_key for the nodes go-yaml produces. */
function isSimpleKey(key: YNode): boolean {
  switch (key.kind) {
    case 'scalar': {
      if (analyzeScalar(codePoints(key.value)).multiline) return false;
      return (key.tag ? byteLength(key.tag) : 0) + byteLength(key.value) <= 128;
    }
    case 'seq':
      return key.items.length === 0;
    case 'map':
      return key.pairs.length === 0;
  }
}

/** Serialize a node tree as a single implicit document. */
export function emitDocument(node: YNode, opts: EmitOptions = {}): string {
  const w = new Writer(opts);
  w.document(node);
  return w.result();
}
