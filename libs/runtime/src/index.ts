export * from './lifecycle';
export * from './bounded-map';
export * from './memo';
export * from './http-drain';
