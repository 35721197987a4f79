/** The gateway's view of the upstream catalog: what it remembers, for how long, and what it forgets. */
import { createHash } from 'node:crypto';
import { FactoryError } from '@factory/errors';
import { QueuedCatalogView } from '../src/catalog-view';

function jobs(fail = new Set<string>()) {
  const asked: string[] = [];
  return {
    asked,
    call: (async (name: string, payload: { version?: string }) => {
      asked.push(`${name} ${payload.version ?? ''}`.trim());
      if (fail.has(`${name} ${payload.version ?? ''}`.trim())) throw new FactoryError(404, `version ${payload.version} is not available`);
      if (name === 'upstream.versions') return { versions: ['v1.11.3'] };
      if (name === 'upstream.extensions') return { extensions: [{ name: 'siderolabs/hello', ref: 'r', digest: 'd', author: '', description: '' }] };
      return { overlays: [] };
    }) as never,
  };
}

test('catalogs are asked once per version; concurrent asks share one job', async () => {
  const j = jobs();
  const view = new QueuedCatalogView(j);
  await Promise.all([view.extensions('v1.11.3'), view.extensions('v1.11.3'), view.overlays('v1.11.3')]);
  await view.extensions('v1.11.3');
  expect(j.asked).toEqual(['upstream.extensions v1.11.3', 'upstream.overlays v1.11.3']);
});

test('a failed ask is not remembered', async () => {
  const fail = new Set(['upstream.extensions v1.4.0']);
  const j = jobs(fail);
  const view = new QueuedCatalogView(j);
  await expect(view.extensions('v1.4.0')).rejects.toThrow('version v1.4.0 is not available');
  fail.clear();
  await expect(view.extensions('v1.4.0')).resolves.toHaveLength(1);
  expect(j.asked).toEqual(['upstream.extensions v1.4.0', 'upstream.extensions v1.4.0']);
});

test('the version list is re-read after its TTL', async () => {
  const j = jobs();
  const view = new QueuedCatalogView(j, 50);
  await view.versions();
  await view.versions();
  expect(j.asked).toEqual(['upstream.versions']);
  await new Promise((r) => setTimeout(r, 60));
  expect(await view.versions()).toEqual(['v1.11.3']);
  expect(j.asked).toEqual(['upstream.versions', 'upstream.versions']);
});

test('the Secure Boot offer comes from the signing service: the certificate digest, remembered for the TTL; off when disabled', async () => {
  let answer: { enabled: boolean; signingCertPem?: string } = { enabled: true, signingCertPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' };
  let asked = 0;
  const view = new QueuedCatalogView({ call: (async () => (asked++, answer)) as never }, 50);
  const offer = await view.secureBoot();
  expect(offer).toEqual({ signerId: createHash('sha256').update(answer.signingCertPem!).digest('hex') });
  await view.secureBoot();
  expect(asked).toBe(1);
  answer = { enabled: false };
  await new Promise((r) => setTimeout(r, 60));
  expect(await view.secureBoot()).toBeUndefined();
  expect(asked).toBe(2);
  // own PK/KEK certificates (enrolled by ISOs and disk images) are named in the offer too
  answer = { enabled: true, signingCertPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', pkCertPem: 'PK' } as typeof answer;
  await new Promise((r) => setTimeout(r, 60));
  const withPk = await view.secureBoot();
  expect(withPk!.signerId).toMatch(/^[0-9a-f]{64}$/);
  expect(withPk!.signerId).not.toBe(offer!.signerId);
});
