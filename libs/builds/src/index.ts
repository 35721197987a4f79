export * from './record';
export * from './store';
export * from './watch';
export * from './request';
