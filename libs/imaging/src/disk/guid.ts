/** GUIDs of Talos disk images (talos-formats.md §8.2). */
import { createHash } from 'node:crypto';

/** Label whose GUID becomes the disk GUID of an image. */
export const DISK_IMAGE_LABEL = 'talos-image-disk';

/** Partition type GUIDs (§8.2). */
export const PARTITION_TYPE = {
  EFI: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  BIOS: '21686148-6449-6e6f-744e-656564454649',
  LINUX: '0fc63daf-8483-4772-8e79-3d69d8477de4',
} as const;

/** GPT attribute bit 2: legacy BIOS bootable (set on the BIOS partition). */
export const GPT_ATTR_LEGACY_BIOS_BOOTABLE = 1n << 2n;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function formatUuid(b: Buffer): string {
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/**
 * Deterministic GUID of an image partition (or of the disk, label `talos-image-disk`): the first 16 bytes of
 * SHA-256(16 zero bytes || label), with the version nibble set to 8 and the RFC 4122 variant bits (UUIDv8).
 */
export function gptPartitionGuid(label: string): string {
  const h = createHash('sha256').update(Buffer.alloc(16)).update(Buffer.from(label, 'utf8')).digest().subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  return formatUuid(h);
}

/** Canonical (big-endian text order) UUID -> the 16-byte mixed-endian GPT/EFI GUID encoding. */
export function uuidToGptBytes(uuid: string): Buffer {
  const u = uuid.toLowerCase();
  if (!UUID_RE.test(u)) throw new Error(`bad GUID ${JSON.stringify(uuid)}`);
  const b = Buffer.from(u.replace(/-/g, ''), 'hex');
  return Buffer.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8, 16)]);
}

/** 16-byte GPT GUID encoding -> canonical lowercase UUID text. */
export function gptBytesToUuid(g: Buffer): string {
  if (g.length !== 16) throw new Error('GPT GUID must be 16 bytes');
  return formatUuid(Buffer.from([g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], ...g.subarray(8, 16)]));
}
