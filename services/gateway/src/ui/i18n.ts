/**
 * The wizard's messages: one catalogue per locale (`locales/<tag>.json`, flat `key → text`, `{name}` placeholders),
 * English complete and the reference. The locale is chosen as the anchor does: `?lang=` → `lang` cookie →
 * `Accept-Language` → `en`.
 */
import en from './locales/en.json';
import fr from './locales/fr.json';

export type MessageKey = keyof typeof en;
export type Messages = Record<MessageKey, string>;

export const LOCALES: Readonly<Record<string, Messages>> = { en, fr };
export const DEFAULT_LOCALE = 'en';
/** Each locale's name in its own language, for the language switcher. */
export const LOCALE_NAMES: Readonly<Record<string, string>> = { en: 'English', fr: 'Français' };

export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

export function translator(locale: string): Translate {
  const messages = LOCALES[locale] ?? LOCALES[DEFAULT_LOCALE];
  return (key, params) => {
    const text = messages[key] ?? LOCALES[DEFAULT_LOCALE][key] ?? 'missing translation';
    return params ? text.replace(/\{(\w+)\}/g, (all, name: string) => (name in params ? String(params[name]) : all)) : text;
  };
}

/** A supported locale for a language tag (`fr-CA` → `fr`), or undefined. */
export function supportedLocale(tag: string | undefined): string | undefined {
  if (!tag) return undefined;
  const primary = tag.trim().toLowerCase().split(/[-_]/)[0];
  return primary && primary in LOCALES ? primary : undefined;
}

/** The first supported language of an `Accept-Language` header, by quality (RFC 9110 §12.5.4). */
export function fromAcceptLanguage(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const ranked = header
    .split(',')
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)).find(Boolean);
      return { tag, q: q ? Number(q[1]) : 1, index };
    })
    .filter((r) => r.q > 0 && !Number.isNaN(r.q))
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const r of ranked) {
    const locale = supportedLocale(r.tag);
    if (locale) return locale;
  }
  return undefined;
}

/** query → cookie → Accept-Language → en */
export function resolveLocale(o: { query?: string; cookie?: string; acceptLanguage?: string }): string {
  return supportedLocale(o.query) ?? supportedLocale(o.cookie) ?? fromAcceptLanguage(o.acceptLanguage) ?? DEFAULT_LOCALE;
}

/** The value of one cookie in a `Cookie` header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
