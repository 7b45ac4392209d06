// `npm run bench`: issue 14's benchmark in one run, one headless Chromium, one local S3
// server (nanio, the tests' own), one random disk-backed file. Writes BENCHMARKS.md.
//
// The entries, in the order they run (ENTRIES below; each is one function of the
// shared context):
// 1. encrypt-only: WebCrypto AES-256-GCM from JS (the reference), then the client's
//    record cipher on its aes-gcm and WebCrypto backends, driven from Rust, and the
//    whole upload pipeline without network (read, seal in the cipher workers, drop);
// 2. upload: plain `fetch` PUTs of `file.slice()` (through the fault proxy and
//    straight to nanio), Node PUTs (nanio's own ceiling), Uppy 5 and Uppy latest
//    (bench/peers, signed by the bench's signer), sealdrop encrypted as shipped
//    (adaptive concurrency up to the others' number), sealdrop encrypted and with
//    encryption off at the others' fixed number in flight;
// 3. download: plain ranged GETs of the baseline's object (page and Node), sealdrop's
//    downloader on the objects it uploaded (adaptive, and pinned);
// 4. memory: sealdrop uploading a 4 GiB file then downloading it to a stream (peak
//    memory and long tasks each way).
//
// The pipeline, the pinned and the plaintext entries run the bench-only build of the
// client (bench/seal-wasm: the client with its `bench` feature, never published) from
// the bench's origin; "sealdrop encrypted" and the memory entry run the product.
// Every browser entry also reports the page's peak memory and main-thread long tasks;
// every entry the CPU each process used and what the rest of the machine used.
//
// An entry with `pending` is not run (the report says why, with no figure); delete the
// `pending` line to enable it. `BENCH_ONLY=key,key` runs only those entries (pending
// ones included), for development. Sizes for short runs while developing:
// BENCH_FILE_MIB (default 1024), BENCH_ENCRYPT_MIB (256), BENCH_MEMORY_FILE_MIB (4096);
// a run with other sizes than the defaults writes test-results/BENCHMARKS.dev.md
// instead of BENCHMARKS.md.
//
// 127.0.0.1 only; every entry has a deadline (`deadlineMs`, else ENTRY_DEADLINE_MS) and
// the run a budget; everything started is stopped.
import { randomFillSync } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBrowser } from "../tests/support/browser.mjs";
import { startFaultProxy } from "../tests/support/faultproxy.mjs";
import { ROOT } from "../tests/support/process.mjs";
import { startS3 } from "../tests/support/s3.mjs";
import { nodeRangedGets, plainRangedGets, sealdropDownload } from "./download.mjs";
import { pipelineEncrypt, rustEncrypt, webCryptoEncrypt } from "./encrypt.mjs";
import { LONG_TASK_INIT, loadMeter, processGroups } from "./measure.mjs";
import { startOrigin } from "./origin.mjs";
import { buildPeers } from "./peers.mjs";
import { environment, report, writeSection } from "./report.mjs";
import { S3S_FS_INSTALL, s3sFsInstalled, startS3sFs } from "./s3s-fs.mjs";
import { buildSealWasm } from "./seal-wasm.mjs";
import { nodeUpload, plainFetchUpload, sealdropUpload, uppyUpload } from "./upload.mjs";

const MiB = 1024 * 1024;
const DEFAULT_MIB = { BENCH_FILE_MIB: 1024, BENCH_ENCRYPT_MIB: 256, BENCH_MEMORY_FILE_MIB: 4096 };
const ENTRY_DEADLINE_MS = 5 * 60_000;
// `npm run bench`'s measuring stays under 15 minutes: the budget starts once the bench's
// own builds are done (the bench-only client build, cold on a clean clone, takes minutes
// as scripts/build.sh's builds do, which run before it and are not counted either).
const RUN_BUDGET_MS = 14 * 60_000;
const BASELINE_OBJECT = "bench/plain-fetch"; // uploaded by fetchProxy, downloaded by the GET entries
const NOT_INSTALLED = s3sFsInstalled() ? undefined : `s3s-fs is not installed (\`${S3S_FS_INSTALL}\`, about 3 min)`;

