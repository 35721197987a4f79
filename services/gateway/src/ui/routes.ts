/**
 * The web UI's routes (anchor-api §9): `GET|HEAD /` renders the step a query selects, `POST /ui/wizard` returns a
 * step's form content for in-place swaps (with `Hx-Push-Url`), `POST /ui/extensions-list` and `GET /ui/version-doc`
 * return fragments, `/css/wizard.css` and `/js/wizard.js` are the only assets. Thin: reading the form, the catalog
 * answers and the final page's lookups; everything shown is rendered by ./render.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Request, Response } from 'express';
import { AssetLookup, assetKey, assetObjectKey, CatalogView, findAsset, resolveAssetProfile } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import { RateLimitedError } from '@factory/ratelimit';
import { readRequestBody } from '@factory/http';
import { canonicalYaml, parseSchematic } from '@factory/schematic';
import { contentTypeFor, parseAssetPath } from '@factory/talos';
import type { JobCaller } from '../app';
import { sendBody, sendError, Routes } from '../compat';
import { finalModel, pageAssets } from './final';
import { cookieValue, resolveLocale, supportedLocale, translator, Translate } from './i18n';
import { AssetStatus, errorContent, extensionsList, FinalView, page, stepContent, StepContext, stepTitle, versionDoc } from './render';
import { preloadFrom, wizardSchematic, withPreload } from './schematic';
import { boardsFor, currentStep, embeddedConfigOffered, FIELD_LIMITS, NO_EXTENSIONS, readForm, stateUrl, semverOf, StepId, validateState, versionsFor, WizardInputError, WizardState } from './state';

/** The Content-Security-Policy of every UI answer: only this origin's script and style, no inline code. */
export const UI_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** A form body: every field at its limit, and then some. */
const MAX_FORM_BYTES = 512 * 1024;
/** How long the final page waits for the talosctl listing (the first one of a version reads its image). */
const TALOSCTL_LISTING_WAIT_MS = 3000;
const LANG_COOKIE_MAX_AGE = 31536000;

export interface UiOptions {
  jobs: Pick<JobCaller, 'call'>;
  catalog: CatalogView;
  /** where published assets are looked up (whether an asset of the final page is built already); absent: not shown */
  store?: AssetLookup;
  /** the talosctl binaries of a version (absent: not listed) */
  talosctlFiles?: (versionTag: string) => Promise<string[]>;
  externalUrl: string;
  externalPxeUrl: string;
  serverTag: string;
}

export interface UiDeps extends UiOptions {
  /** as `POST /schematics` does it for `req`'s client: same limits, same job */
  createSchematic(req: Request, res: Response, yaml: string): Promise<{ id: string; yaml: string }>;
}

/** The directory of wizard.css and wizard.js: next to this module in src/, or in src/ when running from dist/. */
function staticDir(): string {
  const candidates = [path.join(__dirname, 'static'), path.resolve(__dirname, '../../src/ui/static')];
  for (const dir of candidates) {
    try {
      readFileSync(path.join(dir, 'wizard.js'));
      return dir;
    } catch {
      // next
    }
  }
  throw new Error(`wizard static files not found in ${candidates.join(' or ')}`);
}

export interface StaticAsset {
  body: Buffer;
  contentType: string;
  /** `?v=` cache buster: the first hex digits of its SHA-256 */
  version: string;
}

export function loadStaticAssets(): Record<'css' | 'js', StaticAsset> {
  const dir = staticDir();
  const load = (file: string, contentType: string): StaticAsset => {
    const body = readFileSync(path.join(dir, file));
    return { body, contentType, version: createHash('sha256').update(body).digest('hex').slice(0, 12) };
  };
  return { css: load('wizard.css', 'text/css; charset=utf-8'), js: load('wizard.js', 'text/javascript; charset=utf-8') };
}

function uiHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', UI_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
  res.vary('Cookie');
  res.vary('Accept-Language');
}

function queryOfRequest(req: Request): URLSearchParams {
  const q = req.originalUrl.indexOf('?');
  return new URLSearchParams(q >= 0 ? req.originalUrl.slice(q + 1) : '');
}

/** The non-JavaScript search button keeps the step open: its checked extensions are remembered, not submitted. */
function searchKeepsStep(params: URLSearchParams): URLSearchParams {
  if (!params.has('step-search')) return params;
  const out = new URLSearchParams();
  for (const [name, value] of params) {
    if (name === 'step-search') continue;
    if (name === 'extensions') {
      if (value !== NO_EXTENSIONS) out.append('selected-extensions', value);
    } else if (name !== 'selected-extensions') out.append(name, value);
  }
  return out;
}

interface Prepared {
  state: WizardState;
  step: StepId;
  ctx: StepContext;
  /** the step's shareable URL */
  url: string;
}

