// The demo app's receive page as a person downloads with it, in headless Chromium
// against the real worker (r2-binding) behind the fault proxy, which logs every ranged
// GET of the stored object: the page shows the file's name and size and how it will be
// saved; Save to disk writes through the file picker (stubbed with the origin private
// file system, which gives the same FileSystemFileHandle) under a `.part` name; Pause
// stops every range request until Resume, which fetches only what is missing; a reload
// in the middle shows the download as resumable (on the send page's list too), and
// Resume finishes it from the last verified record, renamed, byte-identical; Cancel
// deletes the partial file. Without File System Access the page gathers a small file
// in memory (Pause holds the stream) and streams a large one through the service
// worker into the browser's downloads. A flipped byte in storage is an integrity error
// naming its record, in words.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, afterEach, before, describe, test } from "node:test";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { addPageHelpers, stubSavePicker } from "./support/page-helpers.mjs";
import { startStack } from "./support/stack.mjs";

const MiB = 1024 * 1024;
const TAG = 16;
/** A sealed 1 MiB record. */
const SEALED = MiB + TAG;

let browser;
let stack;
let sender;

before(async () => {
  [browser, stack] = await Promise.all([launchBrowser(), startStack({ provider: "r2-binding" })]);
  sender = await openClientPage(browser, stack.url);
  await addPageHelpers(sender);
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Uploads `size` random bytes as `name` (1 MiB records): its link and SHA-256. */
function put(size, name) {
  return sender.evaluate(async ({ size, name }) => {
    const file = new File([randomBlob(size)], name, { type: "application/x-test" });
    const up = await new sealdrop.Uploader({ recordSize: 1024 * 1024, persist: false }).upload(file);
    return { link: up.link, sha256: await sha256(file) };
  }, { size, name });
}

/** Whether `path` is the stored object's (/blob/{id}). */
const isObject = (path) => /^\/blob\/[A-Za-z0-9_-]{22,}$/.test(path);
/** The ranged GETs of the stored object since the log was reset, as [first, last] bytes,
 *  in the order of the file. */
const ranges = () => stack.proxy.requests({ method: "GET" })
  .filter((e) => isObject(e.path))
  .map((e) => e.range.match(/^bytes=(\d+)-(\d+)$/).slice(1).map(Number))
  .sort((a, b) => a[0] - b[0]);
/** Asserts that `got` fetched the section from record `from` to its `end` (bytes)
 *  exactly once: no gap, no overlap, nothing before. */
function tiles(got, from, end, what) {
  assert.ok(got.length > 0, `${what}: something was fetched`);
  assert.equal(got[0][0], from * SEALED, `${what}: nothing before the last verified record`);
  for (let i = 1; i < got.length; i++) assert.equal(got[i][0], got[i - 1][1] + 1, `${what}: ranges follow each other`);
  assert.equal(got.at(-1)[1], end - 1, `${what}: up to the end`);
}
/** Holds every GET of the range that starts at record `record` until removed. */
const stallAt = (record) => stack.proxy.inject({
  method: "GET", path: isObject, fault: "stall", times: 1000,
  match: (e) => e.range?.startsWith(`bytes=${record * SEALED}-`),
});

/** Waits until the GET of the range that starts at record `record` reached storage. */
async function requested(record) {
  const start = record * SEALED;
  for (let i = 0; i < 1200 && !ranges().some((r) => r[0] === start); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(ranges().some((r) => r[0] === start), `the range from record ${record} was asked for`);
}

/** Waits until the page's range requests have settled: none in flight at the proxy,
 *  and none started since, while the page had a second to react to the last answer
 *  (a completed range frees a slot, and the page may start another within its window:
 *  that one is then in flight for its whole delay, and the wait goes on). */
async function settled(what) {
  const inFlight = () => stack.proxy.inFlight({ method: "GET", path: isObject }).length;
  for (let i = 0; i < 120; i++) {
    for (let j = 0; j < 1200 && inFlight() > 0; j++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const asked = stack.proxy.log.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (inFlight() === 0 && stack.proxy.log.length === asked) return;
  }
  assert.fail(`${what}: the range requests never settled`);
}

/** The receive page at `link`, with the File System Access picker answered by a file
 *  of the origin private file system (or, `picker: false`, no picker at all). */
async function receivePage(link, { picker = true } = {}) {
  const page = await browser.newPage();
  await stubSavePicker(page, { picker });
  const url = new URL(link);
  await page.goto(`${stack.url}${url.pathname}${url.hash}`);
  await page.locator("#incoming[data-state=ready]").waitFor({ timeout: 60_000 });
  return page;
}

/** The names and sizes of the files named `prefix`... in the origin private file system
 *  (which the tests share), and the SHA-256 of `name`. */
function opfs(page, prefix, name) {
  return page.evaluate(async ([prefix, name]) => {
    const root = await navigator.storage.getDirectory();
    const files = {};
    for await (const [n, handle] of root.entries()) {
      if (n.startsWith(prefix)) files[n] = (await handle.getFile()).size;
    }
    let digest = null;
    if (name in files) {
      const bytes = await (await (await root.getFileHandle(name)).getFile()).arrayBuffer();
      digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
        .map((b) => b.toString(16).padStart(2, "0")).join("");
    }
    return { files, digest };
  }, [prefix, name]);
}

/** Waits until the card's bar shows at least `bytes` of `size`. */
function progressAtLeast(page, bytes, size) {
  return page.waitForFunction(([bytes, size]) =>
    document.querySelector("#incoming-progress").value * size >= bytes - 1, [bytes, size], { timeout: 60_000 });
}

describe("the receive page", () => {
  afterEach(() => stack.proxy.clearFaults());

  test("Save to disk, Pause (no range requests), Resume, a reload, Resume: only the missing ranges, renamed, byte-identical", async () => {
    const size = 70 * MiB - 5; // 70 records; a range is 7 records
    const { link, sha256 } = await put(size, "big.bin");
    const page = await receivePage(link);
    assert.equal(await page.locator("#incoming-name").textContent(), "big.bin");
    assert.equal(await page.locator("#incoming-size").textContent(), "70.0 MiB · application/x-test");
    assert.match(await page.locator("#incoming-method").textContent(), /Saved straight to a file you choose, under a “\.part” name/);
    assert.equal(await page.locator("#incoming-start").textContent(), "Save to disk");

    // The range of records 7..14 is held. The client opens at most 5 ranges ahead of
    // the one it writes next, so the GET of records 35..42 (the 6th range) is asked
    // for only once the 1st range is on disk: then Pause.
    let held = stallAt(7);
    stack.proxy.resetLog();
    await page.click("#incoming-start");
    await requested(35);
    await page.click("#incoming-pause");
    await page.locator("#incoming[data-state=paused]").waitFor({ timeout: 60_000 });
    // Paused: the ranges in flight end (the held one is aborted); from then on no
    // request reaches storage until Resume, whatever the page does meanwhile (its
    // status, a read of the file on disk) and however long that takes.
    await settled("paused");
    stack.proxy.resetLog();
    assert.match(await page.locator("#incoming-status").textContent(), /Paused\. What was verified is on disk/);
    assert.equal(await page.locator("#incoming-pause").textContent(), "Resume");
    let disk = await opfs(page, "big.bin");
    assert.deepEqual(disk.files, { "big.bin.part": 7 * MiB }, "the verified records, under the .part name");
    assert.deepEqual(stack.proxy.inFlight({ method: "GET", path: isObject }), [], "nothing in flight while paused");

    // Resume: from record 7 on. Now records 21..28 are held; the GET of records 49..56
    // (the 7th range from record 7) says that records 7..21 are on disk: Pause again.
    held.remove();
    held = stallAt(21);
    // Counted at the moment of Resume: nothing was asked for since the page settled.
    assert.deepEqual(ranges(), [], "no range requests while paused");
    await page.click("#incoming-pause");
    await requested(49);
    await page.click("#incoming-pause");
    await page.locator("#incoming[data-state=paused]").waitFor({ timeout: 60_000 });
    assert.equal(ranges()[0][0], 7 * SEALED, "Resume fetched nothing before the last verified record");
    disk = await opfs(page, "big.bin");
    assert.deepEqual(disk.files, { "big.bin.part": 21 * MiB });

    // The send page lists it too, with what is on disk.
    held.remove();
    const home = await browser.newPage();
    await home.goto(stack.url);
    const item = home.locator("#download-list li.kept", { hasText: "big.bin" });
    await item.waitFor({ timeout: 60_000 });
    assert.equal(await item.locator(".detail").textContent(), "21.0 MiB of 70.0 MiB");
    assert.deepEqual(await item.locator("button:visible").allTextContents(), ["Resume", "Forget"]);
    await home.close();

    // A reload: the page finds the kept download and offers to resume it.
    await page.reload();
    await page.locator("#incoming[data-state=ready]").waitFor({ timeout: 60_000 });
    assert.equal(await page.locator("#incoming-start").textContent(), "Resume");
    assert.equal(await page.locator("#incoming-method").textContent(),
      "You began saving this file in this browser: 21.0 MiB of 70.0 MiB are on disk, verified. Resume continues from the last verified record.");
    stack.proxy.resetLog();
    await page.click("#incoming-start");
    await page.locator("#incoming.done").waitFor({ timeout: 60_000 });
    assert.equal(await page.locator("#incoming-status").textContent(),
      "Verified and saved as big.bin. Every part of the file passed its integrity check.");
    tiles(ranges(), 21, 69 * SEALED + (MiB - 5 + TAG), "after the reload");
    disk = await opfs(page, "big.bin", "big.bin");
    assert.deepEqual(Object.keys(disk.files), ["big.bin"], "renamed once complete; no .part left");
    assert.equal(disk.digest, sha256, "the file on disk is byte-identical");
    assert.equal(await page.evaluate(async () => (await import("/pkg/sealdrop_client.js")).pendingDownloads().then((p) => p.length)), 0,
      "a complete download is no longer kept");
    await page.close();
  });

  test("Cancel stops a download to disk, deletes its partial file and forgets it", async () => {
    const { link } = await put(70 * MiB - 5, "dropped.bin");
    const page = await receivePage(link);
    stallAt(7);
    stack.proxy.resetLog();
    await page.click("#incoming-start");
    await requested(35); // the first range is on disk
    await page.click("#incoming-cancel");
    await page.locator("#incoming.cancelled").waitFor({ timeout: 60_000 });
    assert.equal(await page.locator("#incoming-status").textContent(), "Cancelled. The partial file was deleted.");
    assert.deepEqual((await opfs(page, "dropped.bin")).files, {}, "no file is left");
    assert.equal(await page.evaluate(async () => (await import("/pkg/sealdrop_client.js")).pendingDownloads().then((p) => p.length)), 0,
      "nothing is listed as unfinished");
    assert.deepEqual(await page.locator("#incoming button:visible").allTextContents(), [], "nothing left to press");
    await page.close();
  });

  test("without File System Access a small file is gathered in memory; Pause holds it (no range requests) until Resume", async () => {
    const size = 60 * MiB + 3; // 61 records, 9 ranges: more than the 4 in flight
    const { link, sha256 } = await put(size, "small.bin");
    const page = await receivePage(link, { picker: false });
    assert.match(await page.locator("#incoming-method").textContent(), /Gathered in this page, then saved once every record is verified/);
    // Every range after the first arrives 1.5 s late: the pause comes before most are
    // asked for.
    const slow = stack.proxy.inject({
      method: "GET", path: isObject, fault: "delay", delayMs: 1500, times: 1000,
      match: (e) => !e.range?.startsWith("bytes=0-"),
    });
    stack.proxy.resetLog();
    await page.click("#incoming-start");
    await progressAtLeast(page, 7 * MiB, size);
    await page.click("#incoming-pause");
    await page.locator("#incoming[data-state=paused]").waitFor({ timeout: 60_000 });
    assert.match(await page.locator("#incoming-status").textContent(), /Paused: nothing more is fetched until you resume/);
    // The ranges in flight end (each 1.5 s late), and the download then waits on the
    // paused stream: nothing more is asked for until Resume, counted at that moment.
    await settled("paused");
    const before = ranges().length;
    assert.ok(before < 9, `the paused download did not fetch the whole file (${before} of 9 ranges)`);
    assert.equal(await page.locator("#incoming-pause").textContent(), "Resume");
    slow.remove();
    const saved = page.waitForEvent("download", { timeout: 120_000 });
    assert.equal(ranges().length, before, "no range requests while paused");
    assert.deepEqual(stack.proxy.inFlight({ method: "GET", path: isObject }), [], "nothing in flight while paused");
    await page.click("#incoming-pause");
    await page.locator("#incoming.done").waitFor({ timeout: 120_000 });
    const file = await (await saved).path();
    assert.equal(createHash("sha256").update(readFileSync(file)).digest("hex"), sha256, "byte-identical");
    assert.ok(!(await page.locator("#incoming-save").isHidden()), "Save again is offered");
    await page.close();
  });

  test("without File System Access a large file streams through the service worker into the browser's downloads", async () => {
    const size = 64 * MiB + 7; // just over what the page gathers in memory
    const { link, sha256 } = await put(size, "large.bin");
    const page = await receivePage(link, { picker: false });
    assert.match(await page.locator("#incoming-method").textContent(), /Streamed into your browser's downloads as it is verified/);
    const saved = page.waitForEvent("download", { timeout: 120_000 });
    await page.click("#incoming-start");
    const download = await saved;
    assert.equal(download.suggestedFilename(), "large.bin");
    await page.locator("#incoming.done").waitFor({ timeout: 120_000 });
    const file = await download.path();
    assert.equal(createHash("sha256").update(readFileSync(file)).digest("hex"), sha256, "byte-identical");
    await page.close();
  });

  test("a byte flipped in storage: the integrity error names its record, in words, and the file stays .part", async () => {
    const { link } = await put(5 * MiB + 3, "flip.bin");
    const page = await receivePage(link);
    const flip = stack.proxy.inject({ method: "GET", path: isObject, fault: "flip", atByte: 3 * SEALED + 1000 });
    await page.click("#incoming-start");
    await page.locator("#incoming.failed").waitFor({ timeout: 60_000 });
    assert.equal(flip.hits, 1);
    assert.match(await page.locator("#incoming-status").textContent(),
      /^The stored file is damaged: record 3 failed its integrity check\. The download stopped, and nothing is presented as complete\. The partial file keeps the name flip\.bin\.part\. record_auth_failed$/);
    assert.ok(await page.locator("#incoming-pause").isHidden(), "no Resume for a damaged file");
    assert.equal(await page.evaluate(async () => (await import("/pkg/sealdrop_client.js")).pendingDownloads().then((p) => p.length)), 0,
      "nor is it listed as unfinished");
    const disk = await opfs(page, "flip.bin");
    assert.ok("flip.bin.part" in disk.files && !("flip.bin" in disk.files), "nothing is presented as complete");
    await page.close();
  });
});
