/**
 * Authenticode signing of PE/COFF images (systemd-boot, UKIs) and UEFI Secure Boot enrollment data, in TypeScript.
 * Private keys never come here: every signature is produced by a callback (the signing service holds the keys).
 */
export * from './pe';
export * from './image-hash';
export * from './signed-data';
export * from './embed';
export * from './efi-vars';
export * from './efi-varstore';
export * from './well-known';
export { certificatesFromPem, certificateDer } from './der';
