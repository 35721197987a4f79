/** Errors raised by the initramfs assembly code. */

/** An archive (image layer) tried something that is not allowed: path traversal, device nodes, escaping links, limits. */
export { UnsafeArchiveError } from '@factory/archive';

/** An extension's `compatibility.talos.version` range does not accept the requested Talos version. */
export class ExtensionCompatibilityError extends Error {
  constructor(
    readonly extension: string,
    readonly constraint: string,
    readonly version: string,
  ) {
    super(`version constraint ${constraint} can't be satisfied with Talos version ${version}`);
    this.name = 'ExtensionCompatibilityError';
  }
}
