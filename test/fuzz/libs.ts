/**
 * The compiled fuzz and soak scripts run with plain `node`, outside jest (whose moduleNameMapper maps `@factory/<lib>`
 * for the shared test helpers): resolve `@factory/<lib>` to the compiled library in libs/<lib>/dist, which `tsc -b`
 * builds before this project. Import this module first.
 */
import Module from 'node:module';
import path from 'node:path';
import { findCheckout } from '../support/checkout';

type Resolve = (request: string, ...rest: unknown[]) => string;
const loader = Module as unknown as { _resolveFilename: Resolve };
const ROOT = findCheckout(__dirname);
const original = loader._resolveFilename;
loader._resolveFilename = function (request: string, ...rest: unknown[]): string {
  const lib = /^@factory\/([a-z-]+)$/.exec(request)?.[1];
  return original.call(this, lib ? path.join(ROOT, 'libs', lib, 'dist', 'index.js') : request, ...rest);
};
