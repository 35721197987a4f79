#!/usr/bin/env bash
# `npm test`: set up what is missing, then run the unit and integration suites (real Redis, docker-registry,
# s3rver, QEMU). Extra arguments go to jest, e.g. `npm test -- libs/schematic`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Demo releases are built once and cached between runs; many suites read them, so they exist before jest starts.
export FACTORY_TEST_DEMO_DIR="${FACTORY_TEST_DEMO_DIR:-$PWD/.cache/demo-releases}"
node tools/demo-releases/dist/cli.js build --out "$FACTORY_TEST_DEMO_DIR"
node tools/demo-releases/dist/cli.js publish --out "$FACTORY_TEST_DEMO_DIR"
pnpm exec tsc -p tsconfig.tests.json
exec pnpm exec jest --runInBand "$@"
