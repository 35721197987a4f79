export * from './identity';
export * from './record';
export * from './profile';
export * from './ensure';
export * from './integrity';
export * from './scrub';
