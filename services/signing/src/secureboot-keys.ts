/**
 * Secure Boot key material, read only here (talos-formats §6.4, anchor-api §8.2 `secureBoot.file.*`): the UKI signing
 * key + certificate and the PCR signing key as RSA PKCS#1 PEM, as the anchor's file provider takes them, and optional
 * PK and KEK pairs for the enrolment databases (without them the signing certificate is PK, KEK and db, as the
 * anchor's). Configured files are validated and used as they are; the signing and PCR keys, when not configured, are
 * generated once into `<key dir>/secureboot` (0700, files 0600) and reused on the next start, when generation is
 * allowed (the embedded default).
 */
import { createPrivateKey, createPublicKey, generateKeyPair, KeyObject, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, SECUREBOOT_ENV, SecureBootSettings } from '@factory/config';
import { pcrPublicKeyPem } from '@factory/pcr';
import { selfSignedCertificate } from './x509';

/** The loaded keys, as the Secure Boot handlers take them (PEM text; private keys PKCS#1). */
export interface SecureBootKeys {
  /** UKI / systemd-boot Authenticode signing key and its certificate (also db, and what `/secureboot/signing-cert.pem` serves) */
  signing: { keyPem: string; certPem: string };
  /** PCR policy signing key and its public key (the `.pcrpkey` section: PEM `PUBLIC KEY`) */
  pcr: { keyPem: string; publicPem: string };
  /**
   * Platform key, only when configured: then PK is this certificate and it signs the KEK enrolment update. Otherwise
   * the signing certificate is PK, KEK and db and signs all three updates, as the anchor's enrolment databases are
   * made (talos-formats §7.5).
   */
  pk?: { keyPem: string; certPem: string };
  /** Key exchange key, only when configured: then KEK is this certificate and it signs the db enrolment update. */
  kek?: { keyPem: string; certPem: string };
}

export interface LoadedSecureBootKeys {
  keys: SecureBootKeys;
  signingKey: KeyObject;
  pcrKey: KeyObject;
  /** where each key came from (paths only, for the start-up log) */
  files: Partial<Record<keyof SecureBootKeys, { key: string; cert?: string; generated: boolean }>>;
}

/** Sizes of generated keys: the signing key as `talosctl gen secureboot uki`; the PCR key 2048 bits, the size TPMs load. */
export const GENERATED_KEY_BITS: Record<'signing' | 'pcr', number> = { signing: 4096, pcr: 2048 };
/** Validity of generated certificates. */
export const GENERATED_CERT_DAYS = 10 * 365;
const MIN_KEY_BITS = 2048;

const SUBJECTS = { signing: { commonName: 'Talos Image Factory Secure Boot Signing', codeSigning: true } };
const ORGANIZATION = 'Talos Image Factory';

/** File names in the generated directory: the imager container's names (`/secureboot/...`) where it has them. */
export const GENERATED_FILES = {
  signing: { key: 'uki-signing-key.pem', cert: 'uki-signing-cert.pem' },
  pcr: { key: 'pcr-signing-key.pem' },
} as const;

export interface SecureBootKeyOptions {
  /** sizes of generated keys (tests use smaller ones) */
  bits?: Partial<Record<keyof SecureBootKeys, number>>;
  now?: Date;
}

const generateRsa = promisify(generateKeyPair);

/**
 * Loads (or generates) the Secure Boot keys; undefined when Secure Boot is off. Every problem with configured or
 * stored files is reported in one ConfigError, naming the variable and the file — never the file's content.
 */
