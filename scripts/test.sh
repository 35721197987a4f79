#!/usr/bin/env bash
# `npm test`: set up what is missing, then run the unit and integration suites (real Redis, docker-registry,
# s3rver, QEMU). Extra arguments go to jest, e.g. `npm test -- libs/schematic`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Demo releases are built once and cached between runs (CI builds them on its first run).
export FACTORY_TEST_DEMO_DIR="${FACTORY_TEST_DEMO_DIR:-$PWD/.cache/demo-releases}"
pnpm exec tsc -p tsconfig.tests.json
exec pnpm exec jest --runInBand "$@"
