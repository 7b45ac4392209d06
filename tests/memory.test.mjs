// Issue 14's memory bound, asserted in headless Chromium (memory is not time, so it may
// be a test): a 512 MiB disk-backed file uploaded in 8-record parts, 4 in flight, then
// downloaded to a stream that drops what it is given, 4 ranges in flight. Each way the
// renderer's resident set (the page, its cipher workers, which are threads of the same
// process, their wasm, ArrayBuffers and network buffers) must grow by less than the
// file, and the upload by no more than issue 14's bound, (parts in flight + 2) × part
// size + 64 MiB over what it was before the transfer, both measured as
// bench/measure.mjs measures it (its memoryMeter: the kernel's high-water mark, reset
// at the start, and samples every 100 ms). The download's bound is asserted on what it
// grows beyond plain GETs of the same ranges in a fresh browser (see RECEIVE_PATH).
// The same runs check that the records were sealed and opened in the cipher workers
// (progress' `cipherWorkers`), and small round trips where the page does the work
// itself: when asked (`workers: 0`) and when its workers' script does not load. Speeds and long tasks are bench figures, not asserted.
import assert from "node:assert/strict";
import { randomFillSync } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { memoryMeter } from "../bench/measure.mjs";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { startStack } from "./support/stack.mjs";

const MiB = 1024 * 1024;
const TAG = 16;
const FILE_SIZE = 512 * MiB;
const RECORD = MiB;
/** Eight records per part (the server rounds a part size down to whole sealed records). */
const PART_SIZE = 8 * (RECORD + TAG);
const IN_FLIGHT = 4;
/** The downloader's ranges: 8 MiB of sealed bytes (client-wasm/src/download.rs RANGE_BYTES). */
const RANGE_SIZE = 8 * MiB;
/** Issue 14's bound for a transfer of `size`-byte parts (or ranges). */
const BOUND = (size) => (IN_FLIGHT + 2) * size + 64 * MiB;
/**
 * What every transfer must stay under: less than the file. A pipeline that held the
 * file (as the Blob sink or a naive upload does) exceeds it.
 */
const HELD_FILE = FILE_SIZE;
/**
 * Why the download's bound is asserted net of the receive path: receiving the bytes alone grows Chromium's
 * renderer by more than the bound. Measured 2026-11-29 (Chromium 156) with no sealdrop
 * code at all, a page reading 512 MiB from a local server in 8 MiB ranged GETs grew
 * 233-258 MiB: `fetch` with a BYOB reader into reused buffers, 1 or 4 in flight, in the
 * page or in a dedicated worker; 2 MiB ranges 218; XHR `arraybuffer` 246, each buffer
 * freed at once. It stays resident after the reads and grows further with more bytes
 * (449 MiB for a 4 GiB download, BENCHMARKS.md); with V8's collector forced every
 * 50 ms in the page and its workers, this download still grew 260 MiB. This one grew
 * 295-328 MiB (before the client freed its buffers early: 335-367).
 */
const RECEIVE_PATH = "Chromium's renderer grows 233-258 MiB receiving 512 MiB of ranged GETs, with no sealdrop code";

const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

