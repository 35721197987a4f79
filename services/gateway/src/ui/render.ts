/**
 * The wizard's HTML, rendered from a validated state (pure: everything the page shows is passed in). Each step is a
 * `<fieldset>` inside `<form id="wizard-form" method="get" action="/">`, so every step works as a plain GET form
 * without JavaScript; the script only swaps the form's content in place.
 */
import type { ExtensionEntry } from '@factory/catalog';
import { parseSemver, SbcInfo } from '@factory/talos';
import { html, Html, HtmlValue, flag } from './html';
import { LOCALE_NAMES, LOCALES, Translate } from './i18n';
import { AssetLink, FinalModel } from './final';
import {
  backState,
  bootloaderOffered,
  BOOTLOADERS,
  cloudPlatformsFor,
  defaultVersion,
  embeddedConfigOffered,
  hiddenFields,
  NO_EXTENSIONS,
  overlayOptionsOffered,
  platformInfo,
  secureBootOffered,
  semverOf,
  stateUrl,
  StepId,
  stepPosition,
  TARGETS,
  versionsFor,
  WizardState,
} from './state';

export interface PageContext {
  t: Translate;
  locale: string;
  /** `/css/wizard.css?v=…`, `/js/wizard.js?v=…` */
  cssUrl: string;
  jsUrl: string;
  serverTag: string;
  /** the current page's query without `lang` (for the language links) */
  query: string;
}

/** Everything a step needs besides the state. */
export interface StepContext {
  t: Translate;
  /** offered versions, `v`-prefixed */
  versions: string[];
  secureBoot: boolean;
  /** the version's extensions (extensions step) */
  extensions?: ExtensionEntry[];
  /** extension search text */
  search?: string;
  /** embedded machine configuration to show (customization step) */
  embeddedConfig?: string;
  /** the boards the version's catalog has overlays for (board step, boardsFor) */
  boards?: SbcInfo[];
  /** final page */
  final?: FinalView;
}

export interface AssetStatus {
  /** bytes, when already built */
  size?: number;
}

export interface FinalView {
  model: FinalModel;
  yaml: string;
  /** per asset path: built (size) or not; absent when unknown */
  status: Map<string, AssetStatus>;
  /** talosctl binaries: file name → URL */
  talosctl: Array<{ file: string; url: string }>;
  /** absolute URLs of the key links */
  cosignKeyUrl: string;
  secureBootCertUrl?: string;
}

// --- page -------------------------------------------------------------------------------------------------------

export function page(ctx: PageContext, title: string, content: Html, o: { status?: 'error' } = {}): string {
  const { t } = ctx;
  const languages = Object.keys(LOCALES).map((code) => {
    const href = `/?${new URLSearchParams([...new URLSearchParams(ctx.query), ['lang', code]]).toString()}`;
    return code === ctx.locale
      ? html`<li><span aria-current="true" lang="${code}">${LOCALE_NAMES[code]}</span></li>`
      : html`<li><a href="${href}" lang="${code}" hreflang="${code}">${LOCALE_NAMES[code]}</a></li>`;
  });
  // The empty `data:` icon keeps browsers from asking for /favicon.ico (a 404 in the console on every first visit).
  return html`<!doctype html>
<html lang="${ctx.locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${title} · ${t('app.title')}</title>
<link rel="stylesheet" href="${ctx.cssUrl}">
<script src="${ctx.jsUrl}" defer></script>
</head>
<body>
<a class="skip" href="#wizard">${t('app.skip')}</a>
<header class="site">
<h1 class="brand">${t('app.title')}</h1>
<nav aria-label="${t('app.language')}"><ul class="langs">${languages}</ul></nav>
</header>
<main id="wizard" data-msg-copied="${t('final.copied')}" data-msg-queued="${t('final.queued')}" data-msg-failed="${t('final.failed')}" data-msg-built="${t('final.built')}">
${o.status === 'error' ? content : html`<form id="wizard-form" method="get" action="/">${content}</form>`}
</main>
<footer class="site"><p>${t('app.footer', { tag: ctx.serverTag })} · <a href="/llms.txt">llms.txt</a></p></footer>
</body>
</html>
`.text;
}

