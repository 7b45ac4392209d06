// The npm package @sealdrop/client (client-wasm/package.json + client-wasm/pkg) is
// complete: every file it names exists after scripts/build.sh, its version follows
// the crates', and its types declare the exports.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "./support/server.mjs";

const dir = join(ROOT, "client-wasm");
const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));

test("@sealdrop/client names only files the build produced", () => {
  assert.equal(pkg.name, "@sealdrop/client");
  const named = [pkg.main, pkg.module, pkg.types, ...pkg.files,
    ...Object.values(pkg.exports).flatMap((e) => (typeof e === "string" ? [e] : Object.values(e)))];
  for (const file of new Set(named)) {
    assert.ok(existsSync(join(dir, file)), `${file} is missing from client-wasm`);
  }
});

test("@sealdrop/client has the crates' version", () => {
  const cargo = readFileSync(join(ROOT, "Cargo.toml"), "utf8");
  const version = cargo.match(/\[workspace\.package\][^[]*?\nversion = "([^"]+)"/)[1];
  assert.equal(pkg.version, version);
});

test("@sealdrop/client's types declare version(), the wasm init and the share calls", () => {
  const dts = readFileSync(join(dir, pkg.types), "utf8");
  assert.match(dts, /export function version\(\): string;/);
  assert.match(dts, /export default function __wbg_init/);
  // The share calls, typed (interop.rs declares their option and result types).
  assert.match(dts, /export function createShare\(file: FileRef, ownerAuth: string, options\?: ShareOptions\): Promise<CreatedShare>;/);
  assert.match(dts, /export function listShares\(file: FileRef, ownerAuth: string\): Promise<ShareInfo\[\]>;/);
  assert.match(dts, /export function updateShare\(file: FileRef, ownerAuth: string, token: string, changes: ShareChanges\): Promise<ShareInfo>;/);
  assert.match(dts, /export function revokeShare\(file: FileRef, ownerAuth: string, token: string\): Promise<ShareInfo>;/);
  assert.match(dts, /export function deleteFile\(file: FileRef, ownerAuth: string\): Promise<void>;/);
  assert.match(dts, /export function linkNeedsPassword\(link: string\): boolean;/);
  assert.match(dts, /export function shareStatus\(link: string\): Promise<ShareStatus>;/);
  assert.match(dts, /password\?: string;/);
});

test("@sealdrop/client ships no test or bench hook; the conformance build has its hooks", () => {
  // checkVector and checkVectorWith exist only with the `conformance` feature
  // (tests/pages/conformance, for tests/format-vectors.test.mjs); BenchCipher,
  // benchPipeline and the options benchFixedConcurrency and benchPlain (records sent
  // unsealed) only with the `bench` feature (bench/seal-wasm); the published package and
  // the demo app lack them, in their JS, their types and their wasm (where option names
  // would sit as strings). cipherBackend is part of the product.
  const hooks = /checkVector|BenchCipher|benchPipeline|benchFixedConcurrency|benchPlain/;
  // The names the bench build reads are these very strings.
  const benchSource = readFileSync(join(dir, "src/interop.rs"), "utf8") + readFileSync(join(dir, "src/bench.rs"), "utf8");
  for (const name of ['"benchFixedConcurrency"', '"benchPlain"', "js_name = benchPipeline"]) {
    assert.ok(benchSource.includes(name), `client-wasm/src no longer names ${name}: update this test`);
  }
  for (const file of [join(dir, pkg.types), join(dir, pkg.module ?? pkg.main), join(ROOT, "web/pkg/sealdrop_client.js")]) {
    const text = readFileSync(file, "utf8");
    assert.doesNotMatch(text, hooks, file);
    assert.match(text, /cipherBackend/, file);
  }
  for (const file of [join(dir, "pkg/sealdrop_client_bg.wasm"), join(ROOT, "web/pkg/sealdrop_client_bg.wasm")]) {
    const bytes = readFileSync(file).toString("latin1");
    assert.doesNotMatch(bytes, hooks, file);
    assert.match(bytes, /stallTimeoutMs/, `${file}: the product's own option names are in the wasm`);
  }
  const conformance = readFileSync(join(ROOT, "tests/pages/conformance/sealdrop_conformance.js"), "utf8");
  assert.match(conformance, /export function checkVector\(/);
  assert.match(conformance, /export function checkVectorWith\(/);
  assert.doesNotMatch(conformance, /BenchCipher|benchPipeline/);
});
