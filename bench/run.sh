#!/usr/bin/env bash
# `npm run bench` (after setup and build): the upload benchmark, with the same PATH
# and tools as the tests. Writes BENCHMARKS.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$ROOT"
exec node bench/bench.mjs "$@"