/** A 400/404 page: the one-line message and a way back to the start. */
export function errorContent(t: Translate, status: number, message: string): Html {
  return html`<section class="error" role="alert" aria-labelledby="error-title">
<h2 id="error-title">${status === 404 ? t('error.notFoundTitle') : t('error.title')}</h2>
<p class="message">${message}</p>
<p><a href="/">${t('nav.startOver')}</a></p>
</section>`;
}

// --- steps ---------------------------------------------------------------------------------------------------

const STEP_TITLES: Record<Exclude<StepId, 'final'>, Parameters<Translate>[0]> = {
  hardware: 'hardware.title',
  version: 'versions.title',
  cloud: 'cloud.title',
  sbc: 'sbc.title',
  arch: 'arch.title',
  extensions: 'extensions.title',
  customization: 'customization.title',
};

export function stepTitle(t: Translate, step: StepId): string {
  return step === 'final' ? t('final.title') : t(STEP_TITLES[step]);
}

function hidden(fields: Array<[string, string]>): Html[] {
  return fields.map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
}

function progress(t: Translate, s: WizardState, step: StepId): Html {
  const { index, count } = stepPosition(s, step);
  return html`<p class="progress" id="wizard-progress">${t('nav.stepOf', { index, count })}</p>`;
}

function nav(t: Translate, s: WizardState, o: { postNext?: boolean; next?: boolean } = {}): Html {
  const back = backState(s);
  const backLink = back ? html`<a class="back button secondary" href="${stateUrl(back)}" rel="prev">${t('nav.back')}</a>` : html`<span></span>`;
  const next =
    o.next === false
      ? html`<a class="button secondary" href="/">${t('nav.startOver')}</a>`
      : o.postNext
        ? html`<button type="submit" name="step-next" formmethod="post" formaction="/ui/wizard">${t('nav.next')}</button>`
        : html`<button type="submit" name="step-next">${t('nav.next')}</button>`;
  return html`<div class="nav">${backLink}${next}</div>`;
}

/** The form's inner HTML for a state's current step (what `POST /ui/wizard` returns). */
export function stepContent(s: WizardState, step: StepId, ctx: StepContext): Html {
  const { t } = ctx;
  const head = progress(t, s, step);
  if (step === 'final') return html`${head}${finalContent(s, ctx)}${nav(t, s, { next: false })}`;
  const body = stepBody(s, step, ctx);
  return html`${head}${hidden(hiddenFields(s, step))}<fieldset class="step step-${step}"><legend><h2 class="step-title">${stepTitle(t, step)}</h2></legend>${body}</fieldset>${nav(t, s, {
    postNext: step === 'customization' && embeddedConfigOffered(s.version),
  })}`;
}

function stepBody(s: WizardState, step: Exclude<StepId, 'final'>, ctx: StepContext): Html {
  switch (step) {
    case 'hardware':
      return hardwareStep(s, ctx.t);
    case 'version':
      return versionStep(s, ctx);
    case 'cloud':
      return cloudStep(s, ctx.t);
    case 'sbc':
      return sbcStep(s, ctx.t, ctx.boards ?? []);
    case 'arch':
      return archStep(s, ctx);
    case 'extensions':
      return extensionsStep(s, ctx);
    case 'customization':
      return customizationStep(s, ctx);
  }
}

function radio(name: string, value: string, checked: boolean, label: HtmlValue, description?: HtmlValue): Html {
  const id = `${name}-${value}`.replace(/[^A-Za-z0-9_-]/g, '_');
  return html`<div class="choice"><input type="radio" id="${id}" name="${name}" value="${value}"${flag('checked', checked)}${flag('required', true)}><label for="${id}">${label}${
    description ? html`<span class="description">${description}</span>` : ''
  }</label></div>`;
}

function hardwareStep(s: WizardState, t: Translate): Html {
  const chosen = TARGETS.includes(s.selected.target as never) ? s.selected.target : 'metal';
  const labels = { metal: t('hardware.metal'), cloud: t('hardware.cloud'), sbc: t('hardware.sbc') } as const;
  const descriptions = { metal: t('hardware.metalDescription'), cloud: t('hardware.cloudDescription'), sbc: t('hardware.sbcDescription') } as const;
  return html`<div class="choices">${TARGETS.map((target) => radio('target', target, target === chosen, labels[target], descriptions[target]))}</div>`;
}

