export * from './env';
export * from './factory';
