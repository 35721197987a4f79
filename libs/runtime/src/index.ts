export * from './lifecycle';
export * from './bounded-map';
