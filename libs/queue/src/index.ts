export * from './contracts';
export * from './errors';
export * from './client';
export * from './server';
export * from './options';
export { redisConnection } from './connection';
export * from './lifecycle';
export * from './assets';
