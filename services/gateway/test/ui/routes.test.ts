/**
 * The UI over HTTP (fake jobs, real app): pages, swaps with Hx-Push-Url, the language cookie, bad input as 400 pages,
 * escaping of everything typed, the CSP header, and the weight budget of what the wizard serves.
 */
import { gzipSync } from 'node:zlib';
import { Harness, startUi } from './harness';
import { UI_CSP } from '../../src/ui/routes';

let h: Harness;
beforeAll(async () => {
  h = await startUi({ secureBoot: true, talosctl: ['talosctl-linux-amd64'] });
});
afterAll(() => h.close());

const get = (q: string, headers: Record<string, string> = {}) => fetch(`${h.base}/${q}`, { headers, redirect: 'manual' });
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${h.base}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, redirect: 'manual' });
const FINAL = 'target=metal&version=1.12.2&arch=amd64&extensions=-&extensions=siderolabs/gvisor&extensions=siderolabs/amd-ucode&cmdline-set=1&cmdline=noapic%20nolapic';

test('GET / renders the first step inside the wizard form, with a strict CSP', async () => {
  const res = await get('');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('content-security-policy')).toBe(UI_CSP);
  const body = await res.text();
  expect(body).toContain('<form id="wizard-form" method="get" action="/">');
  expect(body).toMatch(/<legend><h2 class="step-title">Hardware Type<\/h2><\/legend>/);
  expect(body).toContain('<button type="submit" name="step-next">Next</button>');
  // no inline script, style or handler
  expect(body).not.toMatch(/<script>|<style|\son[a-z]+=|style="/);
  expect((await fetch(`${h.base}/`, { method: 'HEAD' })).status).toBe(200);
});

test('the final page: schematic created through the same job, links as the API serves them', async () => {
  const body = await (await get(`?${FINAL}`)).text();
  const id = /<code id="schematic-id">([0-9a-f]{64})<\/code>/.exec(body)?.[1];
  expect(id).toBeDefined();
  expect(h.schematics.get(id as string)).toBe('customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/amd-ucode\n            - siderolabs/gvisor\n');
  for (const title of ['First Boot', 'Initial Installation', 'Upgrading', 'Local Test Cluster', 'PXE Boot with booter', 'Documentation', 'Extra Assets']) expect(body).toContain(`>${title}</h3>`);
  expect(body).toContain(`href="https://factory.example/image/${id}/v1.12.2/metal-amd64.iso"`);
  expect(body).toContain(`href="https://factory.example/image/${id}/v1.12.2/metal-amd64.iso.sha256"`);
  expect(body).toContain(`<code class="installer-ref">factory.example/metal-installer/${id}:v1.12.2</code>`);
  expect(body).toContain(`https://pxe.example/pxe/${id}/v1.12.2/metal-amd64`);
  expect(body).toContain('href="https://factory.example/talosctl/v1.12.2/talosctl-linux-amd64"');
  expect(body).toContain('href="https://factory.example/secureboot/signing-cert.pem"');
  expect(body).toContain('href="https://factory.example/oci/cosign/signing-key.pub"');
});

test('POST /ui/wizard swaps the form content and pushes the shareable URL', async () => {
  const res = await post('/ui/wizard', 'target=cloud&step-next=', { 'HX-Request': 'true' });
  expect(res.status).toBe(200);
  expect(res.headers.get('hx-push-url')).toBe('/?target=cloud');
  const body = await res.text();
  expect(body).not.toContain('<html');
  expect(body).toContain('Choose Talos Linux Version');
});

test('the embedded configuration never reaches a URL: the final URL names the schematic holding it', async () => {
  const config = 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: worker-33';
  const form = `target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&embedded-config=${encodeURIComponent(config)}`;
  const swapped = await post('/ui/wizard', form, { 'HX-Request': 'true' });
  const push = swapped.headers.get('hx-push-url') as string;
  expect(push).toBe('/?target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&schematic-id=02f29f9a702fceec4fc2e2e51314d63710fc1b192ebb1629ac12301949d49c8c');
  // without the script: 303 to the same URL, whose page is the same schematic
  const plain = await post('/ui/wizard', form);
  expect(plain.status).toBe(303);
  expect(plain.headers.get('location')).toBe(push);
  const reloaded = await (await get(push.slice(1))).text();
  expect(reloaded).toContain('<code id="schematic-id">02f29f9a702fceec4fc2e2e51314d63710fc1b192ebb1629ac12301949d49c8c</code>');
  // ?schematic-id= preloads the customization step with it
  const back = await (await get('?target=metal&version=1.12.2&arch=amd64&extensions=-&schematic-id=02f29f9a702fceec4fc2e2e51314d63710fc1b192ebb1629ac12301949d49c8c')).text();
  expect(back).toContain('hostname: worker-33</textarea>');
});