export function registerUiRoutes(routes: Routes, d: UiDeps): void {
  const assets = loadStaticAssets();
  const base = d.externalUrl.replace(/\/+$/, '');

  const localeOf = (req: Request, queryLang?: string) =>
    resolveLocale({ query: queryLang, cookie: cookieValue(req.header('cookie'), 'lang'), acceptLanguage: req.header('accept-language') });

  const schematicYaml = async (id: string): Promise<string> => {
    try {
      return (await d.jobs.call('schematic.get', { id })).yaml;
    } catch (err) {
      if (err instanceof FactoryError && err.status === 404) throw new FactoryError(404, `schematic ID ${JSON.stringify(id)} not found`);
      throw err;
    }
  };

  async function assetStatuses(state: WizardState, schematicId: string, yaml: string, paths: string[]): Promise<Map<string, AssetStatus>> {
    const out = new Map<string, AssetStatus>();
    if (!d.store) return out;
    const store = d.store;
    const schematic = parseSchematic(yaml);
    await Promise.all(
      paths.map(async (p) => {
        try {
          const profile = await resolveAssetProfile(
            { schematicId, schematic, schematicYaml: yaml, rawVersion: `v${state.version}`, parsePath: () => parseAssetPath(p), assetPath: () => p },
            d.catalog,
          );
          const found = await findAsset(store, assetObjectKey(assetKey(profile)), contentTypeFor(p));
          out.set(p, found ? { size: found.record.size } : {});
        } catch {
          // unknown: the page shows the link only
        }
      }),
    );
    return out;
  }

  async function talosctl(versionTag: string): Promise<Array<{ file: string; url: string }>> {
    if (!d.talosctlFiles) return [];
    const timeout = new Promise<string[]>((resolve) => setTimeout(() => resolve([]), TALOSCTL_LISTING_WAIT_MS).unref());
    const files = await Promise.race([d.talosctlFiles(versionTag).catch(() => []), timeout]);
    return files.map((file) => ({ file, url: `${base}/talosctl/${versionTag}/${file}` }));
  }

  /** The form's fields validated against the catalog (and whether the factory signs Secure Boot assets). */
  async function validated(params: URLSearchParams): Promise<{ state: WizardState; versions: string[]; secureBoot: boolean }> {
    const versions = await d.catalog.versions();
    const secureBoot = !!(await d.catalog.secureBoot?.());
    return { state: await validateState(readForm(params), { versions, secureBoot, extensions: (v) => d.catalog.extensions(v), overlays: (v) => d.catalog.overlays(v) }), versions, secureBoot };
  }

  async function prepare(req: Request, res: Response, params: URLSearchParams, t: Translate): Promise<Prepared> {
    const checked = await validated(params);
    const { versions, secureBoot } = checked;
    let state = checked.state;
    let preloadedEmbedded: string | undefined;
    if (state.schematicId) {
      const preload = preloadFrom(parseSchematic(await schematicYaml(state.schematicId)));
      state = withPreload(state, preload);
      preloadedEmbedded = preload.embeddedConfig;
    }
    const embedded = embeddedConfigOffered(state.version) ? (state.embeddedConfig ?? preloadedEmbedded) : undefined;
    const step = currentStep(state);
    const ctx: StepContext = { t, versions, secureBoot };
    let url = stateUrl(state);
    if (step === 'sbc') {
      ctx.boards = boardsFor(semverOf(state.version as string), await d.catalog.overlays(`v${state.version}`));
    } else if (step === 'extensions') {
      ctx.extensions = await d.catalog.extensions(`v${state.version}`);
      ctx.search = (params.get('search') ?? '').slice(0, FIELD_LIMITS.search);
    } else if (step === 'customization') {
      ctx.embeddedConfig = embedded;
    } else if (step === 'final') {
      const schematic = wizardSchematic(state, embedded);
      const created = await d.createSchematic(req, res, canonicalYaml(schematic));
      const model = finalModel({ state, schematicId: created.id, externalUrl: d.externalUrl, externalPxeUrl: d.externalPxeUrl });
      const [status, talosctlFiles] = await Promise.all([
        assetStatuses(state, created.id, created.yaml, pageAssets(model).map((a) => a.path)),
        model.talosctlListUrl ? talosctl(model.versionTag) : Promise.resolve([]),
      ]);
      const view: FinalView = {
        model,
        yaml: created.yaml,
        status,
        talosctl: talosctlFiles,
        cosignKeyUrl: `${base}/oci/cosign/signing-key.pub`,
        ...(secureBoot ? { secureBootCertUrl: `${base}/secureboot/signing-cert.pem` } : {}),
      };
      ctx.final = view;
      // The embedded configuration never travels in a URL: the shareable URL names the schematic holding it.
      url = stateUrl(state, { schematicId: embedded ? created.id : null });
    }
    return { state, step, ctx, url };
  }

  const pageContext = (locale: string, query: URLSearchParams) => ({
    t: translator(locale),
    locale,
    cssUrl: `/css/wizard.css?v=${assets.css.version}`,
    jsUrl: `/js/wizard.js?v=${assets.js.version}`,
    serverTag: d.serverTag,
    query: query.toString(),
  });

  /** Bad input and known failures as an HTML answer (page or fragment); anything else goes to the gateway's handler. */
  function failure(err: unknown, t: Translate, res: Response): { status: number; message: string } {
    if (err instanceof WizardInputError) return { status: 400, message: t(err.key, err.params) };
    if (err instanceof FactoryError) {
      if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      return { status: err.status, message: err.message };
    }
    throw err;
  }

  const sendHtml = (res: Response, status: number, body: string) => {
    uiHeaders(res);
    sendBody(res, status, 'text/html; charset=utf-8', body);
  };

  routes.add(['GET', 'HEAD'], '/', async (req, res) => {
    let params = queryOfRequest(req);
    let queryLang: string | undefined;
    if (params.has('lang')) {
      queryLang = params.get('lang') ?? '';
      if (!queryLang) {
        uiHeaders(res);
        sendError(res, 400, 'missing lang param');
        return;
      }
      params.delete('lang');
      const locale = supportedLocale(queryLang);
      if (locale) res.append('Set-Cookie', `lang=${locale}; Path=/; Max-Age=${LANG_COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax`);
      const rest = params.toString();
      res.setHeader('Hx-Redirect', rest ? `/?${rest}` : '/');
    }
    params = searchKeepsStep(params);
    const locale = localeOf(req, queryLang);
    const pctx = pageContext(locale, params);
    try {
      if (params.has('step-next')) {
        // a step's form submitted without the script: on to the step's own shareable URL (the one the script pushes)
        res.redirect(303, stateUrl((await validated(params)).state));
        return;
      }
      const p = await prepare(req, res, params, pctx.t);
      sendHtml(res, 200, page(pctx, stepTitle(pctx.t, p.step), stepContent(p.state, p.step, p.ctx)));
    } catch (err) {
      const { status, message } = failure(err, pctx.t, res);
      sendHtml(res, status, page(pctx, pctx.t('error.title'), errorContent(pctx.t, status, message), { status: 'error' }));
    }
  });

  routes.add(['POST'], '/ui/wizard', async (req, res) => {
    const params = searchKeepsStep(new URLSearchParams((await readRequestBody(req, res, MAX_FORM_BYTES)).toString('utf8')));
    const locale = localeOf(req);
    const t = translator(locale);
    const swap = req.header('hx-request') === 'true';
    try {
      const p = await prepare(req, res, params, t);
      if (!swap) {
        // a form posted without the script (the customization step, to keep the configuration out of the URL)
        res.redirect(303, p.url);
        return;
      }
      res.setHeader('Hx-Push-Url', p.url);
      res.setHeader('X-Wizard-Title', encodeURIComponent(`${stepTitle(t, p.step)} · ${t('app.title')}`));
      sendHtml(res, 200, stepContent(p.state, p.step, p.ctx).text);
    } catch (err) {
      const { status, message } = failure(err, t, res);
      if (swap) sendHtml(res, status, errorContent(t, status, message).text);
      else sendHtml(res, status, page(pageContext(locale, new URLSearchParams()), t('error.title'), errorContent(t, status, message), { status: 'error' }));
    }
  });

  routes.add(['POST'], '/ui/extensions-list', async (req, res) => {
    const params = new URLSearchParams((await readRequestBody(req, res, MAX_FORM_BYTES)).toString('utf8'));
    const t = translator(localeOf(req));
    try {
      const version = (params.get('version') ?? '').replace(/^v/, '');
      if (!versionsFor(undefined, await d.catalog.versions()).includes(version)) throw new WizardInputError('error.unknownVersion', { value: version });
      const search = (params.get('search') ?? '').slice(0, FIELD_LIMITS.search);
      const selected = params.getAll('extensions').filter((e) => e !== NO_EXTENSIONS).slice(0, FIELD_LIMITS.extensions);
      sendHtml(res, 200, extensionsList(t, await d.catalog.extensions(`v${version}`), selected, search).text);
    } catch (err) {
      const { status, message } = failure(err, t, res);
      sendHtml(res, status, errorContent(t, status, message).text);
    }
  });

  routes.add(['GET'], '/ui/version-doc', (req, res) => {
    const t = translator(localeOf(req));
    const version = String(req.query.version ?? '').slice(0, FIELD_LIMITS.scalar);
    sendHtml(res, 200, versionDoc(t, version.replace(/^v/, '')).text);
  });

  const serveStatic = (a: StaticAsset) => (req: Request, res: Response) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // versioned URLs (`?v=<hash>`) never change; others are revalidated after a short while
    res.setHeader('Cache-Control', req.query.v === a.version ? 'public, max-age=31536000, immutable' : 'public, max-age=300');
    sendBody(res, 200, a.contentType, a.body);
  };
  routes.add(['GET', 'HEAD'], '/css/wizard.css', serveStatic(assets.css));
  routes.add(['GET', 'HEAD'], '/js/wizard.js', serveStatic(assets.js));
}
