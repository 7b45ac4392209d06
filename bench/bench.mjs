// `npm run bench`: upload throughput against the tests' local S3 server (nanio), in
// one run, one Chromium, one 1 GiB random disk-backed file. Figures are printed and
// written to BENCHMARKS.md with the machine, the date and the versions.
//
// Entries (each a function of the shared context, run in order):
// - plain `fetch` PUTs of `file.slice()` to presigned part URLs, 16 MiB parts, 4 in
//   flight, through the fault proxy (no faults): the baseline of issue 10 §6;
// - the same straight to nanio, to show what the proxy costs;
// - Node PUTting the same parts straight to nanio, no browser: the server's own
//   ceiling on this machine, which says whether nanio is the limit;
// - sealdrop, same file, same part size and parallelism (`sealdropUpload`).
// Each reports MB/s (1 MB = 10^6 bytes) until the last part is stored, and with the
// Complete step, plus the CPU each process used over the upload.
//
// 127.0.0.1 only; every step has a deadline; everything started is stopped.
import { execFileSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { once } from "node:events";
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { Agent, createServer, request as httpRequest } from "node:http";
import { cpus, freemem, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { launchBrowser } from "../tests/support/browser.mjs";
import { startFaultProxy } from "../tests/support/faultproxy.mjs";
import { ROOT } from "../tests/support/process.mjs";
import { checkS3, startS3 } from "../tests/support/s3.mjs";
import { startStack } from "../tests/support/stack.mjs";

const MiB = 1024 * 1024;
const FILE_SIZE = 1024 * MiB;
const PART_SIZE = 16 * MiB; // plaintext bytes per part, as sealdrop plans them
const CONCURRENCY = 4;
const RECORD_OVERHEAD = 16; // AES-GCM tag per 1 MiB record (docs/FORMAT.md)
const ENTRY_DEADLINE_MS = 10 * 60_000;

/**
 * Which storage the sealdrop entry runs on: "s3" (nanio, like the baseline), so the
 * ratio compares the same storage path ("r2-binding" would send part bodies through
 * the worker into local R2 instead).
 */
const SEALDROP_PROVIDER = "s3";

// ---- measuring -----------------------------------------------------------------

const CLK_TCK = 100; // Linux USER_HZ

/** CPU seconds used so far by each process of interest, keyed by a label. */
function cpuSnapshot(pids) {
  const out = {};
  for (const [label, list] of Object.entries(pids)) {
    out[label] = 0;
    for (const pid of list) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        out[label] += (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
      } catch {
        // exited
      }
    }
  }
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  out.machineBusy = (cpu.reduce((a, b) => a + b, 0) - cpu[3] - cpu[4]) / CLK_TCK; // all but idle, iowait
  return out;
}

/** The pids of this process's descendants, grouped as the report names them. */
function processGroups(extra = {}) {
  const parent = new Map();
  const comm = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      comm.set(Number(name), stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")));
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // exited
    }
  }
  const isDescendant = (pid) => {
    for (let p = pid; p > 1; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  const groups = { "bench + proxy (node)": [process.pid], chromium: [], ...extra };
  const taken = new Set(Object.values(extra).flat());
  for (const pid of parent.keys()) {
    if (pid === process.pid || taken.has(pid) || !isDescendant(pid)) continue;
    const name = comm.get(pid);
    if (/^chrom/i.test(name)) groups.chromium.push(pid);
    else if (/workerd/.test(name)) (groups.workerd ??= []).push(pid);
  }
  return groups;
}

/** Runs `fn` and returns its result with the CPU each group used meanwhile. */
async function withCpu(groups, fn) {
  const before = cpuSnapshot(groups);
  const t0 = performance.now();
  const result = await fn();
  const wall = (performance.now() - t0) / 1000;
  const after = cpuSnapshot(groups);
  const cpu = Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] - before[k]) / wall]));
  return { ...result, cpu, wallSeconds: wall };
}

const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);

