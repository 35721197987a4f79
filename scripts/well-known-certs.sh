#!/usr/bin/env bash
# well-known-certs.sh [--write]: takes the well-known Microsoft UEFI certificates that includeWellKnownCertificates
# enrolls (talos-formats §7.5) out of Debian's pre-enrolled OVMF variable stores (OVMF_VARS_4M.ms.fd) and checks them
# against libs/authenticode/data/well-known (its manifest.json names, for each certificate, the Debian suite, package
# and file it comes from). Without --write it only checks: the committed DER files must be exactly what the packages
# hold. With --write it (re)writes the DER files and the manifest's subject, SHA-256 and package versions.
#
# The packages are downloaded (not installed) through scripts/fetch-trixie-deb.sh's private apt configuration, one
# suite at a time, into .cache/tools/well-known-certs. Needs node, openssl and a built libs/authenticode.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$PWD/.cache/tools/well-known-certs
manifest=libs/authenticode/data/well-known/manifest.json
pnpm exec tsc -b libs/authenticode >&2

sources=()
# each distinct "suite package" pair the manifest names
while read -r suite package; do
  deb=$(bash scripts/fetch-trixie-deb.sh --suite "$suite" --deb-only "$package" "$work/debs/$suite")
  root=$work/$suite-$package
  rm -rf "$root" && mkdir -p "$root" && dpkg-deb -x "$deb" "$root"
  version=$(dpkg-deb -f "$deb" Version)
  echo "[well-known-certs] $suite $package $version -> $root" >&2
  sources+=("$suite/$package=$version=$root")
done < <(node -e '
  const m = require("./" + process.argv[1]);
  const seen = new Set(m.certificates.map((c) => `${c.source.suite} ${c.source.package}`));
  for (const s of seen) console.log(s);' "$manifest")

node scripts/well-known-certs.js "$@" "${sources[@]}"
