export { run, start, feed, ProcessError, DEFAULT_MAX_OUTPUT, DEFAULT_KILL_GRACE_MS } from './run';
export type { FailureReason, ProcessOptions, RunOptions, RunResult, StartOptions, StartedProcess } from './run';
export { toolEnv, SYSTEM_PATH, PROXY_VARS } from './env';
export type { EnvOptions, EnvOverrides } from './env';
export { freePort, waitForPort } from './port';
