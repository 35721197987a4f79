/**
 * The real browser of the web UI proofs: Debian's Chromium (the `chromium` package; scripts/setup.sh installs it)
 * driven by playwright-core, which downloads no browser of its own. One browser is launched per suite (a cold start
 * costs about a second on two cores) and each flow gets a fresh context. Also here: axe-core run in a page,
 * screenshots at the desktop and phone widths, and a watch on dialogs and page errors.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { ROOT } from './factory';

/** Where the browser is; FACTORY_CHROMIUM_BIN overrides Debian's path. */
export const CHROMIUM_BIN = process.env.FACTORY_CHROMIUM_BIN ?? '/usr/bin/chromium';
export const chromiumPresent = existsSync(CHROMIUM_BIN);
export const CHROMIUM_MISSING = `${CHROMIUM_BIN} is absent (Debian's chromium package: bash scripts/setup.sh installs it)`;

/** Screenshots land here (gitignored): test-output/ui/<flow>-<step>-<width>.png. */
export const UI_OUTPUT_DIR = path.join(ROOT, 'test-output', 'ui');

export const VIEWPORTS = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
} as const;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    // /dev/shm is small in containers; no GPU here
    args: ['--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** What a page did that a healthy page never does: dialogs (answered by dismissing them) and uncaught errors. */
export interface PageWatch {
  dialogs: string[];
  errors: string[];
  /** console errors, among them Content-Security-Policy violations */
  consoleErrors: string[];
  /** responses of 400 and above, to name what a "Failed to load resource" console error was about */
  failedResources: string[];
}

export function watchPage(page: Page): PageWatch {
  const watch: PageWatch = { dialogs: [], errors: [], consoleErrors: [], failedResources: [] };
  page.on('dialog', (d) => {
    watch.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss().catch(() => undefined);
  });
  page.on('pageerror', (e) => watch.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') watch.consoleErrors.push(`${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) watch.failedResources.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return watch;
}

/** A context at the desktop size, with or without JavaScript, and one page in it watched. */
export async function openPage(browser: Browser, opts: { javaScript: boolean; locale?: string }): Promise<{ context: BrowserContext; page: Page; watch: PageWatch }> {
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop, javaScriptEnabled: opts.javaScript, locale: opts.locale ?? 'en-US' });
  const page = await context.newPage();
  return { context, page, watch: watchPage(page) };
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

export interface AxeReport {
  /** serious and critical violations: the proofs require none */
  blocking: AxeViolation[];
  /** minor and moderate ones, reported in the test output */
  other: AxeViolation[];
}

let axeSource: string | undefined;

/**
 * Runs axe-core (WCAG 2.x A/AA and best practices) on the page as it is now. It needs the page's JavaScript: with
 * it disabled the engine loads but its run never settles, so the proofs audit the JavaScript flows, whose steps are
 * the same server-rendered markup as the plain GETs.
 */
export async function runAxe(page: Page): Promise<AxeReport> {
  // (the callbacks run in the page; this project compiles without the DOM library, hence globalThis)
  // Injected by evaluation, not as a <script> tag: the pages' Content-Security-Policy (script-src 'self') rightly
  // refuses inline scripts, and the audit must not weaken it.
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(`${axeSource};undefined`);
  const violations = await page.evaluate(async () => {
    type Axe = { run(ctx: unknown, opts: object): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> }> };
    const page = globalThis as unknown as { axe: Axe; document: unknown };
    const result = await page.axe.run(page.document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.map(String).join(' ')) }));
  });
  const isBlocking = (v: AxeViolation) => v.impact === 'serious' || v.impact === 'critical';
  return { blocking: violations.filter(isBlocking), other: violations.filter((v) => !isBlocking(v)) };
}

export function formatViolations(vs: AxeViolation[]): string {
  return vs.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.targets.slice(0, 4).join(', ')}${v.targets.length > 4 ? ', …' : ''}`).join('\n');
}

export interface Screenshot {
  file: string;
  /** the viewport's width */
  width: number;
  /** the page's scroll width at that viewport: wider means the page scrolls sideways */
  scrollWidth: number;
}

/**
 * Full-page screenshots at both widths: `<dir>/<name>-1280.png` and `<name>-390.png`, with the page's scroll width
 * at each. The viewport is put back to the desktop size afterwards.
 */
export async function screenshotWidths(page: Page, name: string, dir = UI_OUTPUT_DIR): Promise<Screenshot[]> {
  mkdirSync(dir, { recursive: true });
  const shots: Screenshot[] = [];
  for (const size of [VIEWPORTS.desktop, VIEWPORTS.phone]) {
    await page.setViewportSize(size);
    const file = path.join(dir, `${name}-${size.width}.png`);
    await page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' });
    const scrollWidth = await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
    shots.push({ file, width: size.width, scrollWidth });
  }
  await page.setViewportSize(VIEWPORTS.desktop);
  return shots;
}
