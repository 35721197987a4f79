/** Unit tests live next to each package (libs|services|tools/<pkg>/test); integration tests drive real processes
 * (Redis, docker-registry, s3rver, the compiled services) and live in test/integration. */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }] };
const moduleNameMapper = { '^@factory/([a-z-]+)$': '<rootDir>/libs/$1/src' };
module.exports = {
  projects: [
    { displayName: 'unit', testEnvironment: 'node', transform, moduleNameMapper,
      testMatch: ['<rootDir>/{libs,services,tools}/*/test/**/*.test.ts'] },
    // every factory response an integration test receives is checked against the OpenAPI document (libs/openapi)
    { displayName: 'integration', testEnvironment: 'node', transform, moduleNameMapper,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/support/openapi-setup.ts'] },
  ],
};
