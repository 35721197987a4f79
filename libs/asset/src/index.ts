export * from './identity';
export * from './record';
export * from './profile';
export * from './ensure';