function deadline(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took over ${ENTRY_DEADLINE_MS / 1000} s`)), ENTRY_DEADLINE_MS); }),
  ]).finally(() => clearTimeout(timer));
}

// ---- the file and the pages --------------------------------------------------

function writeRandomFile(path, size) {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(16 * MiB);
  for (let written = 0; written < size; written += chunk.length) {
    writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, size - written));
  }
  closeSync(fd);
}

/** A blank page on its own origin, for the plain-fetch entries. */
async function startBlankOrigin() {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>bench</title><input type=file id=file>");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${server.address().port}/`, stop: () => { server.closeAllConnections(); server.close(); } };
}

/** A page at `url` whose #file input holds the benchmark file (a disk-backed File). */
async function pageWithFile(ctx, url) {
  const page = await ctx.browser.newPage();
  await page.goto(url);
  await page.evaluate(() => {
    if (!document.getElementById("file")) {
      const input = Object.assign(document.createElement("input"), { type: "file", id: "file" });
      document.body.append(input);
    }
  });
  await page.setInputFiles("#file", ctx.filePath);
  return page;
}

// ---- the entries ------------------------------------------------------------------

/** A multipart upload of `key` and a presigned URL for each part, at `origin` (the proxy or nanio). */
async function presignUpload(s3, key, origin) {
  const uploadId = await s3.createMultipartUpload(key);
  const parts = Math.ceil(FILE_SIZE / PART_SIZE);
  const partUrls = [];
  for (let n = 1; n <= parts; n += 1) {
    partUrls.push(await s3.presign("PUT", key, { query: { partNumber: n, uploadId }, origin, expires: 3600 }));
  }
  return { uploadId, partUrls };
}

/** Times `sendParts()` (resolving to the ETags), then Complete (as the worker would, from the server side). */
async function timedUpload(s3, key, uploadId, sendParts) {
  const t0 = performance.now();
  const etags = await sendParts();
  const partsMs = performance.now() - t0;
  await s3.completeMultipartUpload(key, uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
  const totalMs = performance.now() - t0;
  await checkStored(s3, key, FILE_SIZE);
  return { partsMs, totalMs };
}

/** Plain fetch PUTs of file.slice() from the page to presigned URLs, `concurrency` in flight. */
async function plainFetch(ctx, { viaProxy }) {
  const key = `bench/plain-${viaProxy ? "proxy" : "direct"}`;
  const { uploadId, partUrls } = await presignUpload(ctx.s3, key, viaProxy ? ctx.proxy.url : ctx.s3.endpoint);
  const page = await pageWithFile(ctx, ctx.blank.url);
  try {
    return await withCpu(ctx.groups(), () => timedUpload(ctx.s3, key, uploadId, () => page.evaluate(async ({ partUrls, partSize, concurrency }) => {
      const file = document.getElementById("file").files[0];
      const etags = [];
      let next = 0;
      const sender = async () => {
        while (next < partUrls.length) {
          const i = next++;
          const res = await fetch(partUrls[i], { method: "PUT", body: file.slice(i * partSize, (i + 1) * partSize) });
          if (!res.ok) throw new Error(`part ${i + 1}: HTTP ${res.status}`);
          etags[i] = res.headers.get("etag");
        }
      };
      await Promise.all(Array.from({ length: concurrency }, sender));
      return etags;
    }, { partUrls, partSize: PART_SIZE, concurrency: CONCURRENCY })));
  } finally {
    await page.close();
    await ctx.s3.request("DELETE", key);
  }
}

/** Node PUTs the parts read from the file straight to nanio: no browser, no proxy. */
async function nodeDirect(ctx) {
  const key = "bench/node-direct";
  const { uploadId, partUrls } = await presignUpload(ctx.s3, key, ctx.s3.endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const put = (url, start, end) => new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "PUT", agent, headers: { "content-length": end - start } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(res.headers.etag) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    createReadStream(ctx.filePath, { start, end: end - 1, highWaterMark: MiB }).pipe(req);
  });
  try {
    return await withCpu(ctx.groups(), () => timedUpload(ctx.s3, key, uploadId, async () => {
      const etags = [];
      let next = 0;
      const sender = async () => {
        while (next < partUrls.length) {
          const i = next++;
          etags[i] = await put(partUrls[i], i * PART_SIZE, Math.min(FILE_SIZE, (i + 1) * PART_SIZE));
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, sender));
      return etags;
    }));
  } finally {
    agent.destroy();
    await ctx.s3.request("DELETE", key);
  }
}

