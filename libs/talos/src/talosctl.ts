/**
 * talosctl downloads (anchor-api §1.6, §10.1): the root files of `siderolabs/talosctl-all:<version>` named
 * `talosctl-<os>-<arch>[.exe]`. The name rule is the one check between a request path and a stored file.
 */

/** `talosctl-<os>-<arch>` with an optional `.exe`: exactly two dash-separated parts after the prefix, no path. */
const TALOSCTL_FILE = /^talosctl-[A-Za-z0-9_]+-[A-Za-z0-9_]+(\.exe)?$/;

/** Whether `name` is a talosctl binary's file name (and so a single safe path segment). */
export function isTalosctlFileName(name: string): boolean {
  return name.length <= 128 && TALOSCTL_FILE.test(name);
}

/** Content type of a talosctl binary: Windows executables by their registered type, the others as plain bytes. */
export function talosctlContentType(name: string): string {
  return name.endsWith('.exe') ? 'application/vnd.microsoft.portable-executable' : 'application/octet-stream';
}