test('everything typed is escaped (kernel args, overlay options)', async () => {
  const evil = '<script>alert(1)</script>';
  const cmdline = await (await get(`?target=metal&version=1.12.2&arch=amd64&extensions=-&selected-cmdline=${encodeURIComponent(evil)}`)).text();
  expect(cmdline).not.toContain(evil);
  expect(cmdline).toContain('value="&lt;script&gt;alert(1)&lt;/script&gt;"');
  const final = await (await get(`?target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&cmdline=${encodeURIComponent(evil)}`)).text();
  expect(final).not.toContain(evil);
  expect(final).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  const overlay = await (await get(`?target=sbc&version=1.12.2&board=rpi_generic&extensions=-&cmdline-set=1&overlay-options=${encodeURIComponent(`x: "${evil}"`)}`)).text();
  expect(overlay).not.toContain(evil);
  const bad = await get(`?target=${encodeURIComponent(evil)}`);
  expect(bad.status).toBe(400);
  expect(await bad.text()).not.toContain(evil);
});

test.each([
  ['?target=tablet', 400, 'Unknown hardware type'],
  ['?target=metal&version=0.0.1', 400, 'Unknown Talos version'],
  ['?target=cloud&version=1.12.2&platform=moon', 400, 'Unknown cloud platform'],
  ['?target=sbc&version=1.12.2&board=abacus', 400, 'Unknown single board computer'],
  ['?target=metal&version=1.12.2&arch=amd64&extensions=siderolabs/nope', 400, 'Unknown system extension'],
  [`?target=metal&cmdline=${'a'.repeat(4097)}`, 400, 'is too long'],
  ['?schematic-id=' + 'f'.repeat(64), 404, 'not found'],
])('bad input %# is an HTML page with its status and a one-line message', async (q, status, text) => {
  const res = await get(q);
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(await res.text()).toContain(text);
});

test('oversized form bodies: fields beyond their limits are 400 pages', async () => {
  const res = await post('/ui/wizard', `target=metal&embedded-config=${'a'.repeat(256 * 1024 + 1)}`, { 'HX-Request': 'true' });
  expect(res.status).toBe(400);
  const overlay = await post('/ui/wizard', `target=sbc&overlay-options=${'a'.repeat(64 * 1024 + 1)}`, { 'HX-Request': 'true' });
  expect(overlay.status).toBe(400);
});

test('?lang= sets the cookie and redirects (Hx-Redirect); the cookie and Accept-Language choose the locale', async () => {
  const res = await get('?lang=fr&target=metal');
  expect(res.status).toBe(200);
  expect(res.headers.get('set-cookie')).toMatch(/^lang=fr; Path=\/; Max-Age=31536000; HttpOnly/);
  expect(res.headers.get('hx-redirect')).toBe('/?target=metal');
  expect(await res.text()).toContain('Choisir la version de Talos Linux');
  const empty = await get('?lang=');
  expect(empty.status).toBe(400);
  expect(await empty.text()).toBe('missing lang param\n');
  expect(await (await get('', { Cookie: 'lang=fr' })).text()).toContain('Type de matériel');
  expect(await (await get('', { 'Accept-Language': 'de, fr;q=0.8, en;q=0.5' })).text()).toContain('Type de matériel');
  expect(await (await get('?lang=en', { Cookie: 'lang=fr' })).text()).toContain('Hardware Type');
});

test('extension search and version notes are fragments', async () => {
  const list = await (await post('/ui/extensions-list', 'version=1.12.2&search=UCODE&extensions=siderolabs/gvisor')).text();
  expect(list).toContain('siderolabs/amd-ucode');
  expect(list).toContain('siderolabs/intel-ucode');
  expect(list).toContain('siderolabs/gvisor'); // selected: always kept
  expect(list).not.toContain('iscsi-tools');
  expect((await post('/ui/extensions-list', 'version=9.9.9')).status).toBe(400);
  const doc = await (await fetch(`${h.base}/ui/version-doc?version=1.11.3`)).text();
  expect(doc).toContain('https://docs.siderolabs.com/talos/v1.11/getting-started/support-matrix');
});

