/**
 * Validator syntax of RFC 9110 §8.8: entity tags (and lists of them, as in If-Match / If-None-Match) and HTTP-dates.
 * Parsers answer `undefined` for anything that is not the grammar; callers decide what an invalid field means.
 */

/** `"opaque"` or `W/"opaque"`; `tag` keeps the quotes, so it compares (and prints) as the wire form without `W/`. */
export interface EntityTag {
  weak: boolean;
  tag: string;
}

/** Validators of the selected representation; either may be unknown. */
export interface RepresentationValidators {
  /** the ETag field value as sent, e.g. `"sha256:…"` or `W/"x"` */
  etag?: string;
  /** Last-Modified, in ms since the epoch (compared at one-second precision, as HTTP-dates carry) */
  lastModified?: number;
}

/** etagc = %x21 / %x23-7E / obs-text (no DQUOTE, no controls, no space) */
const ENTITY_TAG = /^(W\/)?("[\x21\x23-\x7e\x80-\xff]*")$/;

export function parseEntityTag(value: string): EntityTag | undefined {
  const m = ENTITY_TAG.exec(value.trim());
  return m ? { weak: m[1] !== undefined, tag: m[2] } : undefined;
}

/**
 * `*` or a comma-separated list of entity tags (empty elements allowed, RFC 9110 §5.6.1.2). `undefined` for an invalid
 * field value. Commas inside a quoted tag are not separators.
 */
export function parseEntityTagList(value: string): '*' | EntityTag[] | undefined {
  const v = value.trim();
  if (v === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  const skipOws = () => {
    while (v[i] === ' ' || v[i] === '\t') i++;
  };
  while (i < v.length) {
    skipOws();
    if (v[i] === ',') {
      i++;
      continue;
    }
    if (i >= v.length) break;
    const start = i;
    if (v.startsWith('W/', i)) i += 2;
    if (v[i] !== '"') return undefined;
    const close = v.indexOf('"', i + 1);
    if (close < 0) return undefined;
    const tag = parseEntityTag(v.slice(start, close + 1));
    if (!tag) return undefined;
    tags.push(tag);
    i = close + 1;
    skipOws();
    if (i < v.length && v[i] !== ',') return undefined;
  }
  return tags.length ? tags : undefined;
}

/** Strong comparison (§8.8.3.2): both strong and the same opaque tag. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.tag === b.tag;
}

/** Weak comparison (§8.8.3.2): the same opaque tag, weakness ignored. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.tag === b.tag;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete) */
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
/** `Sun Nov  6 08:49:37 1994` (obsolete) */
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

function utc(year: number, month: string, day: number, h: string, m: string, s: string): number | undefined {
  const mon = MONTHS.indexOf(month);
  const [hh, mm, ss] = [Number(h), Number(m), Number(s)];
  // 60 allows a leap second (RFC 9110 §5.6.7); Date folds it into the next minute
  if (hh > 23 || mm > 59 || ss > 60) return undefined;
  const t = Date.UTC(year, mon, day, hh, mm, ss);
  const d = new Date(t);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== mon || d.getUTCDate() !== day) return undefined;
  return t;
}

/**
 * An HTTP-date (§5.6.7) in any of its three forms, in ms since the epoch. A two-digit RFC 850 year more than 50 years
 * in the future is taken as the most recent past year with those digits.
 */
export function parseHttpDate(value: string, now = Date.now()): number | undefined {
  const v = value.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m) return utc(Number(m[3]), m[2], Number(m[1]), m[4], m[5], m[6]);
  m = RFC850_DATE.exec(v);
  if (m) {
    let year = 2000 + Number(m[3]);
    if (year > new Date(now).getUTCFullYear() + 50) year -= 100;
    return utc(year, m[2], Number(m[1]), m[4], m[5], m[6]);
  }
  m = ASCTIME_DATE.exec(v);
  if (m) return utc(Number(m[6]), m[1], Number(m[2].trim()), m[3], m[4], m[5]);
  return undefined;
}

/** IMF-fixdate, the form to send (Last-Modified, Date). */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** HTTP-dates have one-second precision: compare whole seconds. */
export function httpSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
