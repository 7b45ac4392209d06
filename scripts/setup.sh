#!/usr/bin/env bash
# Installs what building and testing sealdrop needs, skipping whatever is already
# there at the right version. Safe to run again; about a second when all is present.
# Only package registries are used (crates.io, npm, PyPI, Debian): see shared TOOLCHAIN notes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
setup_start=$(now)

say() { echo "setup: $*"; }

version_ge() { # version_ge A B: A >= B (dotted numbers)
    [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

# 1. Rust target for the browser client and the worker.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "installing rustup target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-cli (exactly the wasm-bindgen crate's version) and worker-build
#    (the worker crate's version), both from crates.io. Never `--locked` for
#    wasm-bindgen-cli: its lockfile names a crate version this registry lacks.
#    When both are missing they build side by side (about 3-4 minutes).
installed_version() { # installed_version BIN: the version a tool prints, or nothing
    local bin="${CARGO_HOME:-$HOME/.cargo}/bin/$1"
    [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | awk '{ print $NF }' || true
}
pids=()
logs=()
cargo_install() { # cargo_install CRATE VERSION
    local log
    log="$(mktemp -t "sealdrop-install-$1.XXXXXX.log")"
    say "installing $1 $2 with cargo (log: $log)"
    cargo install "$1" --version "$2" --force >"$log" 2>&1 &
    pids+=($!)
    logs+=("$log")
}
if [[ "$(installed_version wasm-bindgen)" != "$WASM_BINDGEN_VERSION" ]]; then
    cargo_install wasm-bindgen-cli "$WASM_BINDGEN_VERSION"
fi
if [[ "$(installed_version worker-build)" != "$WORKER_BUILD_VERSION" ]]; then
    cargo_install worker-build "$WORKER_BUILD_VERSION"
fi
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        tail -n 40 "${logs[$i]}" >&2
        say "FAILED: cargo install, see ${logs[$i]}" >&2
        exit 1
    fi
done

# 3. Node >= 22.12 for wrangler 4.16x: the system node when it is new enough,
#    otherwise Node 22 from the npm registry, unpacked in .tools/node (gitignored)
#    and put first on PATH by env.sh.
node_version() { "$1" -p 'process.versions.node' 2>/dev/null || echo 0; }
if [[ -x "$NODE_DIR/node" ]]; then
    if [[ "$(node_version "$NODE_DIR/node")" != "$NODE_VERSION" ]]; then
        say "replacing .tools Node $(node_version "$NODE_DIR/node") with $NODE_VERSION"
        rm -rf "$TOOLS/node"
    fi
fi
if [[ ! -x "$NODE_DIR/node" ]] && ! version_ge "$(node_version node)" "$NODE_MIN"; then
    say "installing Node $NODE_VERSION from npm ($NODE_PKG) into .tools/node (system node is $(node_version node))"
    mkdir -p "$TOOLS/node"
    npm install --prefix "$TOOLS/node" --no-save --no-audit --no-fund --loglevel=error \
        "$NODE_PKG@$NODE_VERSION"
fi
source "$ROOT/scripts/env.sh" # picks up the new node (and later the npm binaries)

# 4. npm packages (wrangler, playwright-core, binaryen): `npm ci` when node_modules
#    is missing or older than package-lock.json.
if [[ -f package-lock.json ]]; then
    if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
        say "installing npm packages (npm ci)"
        npm_log="$(mktemp -t sealdrop-npm-ci.XXXXXX.log)"
        if ! npm ci --no-audit --no-fund --loglevel=error >"$npm_log" 2>&1; then
            # The registry reachable here lacks workerd's macOS/Windows optional
            # packages, so a lock made here omits them and `npm ci` calls it out of
            # sync. `npm install --no-save` installs the same locked versions.
            if grep -q 'from lock file' "$npm_log"; then
                say "npm ci refused the lock (other platforms' optional packages are absent); npm install --no-save instead"
                npm install --no-save --no-audit --no-fund --loglevel=error
            else
                cat "$npm_log" >&2
                exit 1
            fi
        fi
        rm -f "$npm_log"
    fi
elif [[ ! -d node_modules ]]; then
    say "installing npm packages (npm install: no package-lock.json yet)"
    npm install --no-audit --no-fund --loglevel=error
fi
source "$ROOT/scripts/env.sh" # WASM_OPT_BIN, ESBUILD_BIN now exist

# 5. Chromium for the end-to-end tests (Debian's package; `npx playwright install`
#    downloads a browser from elsewhere and fails here).
if [[ ! -x "$CHROMIUM_BIN" ]]; then
    say "installing chromium with apt-get"
    sudo_cmd=()
    [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi

# 6. nanio, the local S3 server of the tests and the benchmark (PyPI), with every
#    dependency pinned (tests/support/s3-requirements.txt), in a venv in .tools/nanio.
#    Skipped when the venv was made from the same requirements file.
NANIO_VENV="$TOOLS/nanio"
NANIO_REQUIREMENTS="tests/support/s3-requirements.txt"
find_python() { # the first Python >= 3.11 on PATH (nanio needs it)
    local py
    for py in python3.13 python3.12 python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            command -v "$py"
            return
        fi
    done
}
if [[ ! -x "$NANIO_VENV/bin/python" ]] || ! cmp -s "$NANIO_REQUIREMENTS" "$NANIO_VENV/requirements.txt"; then
    python="$(find_python)"
    if [[ -z "$python" ]]; then
        say "FAILED: the tests' S3 server (nanio) needs Python >= 3.11 with venv and pip; none found on PATH (python3 is $(python3 --version 2>&1 || echo missing))" >&2
        exit 1
    fi
    say "installing nanio into .tools/nanio with $python ($("$python" --version 2>&1))"
    rm -rf "$NANIO_VENV"
    if ! "$python" -m venv "$NANIO_VENV"; then
        say "FAILED: '$python -m venv' does not work (on Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
    nanio_log="$(mktemp -t sealdrop-pip-nanio.XXXXXX.log)"
    if ! "$NANIO_VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
        -r "$NANIO_REQUIREMENTS" >"$nanio_log" 2>&1; then
        tail -n 40 "$nanio_log" >&2
        say "FAILED: pip install nanio, see $nanio_log" >&2
        exit 1
    fi
    rm -f "$nanio_log"
    cp "$NANIO_REQUIREMENTS" "$NANIO_VENV/requirements.txt" # marks the venv complete
fi

# 7. Local secrets for `wrangler dev` (gitignored): the HMAC key for blob URLs.
if [[ ! -f .dev.vars ]]; then
    say "writing .dev.vars with a random SIGNING_SECRET"
    (
        umask 077
        echo "SIGNING_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >.dev.vars
    )
fi
# Rooms (docs/PROTOCOL.md): the HS256 secret of room tokens, and the dev-only token
# route (DEV_LOGIN lives here, never in wrangler.toml). Added to an older .dev.vars too.
if ! grep -q '^JWT_SECRET=' .dev.vars; then
    say "adding a random JWT_SECRET to .dev.vars"
    echo "JWT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >>.dev.vars
fi
if ! grep -q '^DEV_LOGIN=' .dev.vars; then
    say "adding DEV_LOGIN=true to .dev.vars (local dev tokens)"
    echo "DEV_LOGIN=true" >>.dev.vars
fi

printf 'setup: ready in %s s (node %s, wasm-bindgen %s, worker-build %s, nanio %s)\n' \
    "$(elapsed "$setup_start")" "$(node -p 'process.versions.node')" \
    "$(installed_version wasm-bindgen)" "$(installed_version worker-build)" \
    "$("$NANIO_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("nanio"))')"
