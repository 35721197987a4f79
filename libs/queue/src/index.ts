export * from './contracts';
export * from './client';
export * from './server';
export * from './options';
export { redisConnection } from './connection';