/** `X.Y` for stable versions, `X.Y-pre` for pre-releases (anchor §9). */
function versionGroup(v: string): string {
  const s = semverOf(v);
  return `${s.major}.${s.minor}${s.prerelease.length ? '-pre' : ''}`;
}

export function versionDoc(t: Translate, version: string | undefined): Html {
  const v = version ? parseSemver(version) : undefined;
  if (!v) return html`<div id="version-doc" class="version-doc"></div>`;
  const xy = `v${v.major}.${v.minor}`;
  return html`<div id="version-doc" class="version-doc" aria-live="polite"><a class="doc" rel="external noopener" href="https://docs.siderolabs.com/talos/${xy}/getting-started/whats-new-in-talos">${t(
    'versions.whatsNew',
    { version: xy },
  )}</a> · <a class="doc" rel="external noopener" href="https://docs.siderolabs.com/talos/${xy}/getting-started/support-matrix">${t('versions.supportMatrix', { version: xy })}</a></div>`;
}

function versionStep(s: WizardState, ctx: StepContext): Html {
  const { t } = ctx;
  const versions = versionsFor(s.target, ctx.versions);
  const chosen = s.selected.version && versions.includes(s.selected.version) ? s.selected.version : defaultVersion(versions);
  const groups = new Map<string, string[]>();
  for (const v of versions) {
    const g = versionGroup(v);
    groups.set(g, [...(groups.get(g) ?? []), v]);
  }
  const options = [...groups].map(
    ([label, vs]) => html`<optgroup label="${label}">${vs.map((v) => html`<option value="${v}"${flag('selected', v === chosen)}>${v}</option>`)}</optgroup>`,
  );
  return html`<p class="hint">${t('versions.hint')}</p><label for="version">${t('versions.label')}</label><select id="version" name="version" required>${options}</select>${versionDoc(t, chosen)}`;
}

function cloudStep(s: WizardState, t: Translate): Html {
  const platforms = cloudPlatformsFor(semverOf(s.version as string));
  const chosen = platforms.some((p) => p.name === s.selected.platform) ? s.selected.platform : 'aws';
  return html`<div class="choices columns">${platforms.map((p) => radio('platform', p.name, p.name === chosen, p.label, t('cloud.arches', { arches: p.arches.join(', ') })))}</div>`;
}

function sbcStep(s: WizardState, t: Translate, boards: SbcInfo[]): Html {
  const chosen = boards.some((b) => b.name === s.selected.board) ? s.selected.board : (boards.find((b) => b.name === 'rpi_generic') ?? boards[0])?.name;
  if (!boards.length) return html`<p class="hint">${t('sbc.none')}</p>`;
  return html`<p class="hint">${t('sbc.hint')}</p><div class="choices columns">${boards.map((b) => radio('board', b.name, b.name === chosen, b.label, b.name))}</div>`;
}

function archStep(s: WizardState, ctx: StepContext): Html {
  const { t } = ctx;
  const arches = platformInfo(s.platform ?? 'metal')?.arches ?? ['amd64', 'arm64'];
  const chosen = arches.includes(s.selected.arch as never) ? s.selected.arch : arches[0];
  const labels = { amd64: t('arch.amd64'), arm64: t('arch.arm64') };
  const sb = secureBootOffered(s, ctx.secureBoot)
    ? html`<div class="toggle"><input type="checkbox" id="secureboot" name="secureboot" value="true"${flag('checked', !!s.selected.secureboot)}><label for="secureboot">${t(
        'arch.secureboot',
      )}<span class="description">${t('arch.securebootDescription')}</span></label></div>`
    : '';
  return html`<div class="choices">${arches.map((a) => radio('arch', a, a === chosen, labels[a]))}</div>${sb}`;
}

/** The extension list (also the `POST /ui/extensions-list` answer): search matches, selected ones always kept. */
export function extensionsList(t: Translate, extensions: ExtensionEntry[], selected: string[], search: string): Html {
  const needle = search.trim().toLowerCase();
  const chosen = new Set(selected);
  const shown = extensions.filter((e) => chosen.has(e.name) || !needle || e.ref.toLowerCase().includes(needle) || e.description.toLowerCase().includes(needle));
  const items = shown.map((e, i) => {
    const tag = e.ref.includes(':') ? e.ref.slice(e.ref.lastIndexOf(':') + 1) : e.ref;
    const id = `ext-${i}`;
    return html`<li><input type="checkbox" id="${id}" name="extensions" value="${e.name}"${flag('checked', chosen.has(e.name))} aria-describedby="${id}-d"><label for="${id}">${e.name} <span class="tag">(${tag})</span></label><p class="description" id="${id}-d">${e.description}</p></li>`;
  });
  return html`<div id="extensions-list" class="extensions-list" aria-live="polite"><p class="count">${t('extensions.count', { shown: shown.length, total: extensions.length })}</p><ul class="extensions">${items}</ul></div>`;
}

