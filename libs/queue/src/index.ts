export * from './contracts';
export * from './client';
export * from './server';
export * from './options';
export { parseSentinelUrl, redisConnection } from './connection';
