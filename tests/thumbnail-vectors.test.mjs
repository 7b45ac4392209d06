// The thumbnail vectors (docs/FORMAT.md §10, tests/vectors/thumbnail/) through an
// independent implementation (tests/support/thumbnail.mjs: Node's own HKDF, HMAC and
// AES-GCM, written from the document). The Rust crate checks the same files (protocol/src/format/thumbnail.rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./support/server.mjs";
import { openThumbnail } from "./support/thumbnail.mjs";

const dir = join(ROOT, "tests/vectors/thumbnail");

const cases = readdirSync(dir).filter((f) => f.endsWith(".txt")).map((f) => {
  const fields = Object.fromEntries(readFileSync(join(dir, f), "utf8").split("\n")
    .filter((l) => l && !l.startsWith("#")).map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]));
  return fields;
});

test("there are thumbnail vectors, successes and failures", () => {
  assert.ok(cases.some((c) => c.expect === "success"));
  assert.ok(cases.filter((c) => c.expect === "failure").length >= 3);
});

for (const c of cases) {
  test(`thumbnail vector ${c.name}`, () => {
    const hex = (s) => Buffer.from(s, "hex");
    const open = () => openThumbnail(hex(c.file_key), hex(c.header), hex(c.sealed));
    if (c.expect === "success") assert.deepEqual(open(), hex(c.thumbnail));
    else assert.throws(open, new RegExp(`^Error: ${c.error}$`));
  });
}
