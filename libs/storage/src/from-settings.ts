import type { StorageSettings } from '@factory/config';
import type { ObjectStore } from './types';
import { createLocalStore } from './local';
import { createS3Store } from './s3';

/** The object store a service's validated settings describe: S3 when a bucket is configured, else a local directory. */
export function createObjectStore(settings: StorageSettings): ObjectStore {
  if (settings.kind === 'local') return createLocalStore(settings.dir);
  return createS3Store({
    bucket: settings.bucket,
    endpoint: settings.endpoint,
    region: settings.region,
    accessKeyId: settings.accessKeyId,
    secretAccessKey: settings.secretAccessKey,
    forcePathStyle: settings.forcePathStyle,
    publicEndpoint: settings.publicEndpoint,
  });
}
