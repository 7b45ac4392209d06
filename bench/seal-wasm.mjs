// Builds the bench-only build of the client (bench/seal-wasm: the client with its
// `bench` feature, see its Cargo.toml) into bench/seal-wasm/pkg, the way
// scripts/build.sh builds the client: cargo (incremental, its own target/), then
// wasm-bindgen --target web under the client's own file names (sealdrop_client.js),
// with the cipher workers' script beside it, so its Uploader starts its workers from
// there as the product's does. Served at /seal-wasm/ by the bench's origin; never
// published.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../tests/support/process.mjs";

const CRATE = join(ROOT, "bench/seal-wasm");

/** Builds it; returns the folder with sealdrop_client.js, its wasm and sealdrop_worker.js. */
export function buildSealWasm() {
  console.log("bench: building the bench-only client build (bench/seal-wasm)");
  execFileSync("cargo", ["build", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path", join(CRATE, "Cargo.toml")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const wasm = join(CRATE, "target/wasm32-unknown-unknown/release/sealdrop_bench_seal.wasm");
  const pkg = join(CRATE, "pkg");
  const out = join(pkg, "sealdrop_client_bg.wasm");
  if (!existsSync(out) || statSync(wasm).mtimeMs > statSync(out).mtimeMs) {
    execFileSync("wasm-bindgen", ["--target", "web", "--out-name", "sealdrop_client", "--out-dir", pkg, wasm], { stdio: ["ignore", "inherit", "inherit"] });
  }
  copyFileSync(join(ROOT, "client-wasm/js/sealdrop_worker.js"), join(pkg, "sealdrop_worker.js"));
  return pkg;
}
