export * from './parse';
export * from './upstream';
