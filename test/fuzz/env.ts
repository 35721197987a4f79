/** Environment of a fuzzed or soaked factory: per-client rate limits off, or the run would mostly measure 429s. */
export const FUZZ_FACTORY_ENV: NodeJS.ProcessEnv = { FACTORY_RATE_SCHEMATICS: 'off', FACTORY_RATE_BUILDS: 'off' };