describe("memory stays bounded (s3, 512 MiB)", () => {
  let browser;
  let stack;
  let page;
  let dir;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "sealdrop-memory-"));
    const path = join(dir, "random.bin");
    const fd = openSync(path, "w");
    const chunk = Buffer.alloc(16 * MiB);
    for (let written = 0; written < FILE_SIZE; written += chunk.length) writeSync(fd, randomFillSync(chunk));
    closeSync(fd);
    browser = await launchBrowser();
    stack = await startStack({ provider: "s3" });
    page = await openClientPage(browser, stack.url);
    await page.evaluate(() => document.body.append(Object.assign(document.createElement("input"), { type: "file", id: "file" })));
    await page.setInputFiles("#file", path);
  });

  after(async () => {
    await page?.close();
    await stack?.stop();
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `fn` in the page; answers its result and the renderer's growth meanwhile. */
  const measured = async (fn, arg) => {
    // Let the page settle (the last transfer's answers) before the start is taken.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
    const memory = memoryMeter();
    const result = await page.evaluate(fn, arg);
    const m = memory();
    assert.ok(m.rendererPeak && m.rendererStart, "Chromium's renderer was measured");
    return { result, growth: m.rendererPeak - m.rendererStart, peak: m.rendererPeak };
  };

  /**
   * A browser of its own for the next measurement: a fresh renderer, so that what an
   * earlier transfer left resident neither counts nor is reused by the next one.
   */
  const freshPage = async () => {
    await page.close();
    await browser.close();
    browser = await launchBrowser();
    page = await openClientPage(browser, stack.url);
  };

  let link;
  let downloadGrowth;

  test("upload: the renderer stays within issue 14's bound, parts sealed in the workers", async () => {
    const { result, growth, peak } = await measured(async ({ partSize, concurrency }) => {
      const file = document.getElementById("file").files[0];
      const workers = new Set();
      const upload = new sealdrop.Uploader({ partSize, concurrency, persist: false })
        .upload(file, { onProgress: (p) => workers.add(p.cipherWorkers) });
      const { link, size } = await upload;
      return { link, size, workers: [...workers] };
    }, { partSize: PART_SIZE, concurrency: IN_FLIGHT });
    assert.equal(result.size, FILE_SIZE);
    assert.deepEqual(result.workers, [2], "every part was sealed in the two cipher workers");
    link = result.link;
    console.log(`upload of ${mib(FILE_SIZE)}: renderer grew ${mib(growth)} (peak ${mib(peak)}), issue 14's bound ${mib(BOUND(PART_SIZE))}`);
    assert.ok(growth < HELD_FILE, `the renderer grew ${mib(growth)}: as if it held the file`);
    assert.ok(growth <= BOUND(PART_SIZE), `the renderer grew ${mib(growth)}, over issue 14's bound of ${mib(BOUND(PART_SIZE))}`);
  });

  test("download to a stream: the renderer grows by less than the file, ranges opened in the workers", async () => {
    assert.ok(link, "the upload ran");
    await freshPage();
    const { result, growth, peak } = await measured(async ({ link, concurrency }) => {
      let bytes = 0;
      const workers = new Set();
      const writable = new WritableStream({ write(chunk) { bytes += chunk.byteLength; } });
      await sealdrop.download(link, { concurrency, writable, onProgress: (p) => workers.add(p.cipherWorkers) });
      return { bytes, workers: [...workers] };
    }, { link, concurrency: IN_FLIGHT });
    console.log(`download of ${mib(FILE_SIZE)}: renderer grew ${mib(growth)} (peak ${mib(peak)}), issue 14's bound ${mib(BOUND(RANGE_SIZE))}`);
    assert.equal(result.bytes, FILE_SIZE, "every byte reached the stream");
    assert.deepEqual(result.workers, [2], "every range was opened in the two cipher workers");
    assert.ok(growth < HELD_FILE, `the renderer grew ${mib(growth)}: as if it held the file`);
    downloadGrowth = growth;
  });

  test("a cipher worker whose script is not served: the page seals and opens itself", async () => {
    // A worker script that fails to load fires a plain `Event` (not an ErrorEvent) at
    // the Worker: the pool must give up on it and the transfer go on in the page,
    // rather than wait for a worker that never starts.
    const missing = (route) => route.fulfill({ status: 404, contentType: "text/plain", body: "not here" });
    await page.route("**/sealdrop_worker.js", missing);
    try {
      const got = await page.evaluate(async () => {
        const bytes = new Uint8Array(2 * 1024 * 1024 + 3);
        for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
        const workers = new Set();
        const { link } = await new sealdrop.Uploader({ persist: false })
          .upload(new File([bytes], "noworker.bin"), { onProgress: (p) => workers.add(p.cipherWorkers) });
        const { blob } = await sealdrop.download(link, { onProgress: (p) => workers.add(p.cipherWorkers) });
        const back = new Uint8Array(await blob.arrayBuffer());
        return { same: back.length === bytes.length && back.every((b, i) => b === bytes[i]), workers: [...workers] };
      });
      assert.deepEqual(got.workers, [0], "no worker was used");
      assert.ok(got.same, "the file came back byte-identical");
    } finally {
      await page.unroute("**/sealdrop_worker.js", missing);
    }
  });

  test("workers: 0 seals and opens in the page, byte-identical", async () => {
    const got = await page.evaluate(async () => {
      const bytes = new Uint8Array(3 * 1024 * 1024 + 5);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      const workers = new Set();
      const { link } = await new sealdrop.Uploader({ workers: 0, persist: false })
        .upload(new File([bytes], "inpage.bin"), { onProgress: (p) => workers.add(p.cipherWorkers) });
      const { blob } = await sealdrop.download(link, { workers: 0, onProgress: (p) => workers.add(p.cipherWorkers) });
      const back = new Uint8Array(await blob.arrayBuffer());
      return { same: back.length === bytes.length && back.every((b, i) => b === bytes[i]), workers: [...workers] };
    });
    assert.deepEqual(got.workers, [0], "no worker was used");
    assert.ok(got.same, "the file came back byte-identical");
  });

  // Last, in a browser of its own (a fresh renderer, as the download had): the same
  // ranges of the same stored object fetched by plain `fetch` and dropped, with no
  // sealdrop code. What the download grew beyond that is sealdrop's own memory, and
  // that is what issue 14's bound is asserted on (the absolute figure cannot meet it:
  // see RECEIVE_PATH).
  test("download: sealdrop's own growth, beyond Chromium's receive path, stays within issue 14's bound", async () => {
    assert.ok(downloadGrowth !== undefined, "the download ran");
    const objects = await stack.s3.listObjects();
    const sealed = objects.reduce((a, b) => (b.size > (a?.size ?? 0) ? b : a), null);
    assert.ok(sealed && sealed.size > FILE_SIZE, "the uploaded file's sealed object is in storage");
    const url = await stack.s3.presign("GET", sealed.key, { origin: stack.proxy.url, expires: 3600 });
    await freshPage();
    const { result, growth } = await measured(async ({ url, size, rangeSize, concurrency }) => {
      let next = 0;
      let bytes = 0;
      const getter = async () => {
        while (next * rangeSize < size) {
          const start = rangeSize * next++;
          const end = Math.min(size, start + rangeSize) - 1;
          const res = await fetch(url, { headers: { range: `bytes=${start}-${end}` } });
          if (res.status !== 206) throw new Error(`range ${start}-${end}: HTTP ${res.status}`);
          const reader = res.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            bytes += value.byteLength;
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, getter));
      return { bytes };
    }, { url, size: sealed.size, rangeSize: RANGE_SIZE, concurrency: IN_FLIGHT });
    assert.equal(result.bytes, sealed.size, "every stored byte was received");
    const own = downloadGrowth - growth;
    console.log(`plain ranged GETs of the same ${mib(sealed.size)}: renderer grew ${mib(growth)}; the download grew ${mib(downloadGrowth)}, ${mib(own)} beyond it, issue 14's bound ${mib(BOUND(RANGE_SIZE))}`);
    assert.ok(growth < HELD_FILE, `plain GETs grew the renderer ${mib(growth)}, more than the file: a baseline that large would let any download pass (measured before: ${RECEIVE_PATH})`);
    assert.ok(own <= BOUND(RANGE_SIZE), `the download grew ${mib(own)} beyond plain GETs of the same ranges, over issue 14's bound of ${mib(BOUND(RANGE_SIZE))}`);
  });
});
