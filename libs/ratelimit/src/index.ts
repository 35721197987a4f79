export * from './client';
export * from './limiter';
