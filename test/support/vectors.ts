/** Golden vectors from the specs that more than one package's tests check against. */

/**
 * `extensions.yaml` of an initramfs with gvisor, the schematic extension and modules.dep — talos-formats §4.3
 * verbatim, with `kernelVersion` where the spec has 6.18.44-talos.
 */
export function extensionsYamlVector(kernelVersion: string): string {
  return [
    'layers:',
    '    - image: 0.sqsh',
    '      metadata:',
    '        name: gvisor',
    '        version: 20231214.0-v1.7.0',
    '        author: Sidero Labs',
    '        description: |',
    "            This system extension provides gVisor using containerd's runtime handler.",
    '        compatibility:',
    '            talos:',
    "                version: '>= v1.7.0'",
    '    - image: 1.sqsh',
    '      metadata:',
    '        name: schematic',
    '        version: 376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba',
    '        author: Image Factory (https://factory.talos.dev)',
    '        description: Virtual extension which specifies the schematic of the image',
    '            built with schematic.',
    '        compatibility:',
    '            talos:',
    "                version: '>= 1.0.0'",
    '        extraInfo: |',
    '            customization:',
    '                systemExtensions:',
    '                    officialExtensions:',
    '                        - siderolabs/gvisor',
    '    - image: modules.dep.sqsh',
    '      metadata:',
    '        name: modules.dep',
    `        version: ${kernelVersion}`,
    '        author: Talos Machinery',
    '        description: Combined modules.dep for all extensions',
    '        compatibility:',
    '            talos:',
    '                version: ""',
    '',
  ].join('\n');
}

/** `manifest.yaml` of the schematic virtual extension for the empty schematic — talos-formats §3.4 verbatim. */
export const SCHEMATIC_MANIFEST_VECTOR = [
  'version: v1alpha1',
  'metadata:',
  '    name: schematic',
  '    version: 376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba',
  '    author: Image Factory (https://factory.talos.dev)',
  '    description: Virtual extension which specifies the schematic of the image built with schematic.',
  '    compatibility:',
  '        talos:',
  "            version: '>= 1.0.0'",
  '    extraInfo: |',
  '        customization: {}',
  '',
].join('\n');
