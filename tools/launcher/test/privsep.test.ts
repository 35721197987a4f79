import { isSigningOnlyEnv, resolveUser, signingOnlyEnv, withoutKeyEnv } from '../src/privsep';

test('key locations are kept from every environment but the signing service', () => {
  const env = withoutKeyEnv({
    FACTORY_COSIGN_KEY_FILE: '/keys/cosign.key',
    FACTORY_SIGNING_KEY_DIR: '/data/keys',
    FACTORY_SECUREBOOT_KEY_FILE: '/keys/sb.key',
    FACTORY_UPSTREAM_PUBLIC_KEY: '/etc/factory/upstream.pub',
    REDIS_URL: 'redis://127.0.0.1:6379',
  });
  expect(env).toEqual({ FACTORY_UPSTREAM_PUBLIC_KEY: '/etc/factory/upstream.pub', REDIS_URL: 'redis://127.0.0.1:6379' });
  expect(isSigningOnlyEnv('FACTORY_SIGNING_ANYTHING')).toBe(true);
  expect(isSigningOnlyEnv('S3_SECRET_ACCESS_KEY')).toBe(false);
});

test('Secure Boot settings, certificates included, go to the signing service only', () => {
  const env = {
    FACTORY_SECUREBOOT_ENABLED: 'true',
    FACTORY_SECUREBOOT_GENERATE_KEYS: 'false',
    FACTORY_SECUREBOOT_SIGNING_KEY_FILE: '/keys/uki-signing-key.pem',
    FACTORY_SECUREBOOT_SIGNING_CERT_FILE: '/keys/uki-signing-cert.pem',
    FACTORY_SECUREBOOT_PCR_KEY_FILE: '/keys/pcr-signing-key.pem',
    FACTORY_SECUREBOOT_PK_CERT_FILE: '/keys/pk-cert.pem',
    PORT: '8080',
  };
  expect(withoutKeyEnv(env)).toEqual({ PORT: '8080' });
  const { PORT: _port, ...secureBoot } = env;
  expect(signingOnlyEnv(env)).toEqual(secureBoot);
});

test('the service user is a passwd name or uid[:gid]', () => {
  expect(resolveUser('nobody')).toMatchObject({ name: 'nobody', uid: 65534 });
  expect(resolveUser('1234:5678')).toEqual({ uid: 1234, gid: 5678, name: '1234' });
  expect(resolveUser('0')).toMatchObject({ uid: 0, name: 'root' });
  expect(() => resolveUser('no-such-user-here')).toThrow(/no user "no-such-user-here"/);
});
