/**
 * `GET /llms.txt` (anchor-api §1.5): a plain-text guide to this factory's API for agents and people, written for this
 * implementation (the anchor's own text describes factory.talos.dev and its Enterprise routes). The factory's
 * external URLs are filled in once at start-up.
 */
import { KNOWN_PLATFORMS } from '@factory/talos';

/** Schematic ID of the empty schematic (`{}`: no extensions, no customization). */
export const EMPTY_SCHEMATIC_ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

export function llmsText(o: { externalUrl: string; externalPxeUrl: string }): string {
  const base = o.externalUrl.replace(/\/+$/, '');
  const pxe = o.externalPxeUrl.replace(/\/+$/, '');
  const host = new URL(base).host;
  const id = EMPTY_SCHEMATIC_ID;
  return `# Talos Linux Image Factory (self-hosted)

> A self-hosted Talos Linux Image Factory at ${base}: a TypeScript implementation of the API of
> siderolabs/image-factory. It is NOT factory.talos.dev: images, schematics and installer references below are
> served by this host only. Schematic IDs are the same as factory.talos.dev's for the same schematic.

Build Talos boot media and installer images from a *schematic* (system extensions, kernel arguments, META values,
overlay, bootloader, embedded machine configuration), identified by the SHA-256 of its canonical YAML.

## Quick start

1. Create a schematic (idempotent; the ID depends only on the content):

       curl -X POST --data-binary @schematic.yaml ${base}/schematics
       # -> {"id":"<schematic-id>", ...}

   schematic.yaml, for example:

       customization:
         extraKernelArgs: [console=ttyS0]
         systemExtensions:
           officialExtensions: [siderolabs/intel-ucode]

2. Download an asset: \`${base}/image/<schematic-id>/<version>/<path>\`, e.g.
   ${base}/image/${id}/v1.12.2/metal-amd64.iso
   (the first request builds the asset and may take minutes; later ones are immediate).

The empty schematic (no extensions, no customization) has the ID \`${id}\`.

## Routes

- \`POST /schematics\` — body: schematic YAML (or JSON); answers 201 with \`{"id": "<schematic-id>", ...}\`.
- \`GET /schematics/<id>\` — the canonical YAML of a stored schematic; 404 when unknown.
- \`GET /versions\` — Talos versions offered, JSON array ascending (\`?broken=true\`: the versions withdrawn).
- \`GET /version/<version>/extensions/official\` — official extensions: name, ref, digest, author, description.
- \`GET /version/<version>/overlays/official\` — official overlays (SBC boards): name, image, ref, digest.
- \`GET|HEAD /image/<schematic-id>/<version>/<path>\` — a boot asset (paths below); \`.sha256\` / \`.sha512\` appended
  to a path give its checksum; \`?filename=\` sets the download name.
- \`GET /pxe/<schematic-id>/<version>/<platform>-<arch>[-secureboot]\` — an iPXE script
  (chain it from ${pxe}/pxe/...).
- \`GET /talosctl/<version>\` — JSON array of talosctl download URLs (Talos 1.11 and later; \`[]\` before).
- \`GET|HEAD /talosctl/<version>/talosctl-<os>-<arch>[.exe]\` — one talosctl binary.
- \`GET /oci/cosign/signing-key.pub\` — the public key (PEM) that signs installer images and every stored asset.
- \`GET /secureboot/signing-cert.pem\` — the Secure Boot signing certificate (PEM), when Secure Boot is enabled.
- \`/v2/...\` — an OCI registry serving installer images (below).
- \`GET /healthz\`, \`GET /readyz\`, \`GET /metrics\`.

\`<version>\` is a Talos version such as \`v1.12.2\` (the leading \`v\` is optional). A malformed version is a 400; a
version this factory does not offer is a 404 \`version X is not available\`.

## Asset paths (\`/image/<schematic-id>/<version>/<path>\`)

| path | what |
|---|---|
| \`kernel-<arch>\` | the Linux kernel |
| \`cmdline-<platform>-<arch>[-secureboot]\` | the kernel command line |
| \`initramfs-<arch>.xz\` | the initramfs with the schematic's extensions |
| \`<platform>-<arch>[-secureboot]-uki.efi\` | a Unified Kernel Image |
| \`<platform>-<arch>[-secureboot].iso\` | a bootable ISO |
| \`<platform>-<arch>[-secureboot].<raw\\|qcow2\\|vhd\\|ova>[.xz\\|.zst\\|.gz\\|.tar.gz]\` | a disk image, e.g. \`metal-amd64.raw.xz\`, \`aws-amd64.raw.xz\`, \`gcp-amd64.raw.tar.gz\` |
| \`<platform>-installer-<arch>[-secureboot].tar\`, \`installer-<arch>.tar\` | an installer image as a tarball |

\`<arch>\` is \`amd64\` or \`arm64\` (\`x86_64\` and \`i386\` mean amd64). \`<platform>\` is one of Talos' platforms:
${KNOWN_PLATFORMS.join(', ')} (SBC boards use \`metal\` with an overlay in the schematic). Secure Boot variants need Secure Boot to be enabled on this factory.

## Installer images (OCI)

    ${host}/<image>/<schematic-id>:<version>

with \`<image>\` one of \`installer\`, \`installer-secureboot\`, \`<platform>-installer\`,
\`<platform>-installer-secureboot\`, e.g. \`${host}/metal-installer/${id}:v1.12.2\`:

    talosctl upgrade --image ${host}/metal-installer/<schematic-id>:v1.12.2
    crane manifest ${host}/installer/<schematic-id>:v1.12.2

Installer images are multi-architecture (amd64 + arm64), built on the first pull, and cosign-signed with the key at
\`${base}/oci/cosign/signing-key.pub\`:

    cosign verify --key ${base}/oci/cosign/signing-key.pub --insecure-ignore-tlog ${host}/installer/<schematic-id>:v1.12.2

## Keys and verification

- Cosign public key: ${base}/oci/cosign/signing-key.pub — signs installer images and every stored asset.
- Secure Boot certificate: ${base}/secureboot/signing-cert.pem — the UKI signing certificate enrolled into db by the
  Secure Boot ISO and disk images (a 500 when Secure Boot is not enabled here, as on the anchor).
- Checksums of any asset: append \`.sha256\` or \`.sha512\` to its path.

## Differences from factory.talos.dev

- Built assets are deterministic: the same request gives the same bytes; installer images give the same digests.
- Checksums (\`.sha256\`, \`.sha512\`) are served for every asset (an Enterprise feature of the anchor).
- A malformed version, an unknown platform or an unknown talosctl file name are 4xx answers (the anchor: 500).
- Per-client rate limits may answer 429 with Retry-After; an asset larger than the configured limit is a 422.
- Secure Boot enrollment files contain DER certificates; Sidero's Enterprise routes (SBOMs, VEX, scans, download
  tokens, authentication) are not offered.
`;
}
