/**
 * SBC overlays (talos-formats §10): confined execution of an overlay's installer (`get-options`, `install`) and
 * reading of its profile fragment.
 */
export {
  overlayGetOptions,
  overlayInstall,
  readOverlayProfile,
  parseOptionsReply,
  getOptionsRequest,
  installRequest,
} from './protocol';
export type { OverlayOptionsResult, OverlayInstallInput, OverlayProfile, Bootloader } from './protocol';
export {
  runInstaller,
  resolveRunAs,
  nobodyIdentity,
  OverlayInstallerError,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_MAX_OUTPUT,
  INSTALLER_PATH,
} from './run';
export type { RunLimits, RunResult, AccessPlan, FailureReason, Identity } from './run';
