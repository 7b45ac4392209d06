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
    (cd edge-worker && cargo build --lib --release --target wasm32-unknown-unknown)
    local wasm="$WASM_TARGET_DIR/sealdrop_edge.wasm" out="edge-worker/build"
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
    cargo build --profile conformance --target wasm32-unknown-unknown -p sealdrop-client \
        --features conformance
    local wasm="$WASM_TARGET_DIR/../conformance/sealdrop_client.wasm" pkg="tests/pages/conformance"
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

step "build client (wasm)" build_client
step "build conformance client (wasm)" build_conformance
step "build worker (wasm)" build_worker
