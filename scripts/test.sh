#!/usr/bin/env bash
# The full test run (`npm test` runs scripts/setup.sh first), failing fast:
# formatting, clippy (native crates, then the wasm crates for wasm32), the native
# crates' tests, the wasm builds, then the end-to-end tests with Node's test runner.
# Prints how long each stage took.
#
# SKIP_RUST_CHECKS=1 skips fmt, clippy and cargo test (for checking the later
# stages while a crate is mid-change); never set it in CI.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
total_start=$(now)

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
step "build (scripts/build.sh)" bash scripts/build.sh
step "end-to-end (node --test)" node --test --test-concurrency=2 --test-timeout=300000 --test-reporter=spec 'tests/**/*.test.mjs'

echo "---- stage times"
printf '%s\n' "${STEP_TIMES[@]}"
printf 'total %s s\n' "$(elapsed "$total_start")"