function sizeFromEnv(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return DEFAULT_MIB[name] * MiB;
  const mib = Number(raw);
  if (!Number.isInteger(mib) || mib < 16) throw new Error(`${name} must be a whole number of MiB, at least 16 (got ${JSON.stringify(raw)})`);
  return mib * MiB;
}

const PART_SIZE = 16 * MiB; // plaintext bytes per part
const RECORD_SIZE = MiB; // plaintext bytes per record (the client's default)
const TAG = 16;
const SEALED_PART_SIZE = (PART_SIZE / RECORD_SIZE) * (RECORD_SIZE + TAG);

/** The settings every entry shares (the context adds what the run starts). */
const SETTINGS = {
  fileSize: sizeFromEnv("BENCH_FILE_MIB"),
  encryptSize: sizeFromEnv("BENCH_ENCRYPT_MIB"),
  memoryFileSize: sizeFromEnv("BENCH_MEMORY_FILE_MIB"),
  partSize: PART_SIZE,
  recordSize: RECORD_SIZE,
  /** sealdrop's part size in sealed bytes: the same plaintext per part as the others. */
  sealedPartSize: SEALED_PART_SIZE,
  /** Download ranges: whole records of one sealed part, as sealdrop's downloader will ask. */
  rangeSize: SEALED_PART_SIZE,
  concurrency: 4,
  /** sealdrop on the same storage path as the others (nanio); "r2-binding" would store through the worker into local R2. */
  sealdropProvider: "s3",
};

const ENTRIES = [
  { section: "encrypt", key: "webcrypto1", name: "WebCrypto AES-256-GCM from JS, 1 record in flight (reference)", run: (ctx) => webCryptoEncrypt(ctx, { inFlight: 1 }) },
  { section: "encrypt", key: "webcrypto4", name: "WebCrypto AES-256-GCM from JS, 4 records in flight", run: (ctx) => webCryptoEncrypt(ctx, { inFlight: 4 }) },
  { section: "encrypt", key: "wasmAesGcm", name: "aes-gcm in wasm (the client's record cipher, aes-gcm backend, bench-only build)", run: (ctx) => rustEncrypt(ctx, { backend: "aes-gcm", inFlight: 1 }) },
  { section: "encrypt", key: "webcryptoRust", name: "WebCrypto called from Rust (the client's record cipher, WebCrypto backend), 1 record in flight", run: (ctx) => rustEncrypt(ctx, { backend: "webcrypto", inFlight: 1 }) },
  { section: "encrypt", key: "webcryptoRust4", name: "WebCrypto called from Rust, 4 records in flight", run: (ctx) => rustEncrypt(ctx, { backend: "webcrypto", inFlight: 4 }) },
  {
    section: "encrypt", key: "pipeline", name: "the whole sealdrop upload pipeline without network (read from disk, sealed in 2 cipher workers, dropped; bench-only build)",
    run: pipelineEncrypt,
  },

  { section: "upload", key: "fetchProxy", name: "plain fetch PUTs of file.slice(), through the proxy", object: BASELINE_OBJECT, keep: true, run: (ctx) => plainFetchUpload(ctx, { key: BASELINE_OBJECT, viaProxy: true }) },
  { section: "upload", key: "fetchDirect", name: "plain fetch PUTs of file.slice(), straight to nanio", object: "bench/plain-direct", run: (ctx) => plainFetchUpload(ctx, { key: "bench/plain-direct", viaProxy: false }) },
  { section: "upload", key: "node", name: "Node PUTs straight to nanio (no browser)", object: "bench/node", run: (ctx) => nodeUpload(ctx, { key: "bench/node" }) },
  { section: "upload", key: "nodeS3sFs", name: "Node PUTs straight to s3s-fs (no browser; the other server)", pending: NOT_INSTALLED, run: async (ctx) => nodeUpload(ctx, { key: "bench/node", server: await s3sFs(ctx) }) },
  { section: "upload", key: "uppy5", name: "Uppy 5 (parallel parts), through the proxy", object: "bench/uppy5", run: (ctx) => uppyUpload(ctx, { key: "bench/uppy5", peer: "uppy5" }) },
  { section: "upload", key: "uppy6", name: "Uppy latest (6.x, parts one at a time), through the proxy", object: "bench/uppy6", run: (ctx) => uppyUpload(ctx, { key: "bench/uppy6", peer: "uppy6" }) },
  { section: "upload", key: "sealdrop", name: `sealdrop encrypted, as shipped (adaptive, up to ${SETTINGS.concurrency} in flight)`, run: (ctx) => sealdropUpload(ctx) },
  {
    section: "upload", key: "sealdropPinned", name: `sealdrop encrypted, ${SETTINGS.concurrency} in flight throughout (bench-only build)`,
    run: (ctx) => sealdropUpload(ctx, { build: "bench", fixed: true, linkName: "pinned" }),
  },
  {
    section: "upload", key: "sealdropPlain", name: `sealdrop with encryption off, ${SETTINGS.concurrency} in flight throughout (bench-only switch)`,
    run: (ctx) => sealdropUpload(ctx, { build: "bench", fixed: true, plain: true }),
  },

  { section: "download", key: "getProxy", name: "plain ranged GETs, through the proxy", needs: "fetchProxy", run: (ctx) => plainRangedGets(ctx, { key: BASELINE_OBJECT }) },
  { section: "download", key: "getNode", name: "Node ranged GETs straight to nanio (no browser)", needs: "fetchProxy", run: (ctx) => nodeRangedGets(ctx, { key: BASELINE_OBJECT }) },
  { section: "download", key: "getNodeS3sFs", name: "Node ranged GETs straight from s3s-fs (no browser)", needs: "nodeS3sFs", pending: NOT_INSTALLED, run: async (ctx) => nodeRangedGets(ctx, { key: "bench/node", server: await s3sFs(ctx) }) },
  { section: "download", key: "sealdropDownload", name: `sealdrop download to a Blob, as shipped (adaptive, up to ${SETTINGS.concurrency} in flight)`, needs: "sealdrop", run: (ctx) => sealdropDownload(ctx) },
  {
    section: "download", key: "sealdropDownloadPinned", name: `sealdrop download to a Blob, ${SETTINGS.concurrency} in flight throughout (bench-only build)`,
    needs: "sealdropPinned", run: (ctx) => sealdropDownload(ctx, { build: "bench", fixed: true, linkName: "pinned" }),
  },

  {
    section: "memory", key: "memory", name: `sealdrop ${SETTINGS.memoryFileSize / MiB} MiB upload, then download to a stream, as shipped`,
    // Two transfers of 4 GiB and the file's writing: about 2 min on a quiet machine, over 5 on a busy one.
    deadlineMs: 10 * 60_000, run: sealdropMemory,
  },
];

