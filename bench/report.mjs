// BENCHMARKS.md from one run's results: the issue's targets first, then every figure,
// then the CPU and load that judge them, the nanio question and the versions.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, freemem, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT } from "../tests/support/process.mjs";
import { S3S_FS_INSTALL } from "./s3s-fs.mjs";

const MiB = 1024 * 1024;
/** TOOLCHAIN.md: plain fetch PUTs, 1 GiB, 16 MiB parts, 4 in flight, to s3s-fs on this machine. */
const TOOLCHAIN_FETCH_MBPS = 180;
/** Issue 14's encrypt-only target. */
const ENCRYPT_TARGET_MBPS = 650;

// ---- environment ----------------------------------------------------------------

/** The machine and the versions of everything that ran. */
export function environment({ peerVersions }) {
  const pkg = (name) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  const nanio = execFileSync(join(ROOT, ".tools/nanio/bin/python"), ["-c",
    "import importlib.metadata as m; print(' '.join(m.version(p) for p in ('nanio', 'uvicorn', 'starlette')))"]).toString().trim().split(" ");
  const model = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? cpus()[0]?.model;
  const uppy = (name) => `@uppy/core ${peerVersions[name]["@uppy/core"]}, @uppy/aws-s3 ${peerVersions[name]["@uppy/aws-s3"]}`;
  return {
    machine: { cpu: model, cores: cpus().length, ramGiB: totalmem() / 2 ** 30, freeGiB: freemem() / 2 ** 30 },
    versions: {
      chromium: execFileSync(process.env.CHROMIUM_BIN || "/usr/bin/chromium", ["--version"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim(),
      node: process.version,
      wrangler: pkg("wrangler"),
      "playwright-core": pkg("playwright-core"),
      esbuild: pkg("esbuild"),
      aws4fetch: pkg("aws4fetch"),
      nanio: `${nanio[0]} (uvicorn ${nanio[1]}, starlette ${nanio[2]}), behind CORSMiddleware (tests/support/s3_server.py)`,
      "Uppy 5": uppy("uppy5"),
      "Uppy latest": uppy("uppy6"),
      rustc: execFileSync("rustc", ["--version"]).toString().trim(),
    },
  };
}

// ---- formatting -----------------------------------------------------------------

const fmt = (x, digits = 1) => (x === undefined || x === null || !Number.isFinite(x) ? "n/a" : x.toFixed(digits));
const mib = (bytes) => (bytes === null || bytes === undefined ? "n/a" : fmt(bytes / MiB, 0));
const mbps = (bytes, ms) => (bytes && ms ? bytes / 1e6 / (ms / 1000) : null);
const ratio = (a, b) => (a && b ? a / b : null);

function table(head, rows) {
  return [`| ${head.join(" | ")} |`, `| ${head.map((_, i) => (i ? "---:" : "---")).join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)];
}

/** Why an entry has no figure, or null when it has one. */
function missing(entry, r) {
  if (entry.pending && !r) return `not yet enabled: ${entry.pending}`;
  if (!r) return "not run (BENCH_ONLY)";
  if (r.error) return r.error.startsWith("skipped") ? r.error : `failed: ${r.error}`;
  return null;
}

// ---- sections -------------------------------------------------------------------

/** The MB/s figures an entry gives: { main, complete } (complete: uploads only). */
function speeds(r) {
  if (!r || r.error) return {};
  if (r.partsMs !== undefined) return { main: mbps(r.bytes, r.partsMs), complete: mbps(r.bytes, r.totalMs) };
  return { main: mbps(r.bytes, r.ms) };
}

/** The issue's memory bound: (parts in flight + 2) × part size + 64 MiB. */
const memoryBound = (S) => (S.concurrency + 2) * S.partSize + 64 * MiB;

/** The renderer's growth during an entry: its size before is the blank page's (mostly
 *  Chromium's own code and heap), not memory the transfer holds. */
const growth = (r) => (r?.memory?.rendererPeak ? r.memory.rendererPeak - r.memory.rendererStart : null);

function targets({ results: R, settings: S }) {
  const up = (k) => speeds(R[k]).main;
  const down = (k) => speeds(R[k]).main;
  const versus = (value, goal) => (value === null ? "not measured" : `${value.toFixed(2)}× (${value >= goal ? "met" : "missed"})`);
  const pair = (pinned, adaptive) => `${pinned}; as shipped (adaptive): ${adaptive}`;
  const bound = memoryBound(S);
  const memory = R.memory?.upload ? Math.max(growth(R.memory.upload), growth(R.memory.download)) : null;
  const long = (r) => (r?.longTasks ? `${r.longTasks.count} (longest ${fmt(r.longTasks.maxMs, 0)} ms)` : "n/a");
  const mbpsGoal = (k, goal) => (R[k]?.bytes ? `${fmt(speeds(R[k]).main)} MB/s, ${fmt(speeds(R[k]).main / goal, 2)}× (${speeds(R[k]).main >= goal ? "met" : "missed"})` : "not measured");
  const memoryRun = S.memoryFileSize === 4096 * MiB ? "4 GiB run" : `${S.memoryFileSize / MiB} MiB run`;
  const rows = [
    [`sealdrop encrypted ≥ 1.0× Uppy 5 (parts; ${S.concurrency} in flight)`, pair(versus(ratio(up("sealdropPinned"), up("uppy5")), 1.0), versus(ratio(up("sealdrop"), up("uppy5")), 1.0))],
    [`sealdrop encrypted ≥ 0.95× plain fetch (parts; ${S.concurrency} in flight)`, pair(versus(ratio(up("sealdropPinned"), up("fetchProxy")), 0.95), versus(ratio(up("sealdrop"), up("fetchProxy")), 0.95))],
    ["encryption costs ≤ 5%: encrypted ≥ 0.95× sealdrop's plaintext mode (parts; same build, both pinned)", versus(ratio(up("sealdropPinned"), up("sealdropPlain")), 0.95)],
    ["encrypt-only ≥ 650 MB/s: WebCrypto from Rust, 4 in flight", mbpsGoal("webcryptoRust4", 650)],
    ["encrypt-only ≥ 650 MB/s: the whole pipeline without network", mbpsGoal("pipeline", 650)],
    ["download ≥ 0.95× plain ranged GETs", pair(versus(ratio(down("sealdropDownloadPinned"), down("getProxy")), 0.95), versus(ratio(down("sealdropDownload"), down("getProxy")), 0.95))],
    [`peak memory ≤ (${S.concurrency} + 2) × ${S.partSize / MiB} MiB + 64 MiB = ${bound / MiB} MiB (${memoryRun}, renderer growth, the larger way)`, memory !== null
      ? `${mib(memory)} MiB, ${fmt(memory / bound, 2)}× the bound (${memory <= bound ? "met" : "missed"}): upload ${mib(growth(R.memory.upload))} MiB, download ${mib(growth(R.memory.download))} MiB`
      : `not measured; during the ${S.fileSize / MiB} MiB transfers: upload ${mib(growth(R.sealdrop))} MiB, download ${mib(growth(R.sealdropDownload))} MiB`],
    ["zero long tasks: sealdrop upload / download (as shipped)", `${long(R.sealdrop)} / ${long(R.sealdropDownload)}`],
    [`zero long tasks: the ${memoryRun} upload / download`, `${long(R.memory?.upload)} / ${long(R.memory?.download)}`],
  ];
  return ["## Targets (issue 14)", "",
    `The issue compares uploaders at the same part size and parts in flight: sealdrop's figures are those of the bench-only build pinned at ${S.concurrency}`,
    "in flight (`benchFixedConcurrency`, the peers' number); as shipped, it starts at 2 and adapts up to that ceiling (protocol/src/concurrency.rs).", "",
    ...table(["target", "measured"], rows), ""];
}

function encryptSection(run) {
  const { entries, results, settings: S } = run;
  const rows = entries.filter((e) => e.section === "encrypt").map((e) => {
    const r = results[e.key];
    const why = missing(e, r);
    return why ? [e.name, why, "", ""] : [e.name, fmt(speeds(r).main), fmt(speeds(r).main / ENCRYPT_TARGET_MBPS, 2), longTaskCell(r)];
  });
  // An entry whose longest task covered (nearly) its whole timed run sealed on the main
  // thread without yielding once: worth saying, since it decides where sealing must run.
  const blocking = entries.filter((e) => e.section === "encrypt" && results[e.key]?.longTasks?.maxMs >= 0.8 * results[e.key]?.ms);
  const notes = [];
  if (blocking.length) {
    notes.push("", `Ran as one main-thread task covering the whole timed run: ${blocking.map((e) => `${e.name} (${fmt(results[e.key].longTasks.maxMs, 0)} ms `
      + `of ${fmt(results[e.key].ms, 0)} ms)`).join("; ")}.`);
    if (blocking.some((e) => e.key.startsWith("webcrypto"))) {
      notes.push("Chromium computes `crypto.subtle.encrypt` inside the call (the promise comes back settled), so a chain of awaited",
        "encrypts never yields to other tasks and more of them in flight cannot overlap.");
    }
    notes.push("Sealing on the page's thread blocks the page: it belongs in Web Workers.");
  }
  return [
    `## 1. Encrypt-only: ${S.encryptSize / MiB} MiB in ${S.recordSize / MiB} MiB records`, "",
    "AES-256-GCM in the page, no file and no network; MB/s of plaintext (10^6 bytes per second) after a 16-record warm-up.",
    `The pipeline row instead reads the first ${S.encryptSize / MiB} MiB of the bench's disk-backed file and seals it as an upload does`,
    `(${S.partSize / MiB} MiB parts of plaintext, ${S.concurrency} in flight, in the cipher workers), dropping each sealed part where an upload`,
    "would send it; no warm-up beyond starting the workers, which is timed.", "",
    ...table(["encrypt", "MB/s", `÷ target (${ENCRYPT_TARGET_MBPS} MB/s)`, "long tasks"], rows), ...notes, "",
    ...notesOf("encrypt", run),
  ];
}

function uploadSection(run) {
  const { entries, results: R, settings: S } = run;
  const base = speeds(R.fetchProxy);
  const uppy = speeds(R.uppy5);
  const plain = speeds(R.sealdropPlain);
  const rows = entries.filter((e) => e.section === "upload").map((e) => {
    const r = R[e.key];
    const why = missing(e, r);
    if (why) return [e.name, why, "", "", "", ""];
    const s = speeds(r);
    const pair = (b) => `${fmt(ratio(s.main, b.main), 2)} / ${fmt(ratio(s.complete, b.complete), 2)}`;
    return [e.name, fmt(s.main), fmt(s.complete), pair(base), pair(uppy), e.key.startsWith("sealdrop") ? pair(plain) : ""];
  });
  return [
    `## 2. Upload of a ${S.fileSize / MiB} MiB random disk-backed file`, "",
    `${S.partSize / MiB} MiB parts of plaintext, ${S.concurrency} in flight, one headless Chromium, nanio (the tests' S3 server).`,
    "\"Parts\" stops when the last part is stored; \"with Complete\" includes CompleteMultipartUpload, which nanio carries out",
    "by copying every part into the object. Ratios are parts / with Complete. Plain fetch and Node PUT to URLs presigned before",
    "the clock starts; Uppy asks the bench's signer for each (as an app's backend would), and sealdrop asks its worker.", "",
    "The notes below the table say how each sealdrop row ran (build, parts in flight, cipher workers); \"÷ plaintext mode\"",
    "divides by sealdrop's own upload with encryption off (bench-only switch: records sent unsealed, padded to the sealed size).", "",
    ...table(["upload", "parts MB/s", "with Complete MB/s", "÷ plain fetch", "÷ Uppy 5", "÷ plaintext mode"], rows), "",
    ...notesOf("upload", run),
  ];
}

function downloadSection(run) {
  const { entries, results: R, settings: S } = run;
  const base = speeds(R.getProxy).main;
  const rows = entries.filter((e) => e.section === "download").map((e) => {
    const r = R[e.key];
    const why = missing(e, r);
    return why ? [e.name, why, ""] : [e.name, fmt(speeds(r).main), fmt(ratio(speeds(r).main, base), 2)];
  });
  return [
    `## 3. Download of the same ${S.fileSize / MiB} MiB`, "",
    `Plain ranged GETs of the plain-fetch entry's object: ranges of ${S.rangeSize} bytes (${S.rangeSize / (S.recordSize + 16)} whole sealed records,`,
    `one sealed part), ${S.concurrency} in flight, each body read to its end and dropped. sealdrop's downloader uses its own range size`,
    "(about 8 MiB of whole records today) and opens every record before it returns the file.", "",
    ...table(["download", "MB/s", "÷ plain ranged GETs"], rows), "",
    ...notesOf("download", run),
  ];
}

/** The notes the entries of `section` left (how sealdrop ran: build, in flight, workers). */
function notesOf(section, { entries, results: R }) {
  const lines = entries.filter((e) => e.section === section && R[e.key]?.note).map((e) => `- ${e.name}: ${R[e.key].note}`);
  return lines.length ? [...lines, ""] : [];
}

function longTaskCell(r) {
  const t = r?.longTasks;
  if (!t) return "n/a";
  return t.count ? `${t.count}, longest ${fmt(t.maxMs, 0)} ms, ${fmt(t.totalMs / 1000, 1)} s in all` : "0";
}

function memorySection({ entries, results: R, settings: S }) {
  const rows = [];
  const add = (name, r) => {
    if (!r?.memory) return;
    const m = r.memory;
    rows.push([name, mib(m.rendererPeak), mib(growth(r)), fmt(growth(r) / memoryBound(S), 2), mib(m.chromiumPeak), mib(m.chromiumPeak - m.chromiumStart), longTaskCell(r)]);
  };
  for (const e of entries) {
    const r = R[e.key];
    if (e.section === "memory") {
      const why = missing(e, r);
      if (why) rows.push([e.name, why, "", "", "", "", ""]);
      else {
        add(`${e.name}: upload`, r.upload);
        add(`${e.name}: download`, r.download);
      }
    } else add(e.name, r);
  }
  return [
    "## 4. Memory and main-thread long tasks, per browser entry", "",
    "Renderer: the page's process (JS heap, ArrayBuffers, wasm memory, its workers); its peak is the higher of the kernel's",
    "high-water mark (VmHWM, reset when the entry starts) and its resident set sampled every 100 ms; growth is that peak minus its",
    "size at the start (bench/measure.mjs says why this measure). All Chromium: every Chromium process's",
    "resident set summed, sampled every 100 ms (Blob bytes live in the browser process). Long tasks: main-thread tasks over 50 ms",
    `(PerformanceObserver \`longtask\`) that began during the entry. The issue's bound for sealdrop, (${S.concurrency} + 2) × ${S.partSize / MiB} MiB + 64 MiB`,
    `= ${((S.concurrency + 2) * S.partSize) / MiB + 64} MiB during a 4 GiB upload and download, is checked against the renderer's growth: what it held`,
    "before is the blank page's (Chromium's own code and heap), not the transfer's.", "",
    ...table(["entry", "renderer peak MiB", "renderer growth MiB", "growth ÷ bound", "all Chromium peak MiB", "all Chromium growth MiB", "long tasks"], rows), "",
  ];
}

function cpuSection({ entries, results: R, env }) {
  const labels = ["bench (node)", "chromium", "nanio", "s3s-fs", "workerd", "outside", "machineBusy"];
  const rows = entries.filter((e) => R[e.key]?.cpu).map((e) => [e.name, ...labels.map((l) => fmt(R[e.key].cpu[l], 2))]);
  return [
    "## CPU during each entry", "",
    `Cores used on average over the entry (1.00 = one core busy throughout; the machine has ${env.machine.cores}). "bench (node)" holds the`,
    "fault proxy, the signer and the page origin; \"outside\" is everything else on the machine (other work sharing it).", "",
    ...table(["entry", "bench (node)", "chromium", "nanio", "s3s-fs", "workerd", "outside the bench", "whole machine"], rows), "",
  ];
}

/** What the figures say about nanio as the peers' bottleneck, in plain sentences. */
function nanioSection({ results: R, env }) {
  const out = ["## Is nanio the limit?", ""];
  const browser = R.fetchProxy;
  const node = R.node;
  if (!browser?.cpu || !node?.cpu) return [...out, "Not enough entries ran to tell.", ""];
  const cores = env.machine.cores;
  const b = speeds(browser);
  const n = speeds(node);
  out.push(`Plain fetch through the proxy reached ${fmt(b.main)} MB/s (parts) with nanio using ${fmt(browser.cpu.nanio, 2)} cores; `
    + `Node, with no browser and no proxy, ${fmt(n.main)} MB/s with nanio using ${fmt(node.cpu.nanio, 2)} cores `
    + `(nanio is one Python process: about 1.00 is its ceiling). TOOLCHAIN.md measured plain fetch at about ${TOOLCHAIN_FETCH_MBPS} MB/s against s3s-fs on this machine.`);
  if (R.fetchDirect?.cpu) out.push(`Straight to nanio (no proxy) the page reached ${fmt(speeds(R.fetchDirect).main)} MB/s.`);
  if (R.getNode?.cpu && R.getProxy?.cpu) {
    out.push(`Downloads: the page's ranged GETs ${fmt(speeds(R.getProxy).main)} MB/s through the proxy, Node's straight from nanio `
      + `${fmt(speeds(R.getNode).main)} MB/s (nanio ${fmt(R.getNode.cpu.nanio, 2)} cores).`);
  }
  out.push(`The complete step: nanio copies every part (${fmt(browser.totalMs / 1000 - browser.partsMs / 1000, 1)} s for ${browser.bytes / MiB} MiB here).`);
  const other = R.nodeS3sFs?.cpu ? speeds(R.nodeS3sFs) : null;
  if (other) {
    const gets = R.getNodeS3sFs?.cpu && R.getNode?.cpu
      ? `; ranged GETs ${fmt(speeds(R.getNodeS3sFs).main)} MB/s against nanio's ${fmt(speeds(R.getNode).main)} MB/s` : "";
    out.push(`In the same run Node PUT the same parts to s3s-fs at ${fmt(other.main)} MB/s (s3s-fs using ${fmt(R.nodeS3sFs.cpu["s3s-fs"], 2)} cores), `
      + `${fmt(ratio(other.main, n.main), 2)}× nanio's${gets}; with Complete ${fmt(other.complete)} MB/s against ${fmt(n.complete)} MB/s.`);
  }
  out.push("");
  const saturated = browser.cpu.machineBusy >= 0.9 * cores;
  if (other && other.main >= 1.3 * n.main) {
    out.push(`So nanio is the limit of these figures: on the same machine at the same time a faster server took the same parts `
      + `${fmt(other.main / n.main, 1)}× as fast. Ratios between entries stay fair (every uploader meets the same cap), but an uploader `
      + "faster than the cap cannot show it: for the issue's comparison, run the browser entries against s3s-fs (below).");
  } else if (other) {
    out.push("So nanio is not the limit: a faster server took the same parts no faster here. "
      + (saturated ? `The machine set the pace (all ${cores} cores busy, ${fmt(browser.cpu.outside, 2)} of them with work outside the bench).` : ""));
  } else if (Math.max(browser.cpu.nanio, node.cpu.nanio) >= 0.85) {
    out.push("So nanio is the likely limit: its one process was (nearly) a whole core busy. Install s3s-fs (below) to measure "
      + "the same parts against a faster server in the same run.");
  } else if (saturated) {
    out.push(`So the machine, not nanio alone, set the pace: all ${cores} cores were busy (${fmt(browser.cpu.outside, 2)} of them with work outside `
      + "the bench) while nanio used less than its one core. Install s3s-fs (below) to compare servers under the same load.");
  } else {
    out.push("So nanio is not CPU-bound here; whether its I/O path is the limit needs s3s-fs in the same run (below).");
  }
  out.push("", "The faster server, for the bench only: s3s-fs 0.14.1 (Rust; `" + S3S_FS_INSTALL + "`, about 3 min), which the "
    + "Node entries above use when it is installed. The browser entries would need a CORS proxy in front of it (it answers no CORS); "
    + "the e2e tests keep nanio (s3s-fs has no ListMultipartUploads, which the sweep needs). Its Complete also copies every part "
    + "(about 2.4 s per GiB in TOOLCHAIN.md), so the with-Complete figures stay set by the server.", "");
  return out;
}

function machineSection({ env, date, load, seconds }) {
  const m = env.machine;
  const lines = ["## Machine, load and versions", ""];
  lines.push(`- CPU: ${m.cpu}, ${m.cores} cores; RAM ${fmt(m.ramGiB)} GiB (${fmt(m.freeGiB)} GiB free at the start)`);
  lines.push(`- Date: ${date}; the run took ${fmt(seconds / 60, 1)} min`);
  lines.push(`- Load: the machine was ${fmt(load.busy, 2)} of ${load.cores} cores busy on average over the run, ${fmt(load.outside, 2)} of them `
    + `with work outside the bench; load average ${load.loadavgStart.map((x) => fmt(x, 2)).join(" ")} at the start, `
    + `${load.loadavgEnd.map((x) => fmt(x, 2)).join(" ")} at the end`);
  if (load.top.length) lines.push(`- Busiest processes outside the bench: ${load.top.filter((p) => p.cores >= 0.01).map((p) => `${p.comm} ${fmt(p.cores, 2)}`).join(", ") || "none"}`);
  for (const [name, v] of Object.entries(env.versions)) lines.push(`- ${name}: ${v}`);
  lines.push("", "The machine may be shared: compare the figures of one run with each other, and judge them by the load above.", "");
  return lines;
}

/** This benchmark's section of BENCHMARKS.md (markdown, no title). */
export function report(run) {
  const { settings: S, load } = run;
  const lines = [
    "Written by `npm run bench` (bench/bench.mjs); rerun it to refresh every figure. Entries not yet enabled say what they wait for",
    "and carry no figure.", ""];
  if (load.outside >= 0.25) {
    lines.push(`**Measured on a shared machine**: other work used ${fmt(load.outside, 2)} of its ${load.cores} cores on average during this run,`,
      "so these figures are not final (see \"Machine, load and versions\").", "");
  }
  if (S.fileSize !== 1024 * MiB || S.encryptSize !== 256 * MiB) lines.push(`**Development run** with smaller sizes than the issue's.`, "");
  return [
    ...lines,
    ...targets(run),
    ...encryptSection(run),
    ...uploadSection(run),
    ...downloadSection(run),
    ...memorySection(run),
    ...cpuSection(run),
    ...nanioSection(run),
    ...machineSection(run),
  ].join("\n");
}

const START = "<!-- transfer-bench:start -->";
const END = "<!-- transfer-bench:end -->";

/**
 * Writes `section` into `file` between this benchmark's markers, leaving the sections
 * other benchmarks keep between theirs (`<!-- name:start -->` ... `<!-- name:end -->`,
 * e.g. the rooms benchmark's) as they are. A file without our markers is rewritten
 * with our section first and the other sections after it.
 */
export function writeSection(file, section) {
  const block = `${START}\n${section.trimEnd()}\n${END}`;
  const old = existsSync(file) ? readFileSync(file, "utf8") : "";
  if (old.includes(START) && old.includes(END)) {
    writeFileSync(file, old.slice(0, old.indexOf(START)) + block + old.slice(old.indexOf(END) + END.length));
    return;
  }
  const others = [...old.matchAll(/<!-- ([\w-]+):start -->[\s\S]*?<!-- \1:end -->/g)].map((m) => m[0]);
  writeFileSync(file, `${["# Benchmarks", "", block, ...others.flatMap((b) => ["", b])].join("\n")}\n`);
}
