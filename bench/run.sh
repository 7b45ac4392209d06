#!/usr/bin/env bash
# `npm run bench` (after setup and build): the upload benchmark, then the rooms
# benchmark (bench/rooms.mjs, against Socket.IO), with the same PATH and tools as the
# tests. Both write their section of BENCHMARKS.md. `--rooms-only` (npm run
# bench:rooms) runs only the second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$ROOT"
if [[ "${1:-}" != "--rooms-only" ]]; then
    node bench/bench.mjs "$@"
fi
exec node bench/rooms.mjs
