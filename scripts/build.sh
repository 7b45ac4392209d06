#!/usr/bin/env bash
# Builds the browser client (client-wasm/pkg, copied to web/pkg), its conformance
# build (tests/pages/conformance) and the worker (edge-worker/build). Cargo builds
# incrementally; the wasm-bindgen and worker-build post-processing is skipped when its
# output is newer than the wasm cargo produced.
# Needs the tools from scripts/setup.sh.
#
# SEALDROP_WASM_OPT=0 skips wasm-opt on the worker: the same code, unshrunk. The tests
# build it so (scripts/test.sh: wasm-opt is binaryen's JavaScript build, a minute or
# more of one core) and check the optimized build beside the end-to-end tests
# (check_optimized_worker below); `npm start` and `npm run bench` build it optimized,
# as a deployment is. edge-worker/build/wasm-opt.txt says which the build is, so a
# build of the other kind is redone, never taken as up to date.
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
    local out="edge-worker/build" opt=on args=(--release)
    if [[ "${SEALDROP_WASM_OPT:-1}" == 0 || -z "${WASM_OPT_BIN:-}" ]]; then
        opt=off
        args+=(--no-opt)
    fi
    if [[ -f "$out/index.js" && -f "$out/index_bg.wasm" && "$out/index.js" -nt "$wasm" &&
        "$(cat "$out/wasm-opt.txt" 2>/dev/null)" == "$opt" ]]; then
        echo "edge-worker/build is up to date (wasm-opt $opt)"
        return
    fi
    (cd edge-worker && worker-build "${args[@]}")
    echo "$opt" >"$out/wasm-opt.txt"
}

# The worker as a deployment builds it (wasm-opt on), into a scratch folder: for a
# build whose worker skipped wasm-opt (SEALDROP_WASM_OPT=0; run as `bash scripts/build.sh
# --check-optimized-worker` after that build), so that wasm-opt failing
# on the worker's wasm (binaryen versions differ in the wasm features they take) is
# caught all the same. Checks that the optimized module validates and that its
# JavaScript glue is the tested build's, byte for byte: wasm-opt changes no import or
# export. Reuses the worker's cargo build (it must have run first).
check_optimized_worker() {
    if [[ -z "${WASM_OPT_BIN:-}" ]]; then
        echo "no wasm-opt (WASM_OPT_BIN): run scripts/setup.sh" >&2
        return 1
    fi
    local scratch
    scratch="$(mktemp -d -t sealdrop-worker-opt.XXXXXX)"
    (cd edge-worker && CARGO_TARGET_DIR="$WORKER_TARGET_DIR" worker-build --release --out-dir "$scratch") &&
        cmp "$scratch/index.js" edge-worker/build/index.js &&
        node -e 'const fs = require("node:fs"); const [opt, plain] = process.argv.slice(1).map((f) => fs.readFileSync(f));
            if (!WebAssembly.validate(opt)) throw new Error("the optimized worker wasm does not validate");
            console.log(`optimized worker: ${opt.length} bytes of wasm (${plain.length} without wasm-opt)`);' \
            "$scratch/index_bg.wasm" edge-worker/build/index_bg.wasm ||
        { rm -rf "$scratch"; return 1; }
    rm -rf "$scratch"
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

if [[ "${1:-}" == --check-optimized-worker ]]; then
    check_optimized_worker
    exit
fi

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
