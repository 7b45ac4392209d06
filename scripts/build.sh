#!/usr/bin/env bash
# Builds the browser client (client-wasm/pkg, copied to web/pkg), its conformance
# build (tests/pages/conformance) and the worker (edge-worker/build). Cargo builds
# incrementally; the wasm-bindgen and worker-build post-processing is skipped when its
# output is newer than the wasm cargo produced.
# Needs the tools from scripts/setup.sh. SEALDROP_WASM_OPT=0 skips wasm-opt on the worker.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

WASM_TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')/wasm32-unknown-unknown/release"

build_client() {
    cargo build --release --target wasm32-unknown-unknown -p sealdrop-client
    local wasm="$WASM_TARGET_DIR/sealdrop_client.wasm" pkg="client-wasm/pkg"
    if [[ ! -f "$pkg/sealdrop_client_bg.wasm" || "$wasm" -nt "$pkg/sealdrop_client_bg.wasm" ]]; then
        rm -rf "$pkg.tmp"
        wasm-bindgen --target web --out-dir "$pkg.tmp" "$wasm"
        rm -rf "$pkg" && mv "$pkg.tmp" "$pkg"
    else
        echo "client-wasm/pkg is up to date"
    fi
    # The cipher workers' script, beside the module it imports (js/spawn.js finds it).
    cp client-wasm/js/sealdrop_worker.js "$pkg"/
    # The demo app imports /pkg/sealdrop_client.js, which imports its snippets.
    rm -rf web/pkg
    mkdir -p web/pkg
    cp -r "$pkg"/sealdrop_client.js "$pkg"/sealdrop_client_bg.wasm "$pkg"/sealdrop_worker.js \
        "$pkg"/snippets web/pkg/
}

build_worker() {
    # Same cargo invocation as worker-build's own (it runs `cargo build --lib
    # --release --target wasm32-unknown-unknown` in edge-worker/ with
    # WASM_BINDGEN_USE_JS_SYS=1), so this only tells whether the wasm changed.
    export CARGO_TARGET_DIR="$WORKER_TARGET_DIR"
    (cd edge-worker && cargo build --lib --release --target wasm32-unknown-unknown)
    local wasm="$WORKER_TARGET_DIR/wasm32-unknown-unknown/release/sealdrop_edge.wasm"
    local out="edge-worker/build"
    if [[ -f "$out/index.js" && -f "$out/index_bg.wasm" && "$out/index.js" -nt "$wasm" ]]; then
        echo "edge-worker/build is up to date"
        return
    fi
    local args=(--release)
    if [[ "${SEALDROP_WASM_OPT:-1}" == 0 || -z "${WASM_OPT_BIN:-}" ]]; then
        args+=(--no-opt)
    fi
    (cd edge-worker && worker-build "${args[@]}")
}

# The same client with the `conformance` feature (its `checkVector` test hook) for
# tests/format-vectors.test.mjs, served from tests/pages/conformance/ (gitignored). A
# profile of its own keeps it apart from the release build and cheap: unoptimized,
# incremental.
build_conformance() {
    CARGO_TARGET_DIR="$CONFORMANCE_TARGET_DIR" cargo build --profile conformance \
        --target wasm32-unknown-unknown -p sealdrop-client --features conformance
    local wasm="$CONFORMANCE_TARGET_DIR/wasm32-unknown-unknown/conformance/sealdrop_client.wasm"
    local pkg="tests/pages/conformance"
    if [[ -f "$pkg/sealdrop_conformance_bg.wasm" && "$pkg/sealdrop_conformance_bg.wasm" -nt "$wasm" ]]; then
        echo "tests/pages/conformance is up to date"
        return
    fi
    rm -rf "$pkg.tmp"
    # Its own file names, so no test page shares a name with the app's web/pkg/ files.
    wasm-bindgen --target web --no-typescript --out-name sealdrop_conformance \
        --out-dir "$pkg.tmp" "$wasm"
    rm -rf "$pkg" && mv "$pkg.tmp" "$pkg"
}

# Three builds side by side, each in a target folder of its own (cargo locks a target
# folder per build): the client (release), the worker (release: it unifies its
# dependencies' features differently, so it shares few compiled crates with the client)
# and the conformance client (another profile, sharing none). Each ends in a long
# single-threaded step (LTO, wasm-opt) that leaves a core idle; side by side, a cold
# build takes minutes less.
TARGET_ROOT="$(dirname "$(dirname "$WASM_TARGET_DIR")")"
CONFORMANCE_TARGET_DIR="$TARGET_ROOT/conformance-build"
WORKER_TARGET_DIR="$TARGET_ROOT/worker-build"
beside() { # beside NAME FUNCTION: runs FUNCTION in the background, its output to a log
    local log
    log="$(mktemp -t "sealdrop-$1-build.XXXXXX.log")"
    "$2" >"$log" 2>&1 &
    BESIDE_PIDS+=("$!")
    BESIDE_LOGS+=("$log")
}
finish() { # finish INDEX: waits for that background build and prints its output
    local rc=0
    wait "${BESIDE_PIDS[$1]}" || rc=$?
    cat "${BESIDE_LOGS[$1]}"
    rm -f "${BESIDE_LOGS[$1]}"
    return "$rc"
}
BESIDE_PIDS=()
BESIDE_LOGS=()
beside worker build_worker
beside conformance build_conformance
step "build client (wasm)" build_client
step "build worker (wasm, beside the client)" finish 0
step "build conformance client (wasm, beside the client)" finish 1
