// What a worker's local state folder holds (miniflare: Durable Objects and R2), and
// the leak scanner over it: shared by the tests that check what storage keeps.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./server.mjs";

/** Every file under `dir` with its size (recursive). */
export function filesUnder(dir) {
  const out = new Map();
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const [p, s] of filesUnder(path)) out.set(p, s);
    else out.set(path, statSync(path).size);
  }
  return out;
}

/**
 * The Durable Objects a worker's state folder holds: one SQLite database per object
 * (`<id>.sqlite`, beside its WAL; `metadata.sqlite` is miniflare's own index).
 */
export const objectFiles = (persistDir) => [...filesUnder(join(persistDir, "v3/do")).keys()]
  .filter((p) => p.endsWith(".sqlite") && !p.endsWith("/metadata.sqlite"))
  .sort();

/** Every file of the objects' own databases (with their WAL), not miniflare's index. */
export const objectData = (persistDir) => [...filesUnder(join(persistDir, "v3/do")).keys()]
  .filter((p) => !p.includes("/metadata.sqlite"));

/**
 * What the worker's storage wrote: Durable Objects and R2 (not miniflare's request
 * traces, which log URLs and addresses as any access log would).
 */
export const storageDirs = (persistDir) => [join(persistDir, "v3/do"), join(persistDir, "v3/r2")];

/**
 * Runs leakscan over `dirs` (files or folders): its JSON report and exit status. The
 * worker is running, so SQLite may drop a WAL or shm file mid-scan: a scan that could
 * not read a file it listed is run again (a few times), never counted as a pass.
 */
export function leakscan(dirs, { plaintext = [], secrets = [], hex = [] }) {
  const bin = join(ROOT, "target/debug/leakscan");
  if (!existsSync(bin)) {
    const built = spawnSync("cargo", ["build", "-p", "leakscan"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(built.status, 0, built.stderr);
  }
  for (let attempt = 0; ; attempt++) {
    const args = [
      ...plaintext.flatMap((p) => ["--plaintext", p]),
      ...secrets.flatMap((s) => ["--secret", s]),
      ...hex.flatMap((h) => ["--secret-hex", h]),
      ...[dirs].flat().filter((p) => existsSync(p)),
    ];
    const run = spawnSync(bin, args, { encoding: "utf8" });
    if (run.status === 2 && /cannot read/.test(run.stderr) && attempt < 5) continue;
    assert.ok(run.status === 0 || run.status === 1, `leakscan ran: ${run.stderr}`);
    return { status: run.status, report: JSON.parse(run.stdout) };
  }
}
