/**
 * Issue 13: the web UI walked over plain HTTP (no browser, no script) against the five services on Redis, s3rver and
 * the demo releases: each step's GET form submitted as a browser without JavaScript would (its hidden fields plus the
 * chosen controls) for bare metal amd64 with two extensions and extra kernel arguments; the final page's schematic
 * ID equals POST /schematics of the same content, and every link of the final page that points at this factory
 * answers HEAD with 200 or 302.
 */
import { S3Factory, startFactoryOnS3 } from '../support/factory';

jest.setTimeout(900_000);

let env: S3Factory;
beforeAll(async () => {
  env = await startFactoryOnS3({ tmpPrefix: 'ui-wizard-' });
});
afterAll(async () => {
  await env?.stop();
});

const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

interface Step {
  url: string;
  html: string;
  legend: string;
  hidden: Array<[string, string]>;
}

async function open(url: string): Promise<Step> {
  const res = await fetch(`${env.factory.url}${url}`);
  const html = await res.text();
  expect([url, res.status]).toEqual([url, 200]);
  // a submitted step lands on its clean shareable URL (no button, no search field)
  expect(res.url).not.toMatch(/step-next|search=/);
  const legend = unescape(/<legend><h2 class="step-title">([^<]+)<\/h2><\/legend>/.exec(html)?.[1] ?? /<h2 id="final-title"[^>]*>([^<]+)<\/h2>/.exec(html)?.[1] ?? '');
  const hidden = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m): [string, string] => [unescape(m[1]), unescape(m[2])]);
  return { url, html, legend, hidden };
}

/** What the browser sends for the step's form: its hidden fields, the chosen controls, the Next button. */
function submit(step: Step, chosen: Array<[string, string]>): string {
  return `/?${new URLSearchParams([...step.hidden, ...chosen, ['step-next', '']]).toString()}`;
}

test('bare metal amd64, two extensions, extra kernel arguments: GET forms to the final page', async () => {
  const hardware = await open('/');
  expect(hardware.legend).toBe('Hardware Type');
  const version = await open(submit(hardware, [['target', 'metal']]));
  expect(version.legend).toBe('Choose Talos Linux Version');
  const offered = [...version.html.matchAll(/<option value="([^"]+)"( selected)?>/g)];
  const latest = offered.find((m) => m[2])?.[1] as string;
  expect(latest).toBe('1.12.2');
  const arch = await open(submit(version, [['version', latest]]));
  expect(arch.legend).toBe('Machine Architecture');
  const extensionsStep = await open(submit(arch, [['arch', 'amd64']]));
  expect(extensionsStep.legend).toBe('System Extensions');
  const names = [...extensionsStep.html.matchAll(/<input type="checkbox" id="ext-\d+" name="extensions" value="([^"]+)"/g)].map((m) => unescape(m[1]));
  expect(names.length).toBeGreaterThanOrEqual(2);
  const chosen = [names[1], names[0]];
  const customization = await open(submit(extensionsStep, chosen.map((n): [string, string] => ['extensions', n])));
  expect(customization.legend).toBe('Customization');
  // the customization step has the embedded-configuration textarea on 1.12: its Next posts (kept out of the URL);
  // a browser without JavaScript follows the 303 to the final page's GET URL
  expect(customization.html).toContain('formmethod="post" formaction="/ui/wizard"');
  const posted = await fetch(`${env.factory.url}/ui/wizard`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams([...customization.hidden, ['cmdline', 'noapic nolapic'], ['bootloader', 'auto'], ['embedded-config', ''], ['step-next', '']]).toString(),
    redirect: 'manual',
  });
  expect(posted.status).toBe(303);
  const finalUrl = posted.headers.get('location') as string;
  expect(finalUrl).toBe(`/?target=metal&version=1.12.2&arch=amd64&extensions=-&${chosen.map((n) => `extensions=${encodeURIComponent(n)}`).join('&')}&cmdline-set=1&cmdline=noapic+nolapic`);
  const final = await open(finalUrl);
  expect(final.legend).toBe('Schematic Ready');

  const id = /<code id="schematic-id">([0-9a-f]{64})<\/code>/.exec(final.html)?.[1];
  const yaml = unescape(/<pre id="schematic-yaml">([\s\S]*?)<\/pre>/.exec(final.html)?.[1] ?? '');
  const sorted = [...chosen].sort();
  const own = `customization:\n  extraKernelArgs: [noapic, nolapic]\n  systemExtensions:\n    officialExtensions: [${sorted.join(', ')}]\n`;
  for (const body of [yaml, own]) {
    const created = await fetch(`${env.factory.url}/schematics`, { method: 'POST', body });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { id: string }).id).toBe(id);
  }

  // every link to this factory answers HEAD with 200 or 302 (assets are built on the way); the key files and
  // /llms.txt are GET-only routes, as the anchor's (HEAD is 405 there): those are fetched with GET
  const getOnly = /\/oci\/cosign\/|\/secureboot\/|\/llms\.txt$/;
  const links = [...new Set([...final.html.matchAll(/<a [^>]*href="([^"]+)"/g)].map((m) => unescape(m[1])))].filter((l) => l.startsWith(env.factory.url) || l.startsWith('/'));
  expect(links.filter((l) => l.includes(`/image/${id}/v1.12.2/`)).length).toBeGreaterThanOrEqual(7);
  const answers: string[] = [];
  const queue = [...links];
  await Promise.all(
    [1, 2, 3].map(async () => {
      for (let link = queue.shift(); link; link = queue.shift()) {
        const method = getOnly.test(link) ? 'GET' : 'HEAD';
        const res = await fetch(link.startsWith('/') ? `${env.factory.url}${link}` : link, { method, redirect: 'manual' });
        await res.arrayBuffer();
        answers.push(`${res.status} ${method} ${link}`);
      }
    }),
  );
  expect(answers.filter((a) => !/^(200|302) /.test(a))).toEqual([]);
  expect(answers.filter((a) => a.includes(' HEAD ')).length).toBeGreaterThanOrEqual(15);
  process.stdout.write(`final page links (HEAD):\n${answers.sort().join('\n')}\n`);

  // before: every asset "built on request" with a Prepare button; now: each is stored, with its size
  expect(final.html).toContain('class="prepare secondary" data-asset="metal-amd64.iso"');
  const again = await open(finalUrl);
  expect([...again.html.matchAll(/class="status built" data-state="done">built, [0-9.]+ (?:B|KiB|MiB|GiB)</g)].length).toBe(7);
  expect(again.html).not.toContain('built on request');
});
