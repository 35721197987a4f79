/** Imaging primitives: initramfs assembly with extensions, UKI (PE/COFF) writing, ISO building. */
export * from './initramfs';
export * from './uki';
export * from './iso';
export * from './disk';
export * from './formats';
export * from './overlay';
export * from './installer';
export * from './digest';
export * from './checksum';
export * from './grub-escape';
export * from './reproducible';
