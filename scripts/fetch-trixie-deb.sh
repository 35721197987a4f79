#!/usr/bin/env bash
# fetch-trixie-deb.sh [--arch ARCH] [--suite SUITE] [--deb-only] PACKAGE DEST: downloads PACKAGE's .deb from Debian
# trixie (or SUITE, e.g. sid for files only newer Debian ships, such as scripts/well-known-certs.sh's) and
# unpacks it (dpkg-deb -x) into DEST, without installing it and without touching the system's apt configuration or
# state. With --deb-only, DEST is a directory the .deb is moved into (under apt's file name) and its path is the
# only line printed on stdout; progress goes to stderr. --arch fetches another architecture's package (default:
# the native one), e.g. systemd-boot-efi:arm64 for the demo releases.
#
# It uses a private apt configuration under .cache/tools/apt-trixie: a sources.list naming the `trixie` suite of the
# mirror the system already uses (read from /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}),
# its own lists and package cache. Only the package itself is fetched (no dependencies), so it suits binaries that
# need nothing but libc, such as cosign (Go), or files that are never executed here, such as systemd-boot's EFI
# binaries. FACTORY_TRIXIE_MIRROR overrides the mirror (e.g. a local proxy).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: fetch-trixie-deb.sh [--arch ARCH] [--suite SUITE] [--deb-only] PACKAGE DEST"
arch=""
suite=trixie
deb_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=${2:?$usage}; shift 2 ;;
    --suite) suite=${2:?$usage}; shift 2 ;;
    --deb-only) deb_only=1; shift ;;
    --*) echo "$usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
pkg=${1:?$usage}
dest=${2:?$usage}
apt_dir=$PWD/.cache/tools/apt-$suite

# The system's own Debian mirror: the first `deb` entry whose suite is the release codename (not -security or
# -updates), from one-line .list files or deb822 .sources files. Its Signed-By keyring is kept.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=${FACTORY_TRIXIE_MIRROR:-}
keyring=""
[ -n "$mirror" ] || for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  line=$(awk -v cn="$codename" '
    $1 == "deb" {
      opts = ""; i = 2
      if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
      if ($(i + 1) == cn) { print $i "|" opts; exit }
    }' "$f")
  if [ -n "$line" ]; then
    mirror=${line%%|*}
    keyring=$(sed -n 's/.*signed-by=\([^] ]*\).*/\1/p' <<<"${line#*|}")
    break
  fi
done
if [ -z "$mirror" ]; then
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    line=$(awk -v cn="$codename" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " cn " ") && enabled !~ /^[Nn]o$/ && uris != "") {
          split(uris, u, " "); print u[1] "|" signed; found = 1; exit
        }
        types = suites = uris = signed = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^[ \t]+/, "")
        if (key == "types") types = $0; else if (key == "suites") suites = $0; else if (key == "uris") uris = $0
        else if (key == "signed-by") signed = $0; else if (key == "enabled") enabled = $0
      }
      END { if (!found) flush() }' "$f")
    if [ -n "$line" ]; then
      mirror=${line%%|*}
      keyring=${line#*|}
      break
    fi
  done
fi
if [ -z "$mirror" ]; then
  mirror=http://deb.debian.org/debian
  echo "[setup] no Debian mirror for '$codename' found in /etc/apt; using $mirror" >&2
fi
# An inline (armored) Signed-By block cannot go on a one-line entry; fall back to the archive keyring.
case "$keyring" in /*) [ -f "$keyring" ] || keyring="" ;; *) keyring="" ;; esac
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg

mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o APT::Sandbox::User=root
)
[ "$(id -u)" -eq 0 ] || apt_opts+=(-o Debug::NoLocking=1)
native=$(dpkg --print-architecture)
if [ -n "$arch" ] && [ "$arch" != "$native" ]; then
  # list the foreign architecture explicitly: it need not be enabled in dpkg for a download
  apt_opts+=(-o "APT::Architectures::=$native" -o "APT::Architectures::=$arch")
  pkg="$pkg:$arch"
fi
# `/trixie` takes the version from the trixie lists only: without them apt would offer the installed (bookworm) one
pkg="$pkg/$suite"

echo "[setup] apt-get update ($mirror $suite, private lists in $apt_dir)" >&2
apt-get "${apt_opts[@]}" update -qq >&2
rm -f "$apt_dir/download/"*.deb
(cd "$apt_dir/download" && apt-get "${apt_opts[@]}" download -qq "$pkg" >&2)
deb=$(ls "$apt_dir/download/"*.deb)
if [ "$deb_only" = 1 ]; then
  mkdir -p "$dest"
  # via a temporary name: a concurrent reader of DEST (another build sharing the cache) never sees a partial .deb
  mv -f "$deb" "$dest/.partial-$$" && mv -f "$dest/.partial-$$" "$dest/$(basename "$deb")"
  echo "[setup] downloaded $(basename "$deb") into $dest" >&2
  echo "$dest/$(basename "$deb")"
  exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
dpkg-deb -x "$deb" "$dest"
echo "[setup] unpacked $(basename "$deb") into $dest" >&2
