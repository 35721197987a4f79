export * from './version';
export * from './platforms';
export * from './profile';
export * from './quirks';
export * from './cmdline';
export * from './meta';
export * from './pxe';
export * from './assets';