export async function loadSecureBootKeys(settings: SecureBootSettings, keyDir: string, o: SecureBootKeyOptions = {}): Promise<LoadedSecureBootKeys | undefined> {
  if (!settings.enabled) return undefined;
  const problems: string[] = [];
  const dir = path.join(keyDir, 'secureboot');
  const bits = { ...GENERATED_KEY_BITS, ...o.bits };
  const configured = !!(settings.signingKeyFile && settings.signingCertFile && settings.pcrKeyFile);
  if (!configured && !settings.generateKeys) {
    throw new ConfigError([`Secure Boot is enabled but ${SECUREBOOT_ENV.signingKeyFile}, ${SECUREBOOT_ENV.signingCertFile} and ${SECUREBOOT_ENV.pcrKeyFile} are not configured`]);
  }

  type Role = keyof SecureBootKeys;
  type GeneratedRole = keyof typeof GENERATED_FILES;
  const where = (role: GeneratedRole, keyFile: string | undefined, certFile: string | undefined, keyEnv: string, certEnv?: string) =>
    keyFile ? configuredPaths(keyFile, certFile, keyEnv, certEnv) : generatedPaths(role);
  const configuredPaths = (keyFile: string, certFile: string | undefined, keyEnv: string, certEnv?: string) => ({
    key: keyFile,
    cert: certFile,
    keyLabel: `${keyEnv} ${keyFile}`,
    certLabel: certEnv && `${certEnv} ${certFile}`,
    generate: false,
  });
  const generatedPaths = (role: GeneratedRole) => {
    const names = GENERATED_FILES[role] as { key: string; cert?: string };
    const key = path.join(dir, names.key);
    const cert = names.cert ? path.join(dir, names.cert) : undefined;
    return { key, cert, keyLabel: `generated key ${key}`, certLabel: cert && `generated certificate ${cert}`, generate: true };
  };
  const plan: Partial<Record<Role, ReturnType<typeof where>>> = {
    signing: where('signing', settings.signingKeyFile, settings.signingCertFile, SECUREBOOT_ENV.signingKeyFile, SECUREBOOT_ENV.signingCertFile),
    pcr: where('pcr', settings.pcrKeyFile, undefined, SECUREBOOT_ENV.pcrKeyFile),
  };
  // PK and KEK are never generated: without them the signing certificate plays both roles, as in the anchor.
  if (settings.pkKeyFile) plan.pk = configuredPaths(settings.pkKeyFile, settings.pkCertFile, SECUREBOOT_ENV.pkKeyFile, SECUREBOOT_ENV.pkCertFile);
  if (settings.kekKeyFile) plan.kek = configuredPaths(settings.kekKeyFile, settings.kekCertFile, SECUREBOOT_ENV.kekKeyFile, SECUREBOOT_ENV.kekCertFile);
  const roles = Object.keys(plan) as Role[];

  if (Object.values(plan).some((p) => p!.generate)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(keyDir, 0o700);
    chmodSync(dir, 0o700);
  }

  // Missing generated keys are made in parallel (RSA generation runs on libuv's thread pool).
  const generated = new Set<Role>();
  await Promise.all(
    roles.map(async (role) => {
      const p = plan[role]!;
      if (!p.generate || existsSync(p.key)) return;
      const { privateKey } = await generateRsa('rsa', { modulusLength: bits[role as GeneratedRole] });
      writePrivate(p.key, privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
      generated.add(role);
    }),
  );

  const loaded = {} as Partial<Record<Role, { key: KeyObject; keyPem: string; certPem?: string }>>;
  for (const role of roles) {
    const p = plan[role]!;
    const key = readRsaKey(p.key, p.keyLabel, problems);
    if (!key) continue;
    if (p.generate) chmodSync(p.key, 0o600);
    let certPem: string | undefined;
    if (p.cert) {
      if (p.generate && !existsSync(p.cert)) {
        const subject = SUBJECTS.signing;
        writePrivate(p.cert, selfSignedCertificate(key.object, { ...subject, organization: ORGANIZATION, validDays: GENERATED_CERT_DAYS, now: o.now }));
        generated.add(role);
      }
      certPem = readCertificateFor(p.cert, p.certLabel!, key.object, p.keyLabel, problems);
      if (p.generate) chmodSync(p.cert, 0o600);
    }
    loaded[role] = { key: key.object, keyPem: key.pem, certPem };
  }
  if (problems.length) throw new ConfigError(problems);

  const files = {} as LoadedSecureBootKeys['files'];
  for (const role of roles) files[role] = { key: plan[role]!.key, cert: plan[role]!.cert, generated: generated.has(role) };
  const signing = loaded.signing!;
  const pcr = loaded.pcr!;
  return {
    keys: {
      signing: { keyPem: signing.keyPem, certPem: signing.certPem! },
      pcr: { keyPem: pcr.keyPem, publicPem: pcrPublicKeyPem(pcr.key) },
      ...(loaded.pk ? { pk: { keyPem: loaded.pk.keyPem, certPem: loaded.pk.certPem! } } : {}),
      ...(loaded.kek ? { kek: { keyPem: loaded.kek.keyPem, certPem: loaded.kek.certPem! } } : {}),
    },
    signingKey: signing.key,
    pcrKey: pcr.key,
    files,
  };
}

/** Written whole or not at all (temporary file + rename), mode 0600 from the start. */
function writePrivate(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

function readText(file: string, label: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${label}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return undefined;
  }
}

/** An RSA private key in PKCS#1 PEM (`RSA PRIVATE KEY`, unencrypted) of at least 2048 bits, as the anchor reads it. */
function readRsaKey(file: string, label: string, problems: string[]): { object: KeyObject; pem: string } | undefined {
  const pem = readText(file, label, problems);
  if (pem === undefined) return undefined;
  const refuse = (why: string) => {
    problems.push(`${label}: ${why}`);
    return undefined;
  };
  if (!/^-----BEGIN RSA PRIVATE KEY-----\r?\n(?![\s\S]*Proc-Type:)/m.test(pem)) {
    if (/-----BEGIN (?:ENCRYPTED )?PRIVATE KEY-----/.test(pem)) return refuse('is a PKCS#8 key; the Secure Boot keys must be unencrypted PKCS#1 PEM ("RSA PRIVATE KEY"): convert it with `openssl rsa -traditional -in <file>`');
    return refuse('is not an unencrypted RSA private key in PKCS#1 PEM ("-----BEGIN RSA PRIVATE KEY-----")');
  }
  let object: KeyObject;
  try {
    object = createPrivateKey(pem);
  } catch (err) {
    return refuse(`cannot be parsed as an RSA private key (${(err as Error).message})`);
  }
  const size = object.asymmetricKeyDetails?.modulusLength ?? 0;
  if (object.asymmetricKeyType !== 'rsa' || size < MIN_KEY_BITS) return refuse(`is a ${size}-bit key; at least ${MIN_KEY_BITS} bits are needed`);
  return { object, pem };
}

/** A PEM X.509 certificate whose public key is `key`'s; its text is kept as it is (it is served byte for byte). */
function readCertificateFor(file: string, label: string, key: KeyObject, keyLabel: string, problems: string[]): string | undefined {
  const pem = readText(file, label, problems);
  if (pem === undefined) return undefined;
  let cert: X509Certificate;
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM CERTIFICATE block');
    cert = new X509Certificate(pem);
  } catch (err) {
    problems.push(`${label}: is not a PEM X.509 certificate (${(err as Error).message})`);
    return undefined;
  }
  const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spki(cert.publicKey).equals(spki(createPublicKey(key)))) {
    problems.push(`${label}: is not the certificate of ${keyLabel} (its public key is another one)`);
    return undefined;
  }
  return pem;
}