/**
 * sealdrop's own uploader (encrypting, planning with the worker, 16 MiB plaintext
 * parts, 4 in flight) on the stack of SEALDROP_PROVIDER, reusing the bench's nanio
 * in s3 mode. "Parts" ends when the last part is stored (the progress event that
 * reaches partsTotal); the total includes the worker's Complete.
 */
async function sealdropUpload(ctx) {
  const stack = await startStack({ provider: SEALDROP_PROVIDER, s3: ctx.s3 });
  try {
    const page = await pageWithFile(ctx, `${stack.url}/test/blank.html`);
    const run = await withCpu(ctx.groups(), () => page.evaluate(async ({ partSize, concurrency }) => {
      const sealdrop = await import("/pkg/sealdrop_client.js");
      await sealdrop.default();
      const file = document.getElementById("file").files[0];
      let partsMs = null;
      const t0 = performance.now();
      const result = await new sealdrop.Uploader({ partSize, concurrency }).upload(file, {
        onProgress: (p) => {
          if (partsMs === null && p.partsTotal > 0 && p.partsDone === p.partsTotal) partsMs = performance.now() - t0;
        },
      });
      const totalMs = performance.now() - t0;
      return { partsMs: partsMs ?? totalMs, totalMs, storedSize: result.size };
    }, { partSize: (PART_SIZE / MiB) * (MiB + RECORD_OVERHEAD), concurrency: CONCURRENCY }));
    await page.close();
    if (run.storedSize !== FILE_SIZE) throw new Error(`sealdrop reported ${run.storedSize} bytes`);
    return { ...run, note: `provider ${SEALDROP_PROVIDER}` };
  } finally {
    await stack.stop();
  }
}

async function checkStored(s3, key, size) {
  const res = await checkS3(await s3.request("HEAD", key));
  if (Number(res.headers.get("content-length")) !== size) {
    throw new Error(`${key}: stored ${res.headers.get("content-length")} bytes, expected ${size}`);
  }
}

const ENTRIES = [
  { name: "plain fetch PUTs, through the proxy", key: "fetchProxy", run: (ctx) => plainFetch(ctx, { viaProxy: true }) },
  { name: "plain fetch PUTs, straight to nanio", key: "fetchDirect", run: (ctx) => plainFetch(ctx, { viaProxy: false }) },
  { name: "Node PUTs straight to nanio (no browser)", key: "node", run: nodeDirect },
  { name: `sealdrop (${SEALDROP_PROVIDER})`, key: "sealdrop", run: sealdropUpload },
];

// ---- the report -------------------------------------------------------------------

