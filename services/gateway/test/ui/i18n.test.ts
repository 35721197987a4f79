/**
 * One catalogue per locale: every locale has every key of English (and no other), no empty text, the same
 * placeholders; every key the UI code names exists; the locale is resolved query → cookie → Accept-Language → en.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fromAcceptLanguage, LOCALES, resolveLocale, translator } from '../../src/ui/i18n';

const en = LOCALES.en as Record<string, string>;
const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test.each(Object.keys(LOCALES).filter((l) => l !== 'en'))('locale %s: no key missing or extra, same placeholders', (locale) => {
  const messages = LOCALES[locale] as Record<string, string>;
  expect(Object.keys(messages).sort()).toEqual(Object.keys(en).sort());
  for (const [key, text] of Object.entries(messages)) {
    expect(text.trim()).not.toBe('');
    expect([key, placeholders(text)]).toEqual([key, placeholders(en[key])]);
  }
});

test('every key the UI code names exists in the catalogue', () => {
  const dir = path.join(__dirname, '../../src/ui');
  const used = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(path.join(dir, file), 'utf8');
    for (const m of source.matchAll(/'((?:app|nav|hardware|versions|cloud|sbc|arch|extensions|customization|final|asset|docs|error)\.[A-Za-z]+)'/g)) used.add(m[1]);
  }
  expect(used.size).toBeGreaterThan(60);
  expect([...used].filter((k) => !(k in en))).toEqual([]);
});

test('resolution: query, then cookie, then Accept-Language, then English', () => {
  expect(resolveLocale({ query: 'fr', cookie: 'en', acceptLanguage: 'en' })).toBe('fr');
  expect(resolveLocale({ query: 'xx', cookie: 'fr' })).toBe('fr');
  expect(resolveLocale({ acceptLanguage: 'de-DE, fr-CA;q=0.9' })).toBe('fr');
  expect(resolveLocale({ acceptLanguage: 'fr;q=0, de' })).toBe('en');
  expect(fromAcceptLanguage('en;q=0.1, fr;q=0.5')).toBe('fr');
  expect(resolveLocale({})).toBe('en');
  expect(translator('fr')('nav.stepOf', { index: 2, count: 7 })).toBe('Étape 2 sur 7');
});
