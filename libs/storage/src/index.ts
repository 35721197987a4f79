/**
 * @factory/storage: one object-store interface with two interchangeable backends, S3-compatible storage
 * (createS3Store) and a local directory for the embedded single-machine mode (createLocalStore).
 * Both publish atomically (readers see the old or the new whole object, never a partial one) and stream with
 * bounded memory.
 */
export type {
  ByteRange,
  GetResult,
  ObjectInfo,
  ObjectMeta,
  ObjectStore,
  PresignOptions,
  PutOptions,
  PutResult,
  StorageErrorCode,
} from './types';
export { StorageError, isStorageError } from './types';
export { storageFault, withStorageFaults } from './fault';
export type { StorageFault, StorageFaultKind } from './fault';
export type { S3StoreOptions } from './s3';
export { createS3Store, S3ObjectStore } from './s3';
export { createLocalStore, LocalObjectStore } from './local';
export { validateKey, MAX_KEY_BYTES, RESERVED_PREFIX, DEFAULT_CONTENT_TYPE } from './common';
export { createObjectStore } from './from-settings';
