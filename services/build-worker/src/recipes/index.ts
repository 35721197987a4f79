/**
 * The dispatcher from a resolved asset profile to its recipe (one module per output kind). Everything that can be
 * answered from the request and the schematic was checked at the edge; here the inputs are pulled and the asset built.
 */
import path from 'node:path';
import type { AssetProfile } from '@factory/asset';
import { FactoryError } from '@factory/errors';
import type { OutputKind } from '@factory/talos';
import { tagOf, parseRequestVersion } from '@factory/talos';
import type { BuildContext, BuiltFile, Recipe } from './context';
import { cmdline } from './cmdline';
import { diskImage } from './disk-image';
import { initramfs } from './initramfs';
import { installer } from './installer';
import { iso } from './iso';
import { kernel } from './kernel';
import { resolveOverlay } from './overlay';
import { uki } from './uki';

export type { BuildContext, BuiltFile } from './context';

const RECIPES: Record<OutputKind, Recipe> = { kernel, cmdline, initramfs, uki, iso, image: diskImage, installer };
/**
 * Output kinds whose Secure Boot variant is built signed (the signing service's Authenticode and PCR signatures).
 * Any other `-secureboot` request fails rather than producing an unsigned image under a Secure Boot name.
 */
const SECURE_BOOT_RECIPES: ReadonlySet<OutputKind> = new Set<OutputKind>(['cmdline', 'uki', 'iso', 'installer', 'image']);

/** Builds the asset into a file under workDir. */
export async function buildAsset(ctx: BuildContext, profile: AssetProfile, workDir: string): Promise<BuiltFile> {
  if (profile.secureboot && !SECURE_BOOT_RECIPES.has(profile.kind)) {
    throw new FactoryError(501, `secure boot ${profile.kind} outputs are not built by this factory yet`);
  }
  const version = parseRequestVersion(profile.version);
  // The edge resolved the profile; a malformed one is a bug in the producer, not the client's mistake.
  if (!version || tagOf(version) !== profile.version) throw new Error(`asset profile has a malformed version ${JSON.stringify(profile.version)}`);
  const overlay = profile.overlay ? await resolveOverlay(ctx, profile.overlay, profile.schematicYaml) : undefined;
  ctx.progress('fetching imager', 5);
  const imager = await ctx.inputs.imager(profile.version, profile.arch);
  return RECIPES[profile.kind]({ ctx, profile, version, overlay, imager, workDir, out: path.join(workDir, 'out') });
}
