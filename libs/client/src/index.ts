export * from './types';
export * from './errors';
export * from './sse';
export * from './client';
