export * from './client';
export * from './limiter';
export * from './service';
