/** Backpressure helpers for writing into a tool's stdin (or any Writable). */
import { Writable } from 'node:stream';

/** Write with backpressure: resolves once `w` accepted the data (waits for 'drain' when its buffer is full). */
export function writeTo(w: Writable, b: Buffer): Promise<void> {
  if (w.write(b)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      w.off('error', onError);
      w.off('close', onClose);
      resolve();
    };
    const onError = (e: Error) => {
      w.off('drain', onDrain);
      w.off('close', onClose);
      reject(e);
    };
    const onClose = () => {
      w.off('drain', onDrain);
      w.off('error', onError);
      reject(new Error('stream closed before drain'));
    };
    w.once('drain', onDrain);
    w.once('error', onError);
    w.once('close', onClose);
  });
}

/** End a writable and wait until it has flushed. */
export function endWritable(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (w.writableFinished || w.destroyed) return resolve();
    w.once('finish', () => resolve());
    w.once('close', () => resolve());
    w.end();
  });
}