// ---- entries that need the run's own files and servers ----------------------------

/** s3s-fs, started by the first entry that needs it and stopped with the run. */
async function s3sFs(ctx) {
  ctx.s3sFs ??= await startS3sFs();
  return ctx.s3sFs;
}

function writeRandomFile(path, size) {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(16 * MiB);
  for (let written = 0; written < size; written += chunk.length) {
    writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, size - written));
  }
  closeSync(fd);
}

/**
 * sealdrop, as shipped, uploading a file of BENCH_MEMORY_FILE_MIB, then downloading it
 * to a stream that counts and drops it (records written in order within the bounded
 * window; a Blob sink would hold the whole file in the browser): the page's peak memory
 * and long tasks each way.
 */
async function sealdropMemory(ctx) {
  const filePath = join(ctx.work, "random-memory.bin");
  writeRandomFile(filePath, ctx.memoryFileSize);
  let upload;
  try {
    upload = await sealdropUpload(ctx, { filePath, size: ctx.memoryFileSize, linkName: "memory" });
  } finally {
    rmSync(filePath, { force: true });
  }
  const download = await sealdropDownload(ctx, { size: ctx.memoryFileSize, sink: "stream", linkName: "memory" });
  return { bytes: ctx.memoryFileSize, upload, download };
}

// ---- running ----------------------------------------------------------------------

function withDeadline(promise, ms, what, onTimeout) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error(`${what} took over ${Math.round(ms / 1000)} s`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Which entries this run attempts: BENCH_ONLY's, else every one not pending. */
function selected() {
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim()).filter(Boolean);
  if (!only) return new Set(ENTRIES.filter((e) => !e.pending).map((e) => e.key));
  const unknown = only.filter((k) => !ENTRIES.some((e) => e.key === k));
  if (unknown.length) throw new Error(`BENCH_ONLY names no entry ${unknown.join(", ")}; entries: ${ENTRIES.map((e) => e.key).join(", ")}`);
  return new Set(only);
}