function extensionsStep(s: WizardState, ctx: StepContext): Html {
  const { t } = ctx;
  const selected = (s.selected.extensions ?? []).filter((e) => e !== NO_EXTENSIONS);
  return html`<input type="hidden" name="extensions" value="${NO_EXTENSIONS}"><p class="hint">${t('extensions.hint')}</p><div class="search"><label for="extensions-search">${t(
    'extensions.search',
  )}</label><input type="search" id="extensions-search" name="search" value="${ctx.search ?? ''}" autocomplete="off"><button type="submit" name="step-search" class="secondary">${t(
    'extensions.searchButton',
  )}</button></div>${extensionsList(t, ctx.extensions ?? [], selected, ctx.search ?? '')}`;
}

function customizationStep(s: WizardState, ctx: StepContext): Html {
  const { t } = ctx;
  const cmdline = html`<div class="field"><label for="cmdline">${t('customization.cmdline')}</label><input type="text" id="cmdline" name="cmdline" value="${
    s.selected.cmdline ?? ''
  }" placeholder="-console console=tty0" spellcheck="false" autocomplete="off" aria-describedby="cmdline-hint"><p class="hint" id="cmdline-hint">${t('customization.cmdlineHint')}</p></div>`;
  const bootloader = bootloaderOffered(s.version)
    ? html`<fieldset class="field"><legend>${t('customization.bootloader')}</legend><div class="choices inline">${BOOTLOADERS.filter((b) => !(b === 'grub' && s.secureboot)).map((b) =>
        radio('bootloader', b, b === (s.selected.bootloader ?? 'auto'), b === 'auto' ? t('customization.bootloaderAuto') : b),
      )}</div></fieldset>`
    : '';
  const embedded = embeddedConfigOffered(s.version)
    ? html`<div class="field"><label for="embedded-config">${t('customization.embeddedConfig')}</label><textarea id="embedded-config" name="embedded-config" rows="6" spellcheck="false" aria-describedby="embedded-hint">${
        ctx.embeddedConfig ?? ''
      }</textarea><p class="hint" id="embedded-hint">${t('customization.embeddedConfigHint')}</p></div>`
    : '';
  const overlay = overlayOptionsOffered(s)
    ? html`<div class="field"><label for="overlay-options">${t('customization.overlayOptions')}</label><textarea id="overlay-options" name="overlay-options" rows="4" spellcheck="false" aria-describedby="overlay-hint">${
        s.selected.overlayOptions ?? ''
      }</textarea><p class="hint" id="overlay-hint">${t('customization.overlayOptionsHint')}</p></div>`
    : '';
  return html`<input type="hidden" name="cmdline-set" value="1">${cmdline}${bootloader}${embedded}${overlay}`;
}

// --- final page ------------------------------------------------------------------------------------------------

function copyButton(t: Translate, text: string, label: string): Html {
  return html`<button type="button" class="copy" data-copy="${text}" aria-label="${t('final.copyLabel', { what: label })}">${t('final.copy')}</button>`;
}

