/** Virtual extensions synthesised by the factory / imager (talos-formats §3.4), written as directories. */
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { marshal } from '@factory/goyaml';
import { parseTolerant, schematicExtraInfo } from '@factory/talos';

export const SCHEMATIC_DESCRIPTION = 'Virtual extension which specifies the schematic of the image built with schematic.';
export const EMBEDDED_CONFIG_DESCRIPTION = 'Virtual extension which embeds the machine configuration.';
export const EMBEDDED_CONFIG_SELINUX_LABEL = 'system_u:object_r:system_state_t:s0';

async function mkdirs(root: string, rels: string[]): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  for (const rel of rels) {
    const p = path.join(root, rel);
    await fsp.mkdir(p, { recursive: true });
    await fsp.chmod(p, 0o755);
  }
}

async function writeFileMode(p: string, data: string | Buffer, mode: number): Promise<void> {
  await fsp.rm(p, { force: true });
  await fsp.writeFile(p, data, { mode });
  await fsp.chmod(p, mode);
}

function safeComponent(s: string, what: string): string {
  if (!s || s === '.' || s === '..' || /[/\0]/.test(s)) throw new Error(`invalid ${what} ${JSON.stringify(s)}`);
  return s;
}

/** manifest.yaml text of the schematic extension (go-yaml v4 Marshal, no folding). */
export function schematicManifestYaml(o: { id: string; canonicalYaml: string; externalUrl: string; version: string }): string {
  const v = parseTolerant(o.version);
  // extraInfo since Talos 1.7; an unparseable version counts as "latest"
  const withExtra = !v || schematicExtraInfo(v);
  const metadata: Record<string, unknown> = {
    name: 'schematic',
    version: o.id,
    author: `Image Factory (${o.externalUrl})`,
    description: SCHEMATIC_DESCRIPTION,
    compatibility: { talos: { version: '>= 1.0.0' } },
  };
  if (withExtra && o.canonicalYaml) metadata.extraInfo = o.canonicalYaml;
  return marshal({ version: 'v1alpha1', metadata });
}

/** The factory's synthetic "schematic" extension (talos-formats §3.4), written as a directory (manifest.yaml + rootfs/). */
export async function writeSchematicExtension(
  dir: string,
  o: { id: string; canonicalYaml: string; externalUrl: string; version: string },
): Promise<void> {
  safeComponent(o.id, 'schematic ID');
  await mkdirs(dir, ['rootfs', 'rootfs/usr', 'rootfs/usr/local', 'rootfs/usr/local/share', 'rootfs/usr/local/share/schematic']);
  await writeFileMode(path.join(dir, 'manifest.yaml'), schematicManifestYaml(o), 0o644);
  await writeFileMode(path.join(dir, 'rootfs/usr/local/share/schematic', o.id), '', 0o644);
}

export function embeddedConfigManifestYaml(config: string | Buffer): string {
  return marshal({
    version: 'v1alpha1',
    metadata: {
      name: 'embedded-config',
      version: createHash('sha256').update(config).digest('hex'),
      author: 'Imager',
      description: EMBEDDED_CONFIG_DESCRIPTION,
      compatibility: { talos: { version: '>= 1.0.0' } },
    },
  });
}

/**
 * embedded-config virtual extension (Talos >= 1.12): rootfs/usr/local/etc/talos/config.yaml (0400) labelled
 * system_state_t. Returns the label map (keyed relative to dir) to pass along as ExtensionDir.selinux.
 */
export async function writeEmbeddedConfigExtension(dir: string, config: string): Promise<{ selinux: Map<string, string> }> {
  await mkdirs(dir, ['rootfs', 'rootfs/usr', 'rootfs/usr/local', 'rootfs/usr/local/etc', 'rootfs/usr/local/etc/talos']);
  await writeFileMode(path.join(dir, 'manifest.yaml'), embeddedConfigManifestYaml(config), 0o644);
  await writeFileMode(path.join(dir, 'rootfs/usr/local/etc/talos/config.yaml'), config, 0o400);
  return { selinux: new Map([['rootfs/usr/local/etc/talos/config.yaml', EMBEDDED_CONFIG_SELINUX_LABEL]]) };
}
