import path from 'node:path';
import type { OverlayRef } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import { overlayGetOptions, readOverlayProfile } from '@factory/imaging';
import { parseSchematic } from '@factory/schematic';
import type { BuildContext } from './context';

/** The schematic's overlay, pulled and asked for its options. */
export interface ResolvedOverlay {
  name: string;
  root: string;
  installer: string;
  options: unknown;
  kernelArgs: string[];
  offsetLba?: number;
  bootloader?: 'grub' | 'sd-boot' | 'dual-boot';
  extraKernelArgs?: string[];
}

/**
 * Pulls the overlay by catalog digest, reads its profile fragment and asks its installer for options. The options
 * are decoded from the canonical schematic YAML (free-form YAML values keep their Go types that way).
 */
export async function resolveOverlay(ctx: BuildContext, ref: OverlayRef, schematicYaml: string): Promise<ResolvedOverlay> {
  ctx.progress(`fetching overlay ${ref.name}`, 8);
  const options = parseSchematic(schematicYaml).overlay?.options ?? {};
  const root = await ctx.inputs.overlay(ref);
  const installer = path.join(root, 'installers', ref.name);
  const profile = await readOverlayProfile(path.join(root, 'profiles', `${ref.name}.yaml`)).catch(() => ({}) as Awaited<ReturnType<typeof readOverlayProfile>>);
  let got;
  try {
    got = await overlayGetOptions(installer, options);
  } catch (err) {
    throw new FactoryError(502, `overlay ${ref.name}: get-options failed: ${(err as Error).message}`);
  }
  return {
    name: ref.name,
    root,
    installer,
    options,
    kernelArgs: got.kernelArgs ?? [],
    offsetLba: got.partitionOptions?.offset,
    bootloader: profile.bootloader,
    extraKernelArgs: profile.extraKernelArgs,
  };
}
