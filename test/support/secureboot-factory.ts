/**
 * The embedded factory for Secure Boot proofs: launched (its signing service generates the Secure Boot keys), a
 * schematic created, and the signing certificate `/secureboot/signing-cert.pem` serves saved for sbverify.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEMO_DIR } from './demo-imager';
import { launchFactory, LaunchedFactory } from './launcher';
import { freePort } from './procs';

export interface SecureBootFactory {
  factory: LaunchedFactory;
  /** the schematic ID of `customization` */
  id: string;
  /** the served signing certificate (PEM) as a file under the test's directory */
  certFile: string;
}

export async function launchSecureBootFactory(tmp: string, label: string, customization: object): Promise<SecureBootFactory> {
  const t0 = Date.now();
  const factory = await launchFactory({ port: await freePort(), dataDir: path.join(tmp, 'data'), demoDir: DEMO_DIR });
  process.stdout.write(`[${label}] embedded factory ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const created = await fetch(`${factory.url}/schematics`, { method: 'POST', body: JSON.stringify({ customization }) });
  const id = ((await created.json()) as { id: string }).id;
  const cert = await fetch(`${factory.url}/secureboot/signing-cert.pem`);
  expect(cert.status).toBe(200);
  const certFile = path.join(tmp, 'signing-cert.pem');
  fs.writeFileSync(certFile, await cert.text());
  return { factory, id, certFile };
}
