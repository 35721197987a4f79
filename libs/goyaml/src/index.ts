/**
 * @factory/goyaml — a YAML emitter producing the same bytes as go-yaml v4 `yaml.Marshal`
 * (go.yaml.in/yaml/v4: 4-space indent, non-compact sequence indent, legacy quote preference, no line folding),
 * plus the scalar resolution rules go-yaml applies when decoding.
 *
 * Input model for `marshal` (JS value -> Go value it stands for):
 *
 * | JS value                                 | Go value / output                                            |
 * |------------------------------------------|--------------------------------------------------------------|
 * | string                                   | string (plain / quoted / literal block as go-yaml decides)   |
 * | integer number, bigint                   | int (decimal)                                                |
 * | non-integer number, NaN, ±Infinity, -0   | float64 (strconv 'g' formatting, `.nan`, `.inf`, `-.inf`)    |
 * | GoFloat                                  | float64 (use for integral floats: `goFloat(1e6)` -> `1e+06`) |
 * | boolean                                  | bool                                                         |
 * | null, undefined                          | nil -> `null` (undefined *object values* are skipped)        |
 * | Array                                    | slice (`[]` when empty)                                      |
 * | plain object                             | struct: keys emitted in insertion order (`{}` when empty)    |
 * | Map                                      | Go map: keys sorted like go-yaml sorts map keys              |
 * | GoTime, Date                             | time.Time (RFC 3339 with nanoseconds)                        |
 * | GoBytesString                            | string with raw bytes (`!!binary` base64 if not UTF-8)       |
 *
 * So callers control key order with plain objects (as Go structs do), and get Go map semantics with `Map`
 * (or `goMap(obj)`). There is no omitempty logic: leave fields out (or set them to undefined) to omit them.
 * Caveat: JavaScript itself moves integer-like keys ("123") of plain objects to the front; use a Map (sorted) if
 * such keys occur.
 *
 * `lineWidth: 80` reproduces the folding of long plain/quoted scalars done by encoders configured with
 * go-yaml's default width (yaml.v3 Marshal, v4 WithLineWidth(80)); literal blocks and keys are never folded.
 */
import { codePoints } from './chars';
import { EmitOptions, ScalarStyle, analyzeScalar, emitDocument, selectStyle } from './emitter';
import { represent, requestedStringStyle } from './represent';

export type { EmitOptions, ScalarStyle, YNode, ScalarAnalysis } from './emitter';
export { analyzeScalar, emitDocument, selectStyle } from './emitter';
export {
  represent,
  representString,
  requestedStringStyle,
  goKeyLess,
  sortGoMapKeys,
  isBase60Float,
  isOldBool,
  isValidUtf8,
} from './represent';
export {
  resolveScalar,
  implicitTag,
  shortTag,
  parseTimestamp,
  parseGoInt,
  parseGoUint,
  ResolveError,
  STR_TAG,
  INT_TAG,
  FLOAT_TAG,
  BOOL_TAG,
  NULL_TAG,
  TIMESTAMP_TAG,
  MERGE_TAG,
  BINARY_TAG,
  SEQ_TAG,
  MAP_TAG,
} from './resolve';
export type { Resolved, ResolvedValue } from './resolve';
export { GoFloat, goFloat, GoTime, GoBytesString, formatGoFloat } from './values';

export interface MarshalOptions extends EmitOptions {}

/**
 * go-yaml v4 `yaml.Marshal(value)`. Defaults match Marshal exactly: `indent: 4`, `lineWidth: -1` (never fold).
 * Pass `lineWidth: 80` for the folding of yaml.v3 / go-yaml `WithLineWidth(80)` encoders (e.g. Talos'
 * extensions.yaml).
 */
export function marshal(value: unknown, opts: MarshalOptions = {}): string {
  return emitDocument(represent(value), opts);
}

/** Build a Go-map-like `Map` from a plain object (its keys will be emitted sorted). */
export function goMap(obj: Record<string, unknown>): Map<string, unknown> {
  return new Map(Object.entries(obj));
}

/**
 * The style go-yaml ends up using for the string `s` as a block mapping value (or, with `simpleKey`, as a
 * mapping key): 'plain', 'single' ('…'), 'double' ("…") or 'literal' (| / |- block).
 */
export function scalarStyle(s: string, opts: { simpleKey?: boolean } = {}): ScalarStyle {
  const cps = codePoints(s);
  return selectStyle(requestedStringStyle(s), analyzeScalar(cps), cps.length, { flow: false, simpleKey: !!opts.simpleKey });
}

/** True when go-yaml writes the string `s` (as a mapping value) in single or double quotes. */
export function needsQuoting(s: string): boolean {
  const st = scalarStyle(s);
  return st === 'single' || st === 'double';
}