test('the whole wizard weighs at most 60 KB compressed (CSS + JS)', async () => {
  const page = await (await get('')).text();
  const assets = [...page.matchAll(/(?:href|src)="(\/(?:css|js)\/[^"]+)"/g)].map((m) => m[1]);
  expect(assets).toHaveLength(2);
  let total = 0;
  for (const a of assets) {
    const res = await fetch(`${h.base}${a}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('immutable');
    total += gzipSync(Buffer.from(await res.arrayBuffer()), { level: 9 }).length;
  }
  process.stdout.write(`wizard CSS + JS: ${total} bytes gzip\n`);
  expect(total).toBeLessThanOrEqual(60 * 1024);
});

test('without JavaScript, the search button keeps the extensions step open with the checked ones remembered', async () => {
  const res = await get('?target=metal&version=1.12.2&arch=amd64&extensions=-&extensions=siderolabs/gvisor&search=iscsi&step-search=');
  const body = await res.text();
  expect(body).toContain('System Extensions</h2>');
  expect(body).toMatch(/value="siderolabs\/gvisor" checked/);
  expect(body).toContain('siderolabs/iscsi-tools');
  expect(body).not.toContain('siderolabs/amd-ucode');
});

test('?schematic-id= preloads the steps: extensions checked, kernel arguments filled', async () => {
  const created = await fetch(`${h.base}/schematics`, { method: 'POST', body: 'customization:\n  extraKernelArgs: [quiet]\n  systemExtensions:\n    officialExtensions: [siderolabs/iscsi-tools]\n' });
  const { id } = (await created.json()) as { id: string };
  const extensions = await (await get(`?target=metal&version=1.12.2&arch=amd64&schematic-id=${id}`)).text();
  expect(extensions).toMatch(/value="siderolabs\/iscsi-tools" checked/);
  const customization = await (await get(`?target=metal&version=1.12.2&arch=amd64&extensions=siderolabs/iscsi-tools&schematic-id=${id}`)).text();
  expect(customization).toContain('id="cmdline" name="cmdline" value="quiet"');
});

test('the final page counts against the per-client schematic limit: a 429 page with Retry-After', async () => {
  const limited = await startUi({ schematicLimit: 1 });
  try {
    expect((await fetch(`${limited.base}/?${FINAL}`)).status).toBe(200);
    const res = await fetch(`${limited.base}/?${FINAL}`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toContain('too many schematics created by this client');
  } finally {
    await limited.close();
  }
});

test('the script the page links parses and evaluates no strings', async () => {
  const { Script } = await import('node:vm');
  const page = await (await get('')).text();
  const src = /<script src="([^"]+)" defer><\/script>/.exec(page)?.[1] as string;
  const js = await (await fetch(`${h.base}${src}`)).text();
  expect(() => new Script(js)).not.toThrow();
  expect(js).not.toMatch(/\beval\(|new Function/);
});

test('a step submitted without the script redirects to its clean shareable URL', async () => {
  const res = await get('?target=metal&version=1.12.2&arch=amd64&extensions=-&extensions=siderolabs/gvisor&search=&step-next=');
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe('/?target=metal&version=1.12.2&arch=amd64&extensions=-&extensions=siderolabs%2Fgvisor');
  expect((await get('?target=tablet&step-next=')).status).toBe(400);
});

test('odd values in every field are answered 200/303/400, never a 5xx', async () => {
  const odd = ['', ' ', '\u0000', '\u0007x', '%', '\uFFFD', 'a: [', '- 1', '"', '<b>', 'v1.12.2', '-', '../..', '\t\ttab', 'é'.repeat(300)];
  const base = 'target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1';
  const fields = ['target', 'version', 'arch', 'platform', 'board', 'secureboot', 'bootloader', 'extensions', 'cmdline', 'embedded-config', 'cmdline-set', 'schematic-id', 'selected-extensions', 'selected-secureboot'];
  const statuses = new Set<number>();
  for (const field of fields) {
    for (const value of odd) {
      const form = `${base}&${field}=${encodeURIComponent(value)}`;
      const res = await post('/ui/wizard', form, { 'HX-Request': 'true' });
      await res.arrayBuffer();
      statuses.add(res.status);
      expect([field, value, res.status < 500]).toEqual([field, value, true]);
    }
  }
  const sbc = await post('/ui/wizard', `target=sbc&version=1.12.2&board=rpi_generic&extensions=-&cmdline-set=1&overlay-options=${encodeURIComponent('a: "\u0001"\nb: !!binary AAEC\nc: 2001-01-01')}`, { 'HX-Request': 'true' });
  expect(sbc.status).toBeLessThan(500);
  expect([...statuses].every((s) => [200, 400].includes(s))).toBe(true);
});