async function main() {
  const started = performance.now();
  const date = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const full = Object.keys(DEFAULT_MIB).every((name) => sizeFromEnv(name) === DEFAULT_MIB[name] * MiB);
  const reportPath = full ? join(ROOT, "BENCHMARKS.md") : join(ROOT, "test-results/BENCHMARKS.dev.md");
  const toRun = selected();
  const work = mkdtempSync(join(tmpdir(), "sealdrop-bench-"));
  const stoppers = [];
  const results = {};
  try {
    const load = loadMeter();
    const bundles = join(work, "bundles");
    const peerVersions = await buildPeers(bundles);
    const sealWasm = buildSealWasm();
    const budgetStart = performance.now();
    const filePath = join(work, "random.bin");
    console.log(`bench: writing ${SETTINGS.fileSize / MiB} MiB of random bytes to ${filePath}`);
    writeRandomFile(filePath, SETTINGS.fileSize);

    const s3 = await startS3();
    stoppers.push(() => s3.stop());
    const proxy = await startFaultProxy({ target: s3.endpoint });
    stoppers.push(() => proxy.stop());
    const origin = await startOrigin({ files: { "/peers": bundles, "/seal-wasm": sealWasm }, s3, presignOrigin: proxy.url });
    stoppers.push(() => origin.stop());
    const browser = await launchBrowser();
    stoppers.push(() => browser.close());
    await browser.context.addInitScript(LONG_TASK_INIT);
    const ctx = {
      ...SETTINGS, work, filePath, s3, proxy, origin, browser,
      groups: () => processGroups({ nanio: [s3.pid], "s3s-fs": ctx.s3sFs ? [ctx.s3sFs.pid] : [] }),
    };
    stoppers.push(() => ctx.sealdrop?.stack.stop());
    stoppers.push(() => ctx.s3sFs?.stop());
    const env = environment({ peerVersions });

    for (const entry of ENTRIES) {
      if (!toRun.has(entry.key)) continue;
      if (entry.needs && !results[entry.needs]?.bytes) {
        results[entry.key] = { error: `skipped: needs the ${entry.needs} entry, which did not run or failed` };
        continue;
      }
      const left = RUN_BUDGET_MS - (performance.now() - budgetStart);
      if (left < 30_000) {
        results[entry.key] = { error: "skipped: the run's time budget was spent" };
        continue;
      }
      console.log(`bench: ${entry.name} ...`);
      try {
        const closePages = () => browser.context.pages().forEach((p) => p.close().catch(() => {}));
        results[entry.key] = await withDeadline(entry.run(ctx), Math.min(entry.deadlineMs ?? ENTRY_DEADLINE_MS, left), entry.name, closePages);
        console.log(`bench:   ${summary(results[entry.key])}`);
      } catch (err) {
        console.error(`bench:   FAILED: ${err.stack ?? err}`);
        results[entry.key] = { error: String(err.message ?? err).split("\n")[0] };
      } finally {
        if (entry.object && !entry.keep) await s3.request("DELETE", entry.object).catch(() => {});
      }
    }

    const run = { entries: ENTRIES, results, settings: SETTINGS, env, date, load: load(), seconds: (performance.now() - started) / 1000 };
    mkdirSync(join(ROOT, "test-results"), { recursive: true });
    writeFileSync(join(ROOT, "test-results/bench-results.json"), JSON.stringify(run, null, 2)); // the raw figures, kept if the report fails
    const text = report(run);
    writeSection(reportPath, text);
    console.log(`\n${text}\nbench: written to ${reportPath}`);
    return Object.values(results).some((r) => r.error) ? 1 : 0;
  } finally {
    for (const stop of stoppers.reverse()) await stop();
    rmSync(work, { recursive: true, force: true });
  }
}

function summary(r) {
  const mbps = (ms) => (r.bytes / 1e6 / (ms / 1000)).toFixed(1);
  if (r.partsMs !== undefined) return `parts ${mbps(r.partsMs)} MB/s, with Complete ${mbps(r.totalMs)} MB/s`;
  if (r.ms !== undefined) return `${mbps(r.ms)} MB/s`;
  return "done";
}

process.exitCode = await main();
