export * from './env';
export * from './factory';
export * from './limits';
