// Builds the bench-only wasm build of the client's record cipher (bench/seal-wasm, see
// its Cargo.toml) into bench/seal-wasm/pkg, the way scripts/build.sh builds the client:
// cargo (incremental, its own target/) then wasm-bindgen --target web, skipped when up
// to date.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../tests/support/process.mjs";

const CRATE = join(ROOT, "bench/seal-wasm");

/** Builds it; returns the folder with sealdrop_bench_seal.js and its wasm. */
export function buildSealWasm() {
  console.log("bench: building the bench-only record cipher build (bench/seal-wasm)");
  execFileSync("cargo", ["build", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path", join(CRATE, "Cargo.toml")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const wasm = join(CRATE, "target/wasm32-unknown-unknown/release/sealdrop_bench_seal.wasm");
  const pkg = join(CRATE, "pkg");
  const out = join(pkg, "sealdrop_bench_seal_bg.wasm");
  if (!existsSync(out) || statSync(wasm).mtimeMs > statSync(out).mtimeMs) {
    execFileSync("wasm-bindgen", ["--target", "web", "--out-dir", pkg, wasm], { stdio: ["ignore", "inherit", "inherit"] });
  }
  return pkg;
}
