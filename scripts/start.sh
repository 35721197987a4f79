#!/usr/bin/env bash
# `npm start`: set up what is missing, then run the whole factory in the foreground (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node tools/launcher/dist/main.js
