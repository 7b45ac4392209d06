#!/usr/bin/env bash
# Serves the built app and worker locally (what `npm start` ends with):
# http://127.0.0.1:8787, state in .wrangler/. PORT=... to change the port.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
# The URLs the worker hands out start with PUBLIC_URL: keep it on the port served.
port="${PORT:-8787}"
exec wrangler dev --local --ip 127.0.0.1 --port "$port" \
    --var "PUBLIC_URL:${PUBLIC_URL:-http://127.0.0.1:$port}" "$@"
