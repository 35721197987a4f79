#!/usr/bin/env bash
# Sourced by the container proof: makes a Docker daemon available through $DOCKER_HOST.
#   - DOCKER_HOST already set, or the default socket answers: use that daemon (started by someone else; left alone).
#   - else start Debian's dockerd by hand (nothing starts it on these machines) with its own data root, exec root,
#     pid file and socket under $CONTAINERS_CACHE, so images (the base images above all) survive between runs, and
#     set STARTED_DOCKERD_PID so the caller stops exactly that process at the end.
# Needs: CONTAINERS_CACHE, DOCKER_BIN.
STARTED_DOCKERD_PID=""
if [ -z "${DOCKER_HOST:-}" ] && ! "$DOCKER_BIN" version >/dev/null 2>&1; then
  mkdir -p "$CONTAINERS_CACHE/docker"
  export DOCKER_HOST="unix://$CONTAINERS_CACHE/docker.sock"
  if ! "$DOCKER_BIN" version >/dev/null 2>&1; then
    echo "[containers] starting dockerd (data root $CONTAINERS_CACHE/docker)"
    dockerd --data-root "$CONTAINERS_CACHE/docker" --exec-root "$CONTAINERS_CACHE/exec" \
      --pidfile "$CONTAINERS_CACHE/dockerd.pid" -H "$DOCKER_HOST" >"$CONTAINERS_CACHE/dockerd.log" 2>&1 &
    STARTED_DOCKERD_PID=$!
    for _ in $(seq 1 60); do
      "$DOCKER_BIN" version >/dev/null 2>&1 && break
      kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || { tail -20 "$CONTAINERS_CACHE/dockerd.log" >&2; exit 1; }
      sleep 0.5
    done
    "$DOCKER_BIN" version >/dev/null || { tail -20 "$CONTAINERS_CACHE/dockerd.log" >&2; exit 1; }
  fi
fi
