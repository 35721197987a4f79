#!/usr/bin/env bash
# "Containers for real": builds deploy/Dockerfile, starts docker-compose.yml (+ docker-compose.test.yml, which swaps
# MinIO for s3rver and ghcr.io for the demo releases) with Debian's docker.io and docker-compose v1, runs the smoke
# (deploy/test/smoke.js), measures how long each service takes to stop on SIGTERM (budget: < 10 s), then `down -v`.
# Run by .ci/run after `npm test` (it needs the demo releases and, for `cosign verify`, the cosign scripts/setup.sh
# fetched). Docker Hub is not needed: deploy/test/base-images.sh builds the public base images locally.
#   FACTORY_CONTAINERS_CACHE  daemon data root + base-image work dir (default ~/.cache/talos-factory-containers; kept
#                             between runs so the base images are built once per machine)
#   FACTORY_TEST_DEMO_DIR     demo releases (default .cache/demo-releases)
#   DOCKER_HOST               use this daemon instead of starting one
set -euo pipefail
cd "$(dirname "$0")/../.."
t_start=$(date +%s)
secs() { echo $(( $(date +%s) - $1 )); }
say() { echo "[containers] $*"; }

# Debian's packages (CI machines have none of them at first).
bash scripts/apt-ensure.sh containers docker.io docker-compose mmdebstrap skopeo

# Debian's client by path: another `docker` earlier on PATH may be a different build.
export DOCKER_BIN=/usr/bin/docker
export CONTAINERS_CACHE="${FACTORY_CONTAINERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/talos-factory-containers}"
export FACTORY_TEST_DEMO_DIR="${FACTORY_TEST_DEMO_DIR:-$PWD/.cache/demo-releases}"
if [ ! -f "$FACTORY_TEST_DEMO_DIR/registry/.published" ] || [ ! -f "$FACTORY_TEST_DEMO_DIR/cosign.pub" ]; then
  say "building the demo releases into $FACTORY_TEST_DEMO_DIR"
  node tools/demo-releases/dist/cli.js build --out "$FACTORY_TEST_DEMO_DIR"
  node tools/demo-releases/dist/cli.js publish --out "$FACTORY_TEST_DEMO_DIR"
fi
mkdir -p "$CONTAINERS_CACHE"

# shellcheck source=deploy/test/dockerd.sh
source deploy/test/dockerd.sh
export DOCKER_HOST
export COMPOSE_PROJECT_NAME=tifcontainers
compose() { docker-compose -f docker-compose.yml -f docker-compose.test.yml "$@"; }
stack_up=0
cleanup() {
  local rc=$?
  if [ "$stack_up" = 1 ]; then
    if [ "$rc" != 0 ]; then
      say "failed: last logs of the stack"
      compose logs --no-color --tail=30 2>&1 | cut -c1-400 | tail -150 || true
    fi
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  if [ -n "$STARTED_DOCKERD_PID" ]; then
    kill "$STARTED_DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  fi
  exit "$rc"
}
trap cleanup EXIT

t=$(date +%s)
bash deploy/test/base-images.sh
t_base=$(secs "$t")

t=$(date +%s)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
ca_secret=()
[ -s /etc/ssl/certs/ca-certificates.crt ] && ca_secret=(--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt)
DOCKER_BUILDKIT=1 "$DOCKER_BIN" build -q "${ca_secret[@]}" -f deploy/Dockerfile -t talos-image-factory:latest \
  --build-arg VERSION="$(node -p "require('./package.json').version")" --build-arg REVISION="$revision" \
  --build-arg SOURCE="$(git config --get remote.origin.url 2>/dev/null | sed -E 's#//[^/@]*@#//#' || true)" \
  --build-arg CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" . >/dev/null
t_image=$(secs "$t")
image_mb=$(( $("$DOCKER_BIN" image inspect -f '{{.Size}}' talos-image-factory:latest) / 1000000 ))
say "image talos-image-factory:latest: ${image_mb} MB ($(DOCKER_HOST=$DOCKER_HOST "$DOCKER_BIN" image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}} {{index .Config.Labels "org.opencontainers.image.created"}}' talos-image-factory:latest))"

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
FACTORY_HTTP_PORT=$(free_port)
S3_PUBLIC_PORT=$(free_port)
export FACTORY_HTTP_PORT S3_PUBLIC_PORT
export FACTORY_EXTERNAL_URL="http://127.0.0.1:$FACTORY_HTTP_PORT/"
export S3_PUBLIC_ENDPOINT="http://127.0.0.1:$S3_PUBLIC_PORT"

t=$(date +%s)
compose down -v --remove-orphans >/dev/null 2>&1 || true
stack_up=1
compose up -d --no-build 2>&1 | sed 's/^/[compose] /'
gateway=$(compose ps -q gateway)
for _ in $(seq 1 120); do
  [ "$("$DOCKER_BIN" inspect -f '{{.State.Health.Status}}' "$gateway")" = healthy ] && break
  sleep 1
done
[ "$("$DOCKER_BIN" inspect -f '{{.State.Health.Status}}' "$gateway")" = healthy ] || { say "gateway never became healthy"; exit 1; }
t_up=$(secs "$t")
compose ps

t=$(date +%s)
SMOKE_S3_PUBLIC=$S3_PUBLIC_ENDPOINT node deploy/test/smoke.js "127.0.0.1:$FACTORY_HTTP_PORT"
t_smoke=$(secs "$t")

# SIGTERM drain: `docker stop` sends SIGTERM (tini forwards it to node, whose onShutdown closes workers, queues and
# listeners) and waits up to 10 s before SIGKILL. Each service must exit by itself, with status 0, well within that.
drain_report=""
for svc in gateway build-worker-1 build-worker-2 registry-proxy schematic-store signing; do
  id=$(compose ps -q "$svc")
  t0=$(date +%s%N)
  "$DOCKER_BIN" stop -t 10 "$id" >/dev/null
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  code=$("$DOCKER_BIN" inspect -f '{{.State.ExitCode}}' "$id")
  drain_report+=" $svc=${ms}ms(exit $code)"
  if [ "$code" != 0 ] || [ "$ms" -ge 10000 ]; then say "SIGTERM drain of $svc: ${ms} ms, exit $code (want < 10000 ms, exit 0)"; exit 1; fi
done
say "SIGTERM drain:$drain_report"

t=$(date +%s)
compose down -v --remove-orphans >/dev/null 2>&1
stack_up=0
t_down=$(secs "$t")
say "timings: base images ${t_base}s, image build ${t_image}s, up+healthy ${t_up}s, smoke ${t_smoke}s, down ${t_down}s, total $(secs "$t_start")s"
