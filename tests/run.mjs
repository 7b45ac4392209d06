// Runs every end-to-end test file (tests/**/*.test.mjs) with Node's test runner, as
// `node --test` does, but longest file first: `node --test` sorts its files by name,
// so a long file whose name sorts late starts last and runs on alone while the
// other slots sit idle. The order is LONGEST_FIRST below (measured wall times, see
// the file-times table this prints at the end); a file it does not name yet runs
// first, its length being unknown. Order only: every file runs, each in its own
// process, exactly as under `node --test`.
//
//   node tests/run.mjs [--concurrency N] [FILE...]   (scripts/test.sh runs it, N = 3;
//                                                     FILEs: only those)
//   node --test tests/x.test.mjs            (one file, while working on it)
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { run } from "node:test";
import { spec } from "node:test/reporters";
import { parseArgs } from "node:util";

/**
 * Files measured to take longest, longest first: each file's wall time in a run of all
 * of them, 3 at a time on 2 cores (2026-11-29, under other work's load: the times were
 * 2-4x CI's, the order is what counts). Re-measure with this script's table.
 */
const LONGEST_FIRST = [
  "tests/transfer.test.mjs",
  "tests/rooms.test.mjs",
  "tests/client.test.mjs",
  "tests/adaptive.test.mjs",
  "tests/app.test.mjs",
  "tests/dlui.test.mjs",
  "tests/resume.test.mjs",
  "tests/shares.test.mjs",
  "tests/shares-browser.test.mjs",
  "tests/downloads.test.mjs",
  "tests/api.test.mjs",
  "tests/memory.test.mjs",
  "tests/rooms-browser.test.mjs",
  "tests/roomup-browser.test.mjs",
  "tests/roomfiles.test.mjs",
  "tests/s3-mode.test.mjs",
  "tests/stack.test.mjs",
  "tests/roomup.test.mjs",
  "tests/roomfiles-browser.test.mjs",
  "tests/videothumb-browser.test.mjs",
  "tests/faults.test.mjs",
  "tests/smoke.test.mjs",
  "tests/format-vectors.test.mjs",
  "tests/password-vectors.test.mjs",
  "tests/s3.test.mjs",
  "tests/thumbnail-vectors.test.mjs",
  "tests/faultproxy.test.mjs",
  "tests/package.test.mjs",
];

const ROOT = join(import.meta.dirname, "..");
const { values, positionals } = parseArgs({ options: { concurrency: { type: "string", default: "3" } }, allowPositionals: true });
const concurrency = Number(values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency ${values.concurrency}: a whole number >= 1`);

const found = positionals.length ? positionals.map((f) => relative(ROOT, f)) : readdirSync(join(ROOT, "tests"), { recursive: true })
  .filter((f) => f.endsWith(".test.mjs"))
  .map((f) => `tests/${f}`);
const rank = (f) => (LONGEST_FIRST.includes(f) ? LONGEST_FIRST.indexOf(f) : -1);
const files = found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

let failed = false;
/**
 * Per file: the durations its top-level tests and suites report (the runner's own
 * clocks; a file's module-level before() hooks are left out). Not the
 * time events arrive: the runner reports files in order, so a short file's events wait
 * for the longer files ahead of it.
 */
const spans = new Map();
// The hang guard is per file, as --test-timeout is under `node --test`: 600 s, as a
// loaded machine took transfer (a privacy scan of all that is stored) past 300 s.
const stream = run({ files: files.map((f) => join(ROOT, f)), concurrency, timeout: 600_000 });
for (const type of ["test:pass", "test:fail"]) {
  stream.on(type, (event) => {
    if (!event.file || event.nesting !== 0) return;
    const file = relative(ROOT, event.file);
    const ms = event.details?.duration_ms ?? 0;
    const span = spans.get(file) ?? { tests: 0, whole: null };
    // A file that fails as a whole (a crash, the hang guard) reports itself by its path.
    if (event.name === event.file) span.whole = ms;
    else span.tests += ms;
    spans.set(file, span);
  });
}
stream.on("test:fail", (event) => {
  if (!event.todo && !event.skip) failed = true;
});
// After the spec reporter's last line (its summary), once.
let printed = false;
process.on("beforeExit", () => {
  if (printed) return;
  printed = true;
  const rows = [...spans].map(([file, { tests, whole }]) => [file, (whole ?? tests) / 1000]).sort((a, b) => b[1] - a[1]);
  console.log(`---- end-to-end files, longest first (wall seconds; ${files.length} files, ${concurrency} at a time)`);
  for (const [file, seconds] of rows) console.log(`${seconds.toFixed(1).padStart(7)} s  ${file}`);
  if (failed) process.exitCode = 1;
});
stream.compose(spec).pipe(process.stdout);
