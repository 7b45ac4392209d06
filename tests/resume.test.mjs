// Resuming an upload after the page is reloaded and after the browser process is
// killed, in headless Chromium against the real worker: the upload is interrupted at
// about half (its next part held unanswered), found again with Uploader.pending(), and
// resumed; only the parts storage does not hold are sent (counted at the network
// layer, tests/support/puts.mjs), and the file downloads byte-identical. A file that is
// not the same is refused with file_changed before anything is sent.
//
// The reload re-picks the file from disk (an <input type=file>); the killed browser
// reads it through the FileSystemFileHandle the upload kept (an OPFS file, a real
// FileSystemFileHandle that needs no permission prompt headlessly).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { ARGS, launchBrowser } from "./support/browser.mjs";
import { watchPuts } from "./support/puts.mjs";
import { startServer } from "./support/server.mjs";

const MiB = 1024 * 1024;
/** 5 records of 1 MiB per part: 30 MiB is 6 parts. */
const PART_SIZE = 5 * (MiB + 16);
const SIZE = 30 * MiB;

const work = mkdtempSync(join(tmpdir(), "sealdrop-resume-"));
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Opens the client page and loads the wasm client as `window.sealdrop`, with an
 *  <input type=file id=file> and the helpers the tests use. */
async function openPage(context) {
  const page = await context.newPage();
  await page.goto(`${server.url}/test/blank.html`);
  await loadClient(page);
  return page;
}

async function loadClient(page) {
  await page.evaluate(async () => {
    const mod = await import("/pkg/sealdrop_client.js");
    await mod.default();
    window.sealdrop = mod;
    const input = document.createElement("input");
    input.type = "file";
    input.id = "file";
    document.body.append(input);
    window.outcome = async (promise) => {
      try {
        return { ok: true, value: await promise };
      } catch (e) {
        return { ok: false, code: e.code, message: e.message };
      }
    };
    window.sha256 = async (blob) => {
      const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
      return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    };
  });
}

/** Starts uploading `#file`'s file (or `window.opfsFile`) in the page, one part at a time. */
function startUpload(page, options = {}) {
  return page.evaluate(({ partSize, options }) => {
    const file = window.opfsFile ?? document.getElementById("file").files[0];
    window.up = new sealdrop.Uploader({ concurrency: 1, partSize }).upload(file, options.withHandle ? { handle: window.handle } : {});
    window.settled = outcome(up);
  }, { partSize: PART_SIZE, options });
}

/** Holds part 4's first PUT unanswered: the upload stops at about half. */
async function stopAtHalf(puts) {
  puts.handler = (put, route) => (put.part === 4 ? puts.hold(route) : false);
  await puts.until((log) => log.some((p) => p.part === 4));
  assert.deepEqual(puts.parts(), [1, 2, 3, 4], "parts 1 to 3 went, part 4 is on its way");
}

/** Resumes the page's only pending upload (with the re-picked file, unless it kept a
 *  handle) and downloads it: its digest, and how the pending list looked. */
function resumeOnly(page, { repick }) {
  return page.evaluate(async (repick) => {
    const pending = await sealdrop.Uploader.pending();
    const uploader = new sealdrop.Uploader({ concurrency: 1 });
    const file = repick ? document.getElementById("file").files[0] : undefined;
    const states = [];
    const up = uploader.resume(pending[0], { file, onStateChange: (s) => states.push(s) });
    const r = await outcome(up);
    const d = r.ok ? await sealdrop.download(r.value.link) : null;
    return {
      pending: pending.map((p) => ({ ...p, handle: p.handle ? p.handle.kind : null })),
      r, states, digest: d ? await sha256(d.blob) : null, size: d?.size,
      left: (await sealdrop.Uploader.pending()).length,
    };
  }, repick);
}

