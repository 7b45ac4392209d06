#!/usr/bin/env bash
# The full test run (`npm test` runs scripts/setup.sh first), failing fast:
# formatting, clippy (native crates, then the wasm crates for wasm32), the native
# crates' tests, the wasm builds, then the end-to-end tests with Node's test runner.
# Prints how long each stage took.
#
# Two lanes keep both cores busy (the machines have 2; each lane alone leaves one idle
# for long stretches: a crate's codegen or link, LTO, a test binary's link):
# - the wasm builds (scripts/build.sh) start at once, in the background, beside the
#   Rust checks (fmt, clippy, cargo test: other target folders, so no cargo lock is
#   shared). Their output goes to test-results/build.log and is printed when the
#   checks are done; a failing check stops them.
# - the end-to-end tests (tests/run.mjs: 3 files at a time, longest first) run
#   beside the check that the worker still builds with wasm-opt: the tests run the
#   worker built without it (the same code, unshrunk; scripts/build.sh says why).
#
# SKIP_RUST_CHECKS=1 skips fmt, clippy and cargo test (for checking the later
# stages while a crate is mid-change); never set it in CI.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
total_start=$(now)
mkdir -p test-results

# background NAME LOG cmd...: runs cmd in a process group of its own (so that stopping
# it stops its cargo and node children too), output to LOG, which ends with the job's
# own CPU time (`times`: its children's user and system time on the second line).
BACKGROUND_PIDS=()
background() {
    local name="$1" log="$2"
    shift 2
    setsid -w bash -c '"$@"; rc=$?; echo "CPU time of this job (user, system; the shell, then its children):"; times; exit "$rc"' \
        background "$@" >"$log" 2>&1 &
    BACKGROUND_PIDS+=("$!")
    echo "(started $name in the background, output in $log)"
}
# wait_background INDEX LOG: waits for that background job, then prints its output.
wait_background() {
    local rc=0
    wait "${BACKGROUND_PIDS[$1]}" || rc=$?
    BACKGROUND_PIDS[$1]="" # reaped: its process group id may be reused
    cat "$2"
    return "$rc"
}
stop_background() {
    local pid
    for pid in "${BACKGROUND_PIDS[@]}"; do
        [[ -n "$pid" ]] && kill -- "-$pid" 2>/dev/null
    done
    return 0
}
trap 'rc=$?; stop_background; (exit "$rc") || on_exit; exit "$rc"' EXIT
trap 'exit 130' INT TERM

BUILD_LOG="test-results/build.log"
background "the wasm builds (scripts/build.sh)" "$BUILD_LOG" env SEALDROP_WASM_OPT=0 bash scripts/build.sh

if [[ "${SKIP_RUST_CHECKS:-0}" != 1 ]]; then
    step "cargo fmt --check" cargo fmt --all --check
    step "clippy (native)" cargo clippy -p sealdrop-protocol -p leakscan -p sealdrop-edge \
        --all-targets -- -D warnings
    step "clippy (wasm32)" cargo clippy -p sealdrop-client -p sealdrop-edge \
        --target wasm32-unknown-unknown -- -D warnings
    # Both test-only features in one pass, with the same packages as the pass above:
    # a different package set unifies the dependencies' features differently and
    # re-checks every dependency (minutes on a cold build).
    step "clippy (wasm32, conformance and bench builds)" cargo clippy -p sealdrop-client \
        -p sealdrop-edge --target wasm32-unknown-unknown \
        --features sealdrop-client/conformance,sealdrop-client/bench -- -D warnings
    step "cargo test (native)" cargo test -p sealdrop-protocol -p leakscan -p sealdrop-client \
        -p sealdrop-edge
    # The vector generators, built by `cargo build` with the same packages as the tests
    # above (so nothing is rebuilt: `cargo run -p` of one package would unify
    # features differently and rebuild every dependency) and run with --check.
    step "build the vector generators" cargo build --examples -p sealdrop-protocol \
        -p leakscan -p sealdrop-client -p sealdrop-edge
    for generator in gen_vectors gen_password_vectors gen_room_vectors gen_thumbnail_vectors; do
        step "$generator: vectors match their generator" \
            "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/$generator" --check
    done
else
    echo "SKIP_RUST_CHECKS=1: skipping fmt, clippy and cargo test"
fi
step "build (scripts/build.sh, beside the checks above)" wait_background 0 "$BUILD_LOG"

OPT_LOG="test-results/worker-wasm-opt.log"
background "the optimized worker build check" "$OPT_LOG" bash scripts/build.sh --check-optimized-worker
step "end-to-end (tests/run.mjs)" node tests/run.mjs --concurrency 3
step "the worker builds with wasm-opt (beside the end-to-end tests)" wait_background 1 "$OPT_LOG"

echo "---- stage times"
printf '%s\n' "${STEP_TIMES[@]}"
printf 'total %s s\n' "$(elapsed "$total_start")"