function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u ? v.toFixed(1) : v} ${units[u]}`;
}

function assetItem(t: Translate, a: AssetLink, view: FinalView): Html {
  const status = view.status.get(a.path);
  const state =
    status === undefined
      ? ''
      : status.size !== undefined
        ? html`<span class="status built" data-state="done">${t('final.built', { size: formatSize(status.size) })}</span>`
        : html`<span class="status unbuilt" data-state="none">${t('final.onRequest')}</span> <button type="button" class="prepare secondary" data-asset="${a.path}">${t(
            'final.prepare',
          )}</button><span class="build-progress" hidden><progress max="100" value="0" aria-label="${t('final.buildProgress', { asset: a.path })}"></progress> <span class="stage"></span></span>`;
  return html`<li class="asset" data-asset="${a.path}"><span class="asset-label">${t(a.label)}</span> <a href="${a.url}" download>${a.path}</a> <a class="checksum" href="${a.url}.sha256">(sha256)</a> ${state}</li>`;
}

function section(id: string, title: string, body: HtmlValue): Html {
  return html`<section class="final-section" aria-labelledby="${id}"><h3 id="${id}">${title}</h3>${body}</section>`;
}

function codeLine(t: Translate, text: string, label: string, cls = ''): Html {
  return html`<div class="code-line"><code${cls ? html` class="${cls}"` : ''}>${text}</code>${copyButton(t, text, label)}</div>`;
}

function finalContent(s: WizardState, ctx: StepContext): Html {
  const { t } = ctx;
  const view = ctx.final as FinalView;
  const m = view.model;
  const firstBoot: Html[] = [];
  if (m.diskImages.length) firstBoot.push(html`<h4>${t('final.diskImage')}</h4><ul class="assets">${m.diskImages.map((a) => assetItem(t, a, view))}</ul>`);
  if (m.isos.length) firstBoot.push(html`<h4>${t('final.iso')}</h4><ul class="assets">${m.isos.map((a) => assetItem(t, a, view))}</ul>`);
  if (m.pxeUrl) firstBoot.push(html`<h4>${t('final.pxe')}</h4><p class="hint">${t('final.pxeHint')}</p>${codeLine(t, m.pxeUrl, t('final.pxe'), 'pxe-url')}`);
  const installer = (ref: string, label: string) => html`<div class="code-line"><code class="installer-ref">${ref}</code>${copyButton(t, ref, label)}</div>`;
  const sections: Html[] = [
    section('sec-first-boot', t('final.firstBoot'), firstBoot),
    m.installRef ? section('sec-install', t('final.install'), html`<p class="hint">${t('final.installHint')}</p>${installer(m.installRef, t('final.install'))}`) : html``,
    section('sec-upgrade', t('final.upgrade'), html`<p class="hint">${t('final.upgradeHint')}</p>${installer(m.upgradeRef, t('final.upgrade'))}${codeLine(t, `talosctl upgrade --image ${m.upgradeRef}`, t('final.upgrade'))}`),
    m.localClusterCommand ? section('sec-local', t('final.localCluster'), codeLine(t, m.localClusterCommand, t('final.localCluster'))) : html``,
    m.booterCommand ? section('sec-booter', t('final.booter'), codeLine(t, m.booterCommand, t('final.booter'))) : html``,
    section(
      'sec-docs',
      t('final.documentation'),
      html`<ul class="docs">${m.docs.map((d) => html`<li><a class="doc" rel="external noopener" href="${d.url}">${t(d.label)}</a></li>`)}</ul>`,
    ),
  ];
  const extra: Html[] = [];
  if (m.extraAssets.length) extra.push(html`<ul class="assets">${m.extraAssets.map((a) => assetItem(t, a, view))}</ul>`);
  if (view.talosctl.length)
    extra.push(html`<h4>${t('final.talosctl')}</h4><ul class="talosctl">${view.talosctl.map((f) => html`<li><a href="${f.url}" download>${f.file}</a></li>`)}</ul>`);
  const keys = html`<h4>${t('final.keys')}</h4><ul class="keys"><li><a href="${view.cosignKeyUrl}">${t('final.cosignKey')}</a></li>${
    view.secureBootCertUrl ? html`<li><a href="${view.secureBootCertUrl}">${t('final.secureBootCert')}</a></li>` : ''
  }</ul>`;
  sections.push(section('sec-extra', t('final.extraAssets'), html`${extra}${keys}`));
  return html`<section class="final" data-schematic="${m.schematicId}" data-version="${m.versionTag}" aria-labelledby="final-title"><h2 id="final-title" class="step-title">${t('final.title')}</h2>
<p class="hint">${t('final.hint', { version: m.versionTag })}</p>
<div class="code-line schematic"><span>${t('final.schematicId')}:</span> <code id="schematic-id">${m.schematicId}</code>${copyButton(t, m.schematicId, t('final.schematicId'))}</div>
<details class="yaml" open><summary>${t('final.yaml')}</summary><pre id="schematic-yaml">${view.yaml}</pre>${copyButton(t, view.yaml, t('final.yaml'))}</details>
${sections}
<p class="live" aria-live="polite" id="copy-status"></p>
</section>`;
}