describe("resume after a reload", () => {
  let browser;
  let page;
  let puts;
  const path = join(work, "reload.bin");
  const bytes = randomBytes(SIZE);

  // Whole seconds, so the copy below can carry exactly the same modification time.
  const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);

  before(async () => {
    writeFileSync(path, bytes);
    utimesSync(path, mtime, mtime);
    browser = await launchBrowser();
    page = await openPage(browser.context);
    puts = await watchPuts(page);
  });

  after(async () => {
    await browser?.close();
  });

  test("a page reloaded at about half resumes and sends only the missing parts", async () => {
    await page.setInputFiles("#file", path);
    await startUpload(page);
    await stopAtHalf(puts);
    const id = await page.evaluate(() => (up.resumable ? up.id : null));
    assert.match(id, /^[A-Za-z0-9_-]{22}$/, "the upload is kept, under its local id");

    puts.reset();
    await page.reload();
    await loadClient(page);
    await page.setInputFiles("#file", path);
    const got = await resumeOnly(page, { repick: true });

    assert.equal(got.pending.length, 1);
    const [p] = got.pending;
    assert.equal(p.id, id);
    assert.equal(p.name, "reload.bin");
    assert.equal(p.size, SIZE);
    assert.match(p.fileId, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(p.endpoint, server.url);
    assert.equal(p.handle, null);
    assert.ok(got.r.ok, got.r.message);
    assert.equal(got.r.value.fileId, p.fileId, "the same upload, completed");
    assert.deepEqual(puts.countByPart(), { 4: 1, 5: 1, 6: 1 }, "only the parts storage did not hold");
    assert.equal(got.digest, sha256(bytes), "downloaded byte-identical");
    assert.deepEqual(got.states, ["uploading", "completing", "done"]);
    assert.equal(got.left, 0, "nothing is kept once it is done");
  });

  test("a file that changed is refused with file_changed, nothing is sent, and discard deletes the upload", async () => {
    await page.setInputFiles("#file", path);
    puts.reset();
    await startUpload(page);
    await stopAtHalf(puts);
    puts.reset();
    await page.reload();
    await loadClient(page);

    // The same name, size and modification time, other bytes: only the first record's
    // digest tells them apart.
    const other = Buffer.from(bytes);
    other[0] ^= 1;
    mkdirSync(join(work, "changed"), { recursive: true });
    const changed = join(work, "changed", "reload.bin");
    writeFileSync(changed, other);
    utimesSync(changed, mtime, mtime);
    assert.equal(statSync(changed).mtimeMs, statSync(path).mtimeMs);
    await page.setInputFiles("#file", changed);
    const refused = await page.evaluate(async () => {
      const [pending] = await sealdrop.Uploader.pending();
      const up = new sealdrop.Uploader().resume(pending, { file: document.getElementById("file").files[0] });
      const r = await outcome(up);
      return { r, state: up.state, pending, left: (await sealdrop.Uploader.pending()).length };
    });
    assert.equal(refused.r.code, "file_changed");
    assert.match(refused.r.message, /first bytes differ/);
    assert.equal(refused.state, "failed");
    assert.equal(puts.log.length, 0, "nothing was sent");
    assert.equal(refused.left, 1, "the upload is still kept, to resume with the right file or discard");

    // A file with another size is refused the same way.
    writeFileSync(changed, bytes.subarray(1));
    await page.setInputFiles("#file", changed);
    const shorter = await page.evaluate(async () => {
      const [pending] = await sealdrop.Uploader.pending();
      return outcome(new sealdrop.Uploader().resume(pending, { file: document.getElementById("file").files[0] }));
    });
    assert.equal(shorter.code, "file_changed");
    assert.equal(puts.log.length, 0);

    const discarded = await page.evaluate(async () => {
      const [pending] = await sealdrop.Uploader.pending();
      await new sealdrop.Uploader().discard(pending);
      return { fileId: pending.fileId, left: (await sealdrop.Uploader.pending()).length };
    });
    assert.equal(discarded.left, 0);
    const file = await fetch(`${server.url}/api/files/${discarded.fileId}`);
    assert.equal(file.status, 404, "there is no file");
  });
});

describe("resume after the browser process is killed", () => {
  const profile = join(work, "profile");
  let chrome;

  after(async () => {
    await chrome?.close();
  });

  test("a killed browser resumes the upload through its saved file handle and sends only the missing parts", async () => {
    chrome = await launchChromium(profile);
    let page = await openPage(chrome.context);
    let puts = await watchPuts(page);
    // An OPFS file: a real FileSystemFileHandle, readable again after a restart.
    const digest = await page.evaluate(async (size) => {
      const root = await navigator.storage.getDirectory();
      window.handle = await root.getFileHandle("killed.bin", { create: true });
      const writable = await handle.createWritable();
      for (let left = size; left > 0; left -= 65536) {
        await writable.write(crypto.getRandomValues(new Uint8Array(Math.min(left, 65536))));
      }
      await writable.close();
      window.opfsFile = await handle.getFile();
      return sha256(window.opfsFile);
    }, SIZE);
    await startUpload(page, { withHandle: true });
    await stopAtHalf(puts);

    await chrome.kill();
    chrome = await launchChromium(profile);
    page = await openPage(chrome.context);
    puts = await watchPuts(page);
    const got = await resumeOnly(page, { repick: false });

    assert.equal(got.pending.length, 1);
    assert.equal(got.pending[0].name, "killed.bin");
    assert.equal(got.pending[0].handle, "file", "the handle survived the crash");
    assert.ok(got.r.ok, got.r.message);
    assert.deepEqual(puts.countByPart(), { 4: 1, 5: 1, 6: 1 }, "only the parts storage did not hold");
    assert.equal(got.digest, digest, "downloaded byte-identical");
    assert.equal(got.left, 0);
  });
});

/**
 * Starts Debian's Chromium on a fixed profile with remote debugging and connects to
 * it, so the test owns the process and can kill it the hard way (SIGKILL, no clean
 * shutdown: what a crash does to IndexedDB and OPFS).
 */
async function launchChromium(profileDir) {
  const child = spawn(
    process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    ["--headless", "--remote-debugging-port=0", `--user-data-dir=${profileDir}`, ...ARGS, "about:blank"],
    { detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  const killGroup = () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // gone already
    }
  };
  process.on("exit", killGroup);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const endpoint = await new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`Chromium did not start:\n${text}`)), 60_000);
    child.stderr.on("data", (chunk) => {
      text += chunk;
      const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      reject(new Error(`Chromium exited:\n${text}`));
    });
  });
  const browser = await chromium.connectOverCDP(endpoint);
  const context = browser.contexts()[0];
  context.on("page", (page) => page.on("pageerror", (err) => console.error(`[browser pageerror] ${err.stack ?? err}`)));
  return {
    context,
    /** SIGKILL the whole process group and wait until it is gone. */
    kill() {
      killGroup();
      return exited;
    },
    async close() {
      await browser.close().catch(() => {});
      killGroup();
      await exited;
      process.off("exit", killGroup);
    },
  };
}