function versions(s3) {
  const pkg = (name) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  const nanio = execFileSync(join(ROOT, ".tools/nanio/bin/python"), ["-c",
    "import importlib.metadata as m; print(' '.join(m.version(p) for p in ('nanio', 'uvicorn', 'starlette')))"]).toString().trim().split(" ");
  return {
    chromium: execFileSync(process.env.CHROMIUM_BIN || "/usr/bin/chromium", ["--version"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim(),
    node: process.version,
    wrangler: pkg("wrangler"),
    "playwright-core": pkg("playwright-core"),
    aws4fetch: pkg("aws4fetch"),
    nanio: `${nanio[0]} (uvicorn ${nanio[1]}, starlette ${nanio[2]}), ${s3 ? "behind CORSMiddleware" : ""}`.trim(),
  };
}

function machine() {
  const model = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? cpus()[0]?.model;
  return { cpu: model, cores: cpus().length, ramGiB: (totalmem() / 2 ** 30).toFixed(1), freeGiB: (freemem() / 2 ** 30).toFixed(1) };
}

const fmt = (x, digits = 1) => (x === undefined || x === null || Number.isNaN(x) ? "n/a" : x.toFixed(digits));

function report({ results, env, date }) {
  const base = results.fetchProxy;
  const lines = [];
  lines.push("# Benchmarks", "");
  lines.push("Written by `npm run bench` (bench/bench.mjs); rerun it to refresh every figure below.", "");
  lines.push("## Upload of a 1 GiB random disk-backed file", "");
  lines.push(`Run ${date}. ${FILE_SIZE / MiB} MiB file, ${PART_SIZE / MiB} MiB parts (plaintext), ${CONCURRENCY} in flight, one headless Chromium,`);
  lines.push("one local S3 server (nanio behind CORS, tests/support/s3.mjs), part URLs presigned with SigV4 for 1 h.");
  lines.push("MB/s is 10^6 bytes of file per second. \"Parts\" stops when the last part is stored; \"with Complete\" includes");
  lines.push("CompleteMultipartUpload, which nanio implements by copying every part into the object.", "");
  lines.push("| upload | parts MB/s | with Complete MB/s | ÷ plain fetch (parts) | ÷ plain fetch (with Complete) |");
  lines.push("| --- | ---: | ---: | ---: | ---: |");
  for (const entry of ENTRIES) {
    const r = results[entry.key];
    if (!r || r.error) {
      lines.push(`| ${entry.name} | failed: ${r?.error ?? "not run"} | | | |`);
      continue;
    }
    const parts = mbps(FILE_SIZE, r.partsMs);
    const total = mbps(FILE_SIZE, r.totalMs);
    const ratio = (x, y) => (base && !base.error ? fmt(x / y, 2) : "n/a");
    lines.push(`| ${entry.name} | ${fmt(parts)} | ${fmt(total)} | ${ratio(parts, mbps(FILE_SIZE, base?.partsMs))} | ${ratio(total, mbps(FILE_SIZE, base?.totalMs))} |`);
  }
  if (SEALDROP_PROVIDER !== "s3") {
    lines.push("", `sealdrop ran in ${SEALDROP_PROVIDER} mode: part bodies go through the worker into workerd's local R2, not to nanio,`,
      "because the worker has no s3 mode yet. Its ratio compares two storage paths, not two uploaders; it becomes the",
      "issue's comparison when bench/bench.mjs's SEALDROP_PROVIDER is flipped to \"s3\".");
  }
  lines.push("", "CPU used during each upload, in cores (1.00 = one core busy for the whole upload; the machine has",
    `${env.machine.cores}):`, "");
  const labels = [...new Set(Object.values(results).filter((r) => r?.cpu).flatMap((r) => Object.keys(r.cpu)))];
  lines.push(`| upload | ${labels.join(" | ")} |`);
  lines.push(`| --- | ${labels.map(() => "---:").join(" | ")} |`);
  for (const entry of ENTRIES) {
    const r = results[entry.key];
    if (r?.cpu) lines.push(`| ${entry.name} | ${labels.map((l) => fmt(r.cpu[l], 2)).join(" | ")} |`);
  }
  lines.push("", "## Is nanio the limit?", "");
  lines.push(...nanioVerdict(results), "");
  lines.push("## Machine and versions", "");
  lines.push(`- CPU: ${env.machine.cpu}, ${env.machine.cores} cores; RAM ${env.machine.ramGiB} GiB (${env.machine.freeGiB} GiB free at start)`);
  lines.push(`- Date: ${date}`);
  for (const [name, v] of Object.entries(env.versions)) lines.push(`- ${name}: ${v}`);
  lines.push("", "The machine is shared (other work may run beside the benchmark): compare figures of one run with each other,");
  lines.push("not across runs. \"machineBusy\" counts every process on the machine, including those outside the benchmark.", "");
  return lines.join("\n");
}

/** What the figures say about nanio as the bottleneck, in plain sentences. */
function nanioVerdict(results) {
  const { fetchProxy, fetchDirect, node } = results;
  if (!fetchProxy?.cpu || !node?.cpu) return ["Not enough entries ran to tell."];
  const cores = cpus().length;
  const ours = (cpu) => Object.entries(cpu).filter(([k]) => k !== "machineBusy").reduce((a, [, v]) => a + v, 0);
  const nanioCores = fetchProxy.cpu.nanio;
  const out = [];
  out.push(`During the browser upload through the proxy nanio used ${fmt(nanioCores, 2)} cores `
    + `(one Python process: about 1.00 is its ceiling), the proxy and bench ${fmt(fetchProxy.cpu["bench + proxy (node)"], 2)}, `
    + `Chromium ${fmt(fetchProxy.cpu.chromium, 2)}; the machine had ${fmt(fetchProxy.cpu.machineBusy, 2)} of its ${cores} cores busy, `
    + `${fmt(Math.max(0, fetchProxy.cpu.machineBusy - ours(fetchProxy.cpu)), 2)} of them with work outside the benchmark.`);
  out.push(`With no browser and no proxy (Node PUTs), nanio took the parts at ${fmt(mbps(FILE_SIZE, node.partsMs))} MB/s using ${fmt(node.cpu.nanio, 2)} cores.`);
  if (fetchDirect?.cpu) {
    out.push(`Without the proxy the browser reached ${fmt(mbps(FILE_SIZE, fetchDirect.partsMs))} MB/s against ${fmt(mbps(FILE_SIZE, fetchProxy.partsMs))} MB/s through it.`);
  }
  if (nanioCores >= 0.85) {
    out.push("So nanio is the limit of these figures: its one process was (nearly) a whole core busy. A faster server would raise the "
      + "baseline and sealdrop alike, so compare the ratios, not the MB/s.");
  } else if (fetchProxy.cpu.machineBusy >= 0.9 * cores) {
    out.push("So nanio was not what limited this run: it used well under the one core it can use while every core of the machine was busy. "
      + "The shared CPU set the pace; rerun on an idle machine for figures of the software rather than of the contention.");
  } else {
    out.push("So nanio is not the limit: it had CPU to spare and so had the machine; the browser's upload path sets the pace.");
  }
  return out;
}

// ---- main -------------------------------------------------------------------------

async function main() {
  const date = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const work = mkdtempSync(join(tmpdir(), "sealdrop-bench-"));
  const started = [];
  const results = {};
  try {
    const filePath = join(work, "random-1GiB.bin");
    console.log(`bench: writing ${FILE_SIZE / MiB} MiB of random bytes to ${filePath}`);
    writeRandomFile(filePath, FILE_SIZE);
    const s3 = await startS3();
    started.push(s3);
    const proxy = await startFaultProxy({ target: s3.endpoint });
    started.push(proxy);
    const blank = await startBlankOrigin();
    started.push(blank);
    const browser = await launchBrowser();
    started.push({ stop: () => browser.close() });
    const ctx = { s3, proxy, blank, browser, filePath, groups: () => processGroups({ nanio: [s3.pid] }) };
    const env = { machine: machine(), versions: versions(s3) };

    for (const entry of ENTRIES) {
      console.log(`bench: ${entry.name} ...`);
      try {
        results[entry.key] = await deadline(entry.run(ctx), entry.name);
        const r = results[entry.key];
        console.log(`bench:   parts ${fmt(mbps(FILE_SIZE, r.partsMs))} MB/s, with Complete ${fmt(mbps(FILE_SIZE, r.totalMs))} MB/s`
          + ` (${fmt(r.partsMs / 1000, 2)} s + ${fmt((r.totalMs - r.partsMs) / 1000, 2)} s)`);
      } catch (err) {
        console.error(`bench:   FAILED: ${err.stack ?? err}`);
        results[entry.key] = { error: String(err.message ?? err).split("\n")[0] };
      }
    }
    const text = report({ results, env, date });
    writeFileSync(join(ROOT, "BENCHMARKS.md"), text);
    console.log(`\n${text}`);
    console.log("bench: written to BENCHMARKS.md");
    return Object.values(results).some((r) => r.error) ? 1 : 0;
  } finally {
    for (const part of started.reverse()) await part.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
