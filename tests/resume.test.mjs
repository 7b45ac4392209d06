// Resuming an upload after the page is reloaded and after the browser process is
// killed, in headless Chromium against the real worker, once per storage provider: the
// upload is interrupted at about half (its next part stalled at the fault proxy),
// found again with Uploader.pending(), and resumed; only the parts storage does not
// hold are sent (counted at the proxy), and the file downloads byte-identical. A file
// that is not the same is refused with file_changed before anything is sent, and an
// upload whose create was never answered resumes into the session that create made.
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
import { once } from "node:events";
import { after, before, beforeEach, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { ARGS, launchBrowser } from "./support/browser.mjs";
import { addPageHelpers } from "./support/page-helpers.mjs";
import { PROVIDERS, startStack } from "./support/stack.mjs";

const MiB = 1024 * 1024;
/** 5 records of 1 MiB per part: 30 MiB is 6 parts. */
const PART_SIZE = 5 * (MiB + 16);
const SIZE = 30 * MiB;

const work = mkdtempSync(join(tmpdir(), "sealdrop-resume-"));
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

after(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Opens the client page at `url` and loads the wasm client as `window.sealdrop`,
 *  with an <input type=file id=file> and the helpers the tests use. */
async function openPage(context, url) {
  const page = await context.newPage();
  await page.goto(`${url}/test/blank.html`);
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
  });
  await addPageHelpers(page);
}

/** Starts uploading `#file`'s file (or `window.opfsFile`) in the page, one part at a time. */
function startUpload(page, options = {}) {
  return page.evaluate(({ partSize, options }) => {
    const file = window.opfsFile ?? document.getElementById("file").files[0];
    window.up = new sealdrop.Uploader({ concurrency: 1, partSize }).upload(file, options.withHandle ? { handle: window.handle } : {});
    window.settled = outcome(up);
  }, { partSize: PART_SIZE, options });
}

/** Stalls part 4 at the proxy (no byte taken, no answer): the upload stops at about
 *  half. Resolves once part 4 has arrived there. */
function stallPart4(proxy) {
  proxy.inject({ method: "PUT", partNumber: 4, fault: "stall", afterBytes: 0 });
  return once(proxy.events, "fault");
}

async function stopAtHalf(proxy, started) {
  const stalled = stallPart4(proxy);
  await started();
  await stalled;
  assert.deepEqual(proxy.partPuts(), [1, 2, 3, 4], "parts 1 to 3 went, part 4 is on its way");
  proxy.clearFaults();
  proxy.resetLog();
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

/** How often each part was sent, from the proxy's log. */
function countByPart(proxy) {
  const counts = {};
  for (const part of proxy.partPuts()) counts[part] = (counts[part] ?? 0) + 1;
  return counts;
}

for (const provider of PROVIDERS) describe(`resume (${provider})`, () => {
  let stack;
  let browser;
  let page;
  const path = join(work, `${provider}-reload.bin`);
  const bytes = randomBytes(SIZE);
  // Whole seconds, so the copy below can carry exactly the same modification time.
  const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);

  before(async () => {
    writeFileSync(path, bytes);
    utimesSync(path, mtime, mtime);
    [stack, browser] = await Promise.all([startStack({ provider }), launchBrowser()]);
    page = await openPage(browser.context, stack.url);
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  beforeEach(() => {
    stack.proxy.clearFaults();
    stack.proxy.resetLog();
  });

  test("a page reloaded at about half resumes and sends only the missing parts", async () => {
    await page.setInputFiles("#file", path);
    await stopAtHalf(stack.proxy, () => startUpload(page));
    const id = await page.evaluate(() => (up.resumable ? up.id : null));
    assert.match(id, /^[A-Za-z0-9_-]{22}$/, "the upload is kept, under its local id");

    await page.reload();
    await loadClient(page);
    await page.setInputFiles("#file", path);
    const got = await resumeOnly(page, { repick: true });

    assert.equal(got.pending.length, 1);
    const [p] = got.pending;
    assert.equal(p.id, id);
    assert.equal(p.name, `${provider}-reload.bin`);
    assert.equal(p.size, SIZE);
    assert.match(p.fileId, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(p.endpoint, stack.url);
    assert.equal(p.handle, null);
    assert.ok(got.r.ok, got.r.message);
    assert.equal(got.r.value.fileId, p.fileId, "the same upload, completed");
    assert.deepEqual(countByPart(stack.proxy), { 4: 1, 5: 1, 6: 1 }, "only the parts storage did not hold");
    assert.equal(got.digest, sha256(bytes), "downloaded byte-identical");
    assert.deepEqual(got.states, ["uploading", "completing", "done"]);
    assert.equal(got.left, 0, "nothing is kept once it is done");
  });

  test("a file that changed is refused with file_changed, nothing is sent, and discard deletes the upload", async () => {
    await page.setInputFiles("#file", path);
    await stopAtHalf(stack.proxy, () => startUpload(page));
    await page.reload();
    await loadClient(page);

    // The same name, size and modification time, other bytes: only the first record's
    // digest tells them apart.
    const other = Buffer.from(bytes);
    other[0] ^= 1;
    mkdirSync(join(work, "changed"), { recursive: true });
    const changed = join(work, "changed", `${provider}-reload.bin`);
    writeFileSync(changed, other);
    utimesSync(changed, mtime, mtime);
    assert.equal(statSync(changed).mtimeMs, statSync(path).mtimeMs);
    await page.setInputFiles("#file", changed);
    const refused = await page.evaluate(async () => {
      const [pending] = await sealdrop.Uploader.pending();
      const up = new sealdrop.Uploader().resume(pending, { file: document.getElementById("file").files[0] });
      const r = await outcome(up);
      return { r, state: up.state, left: (await sealdrop.Uploader.pending()).length };
    });
    assert.equal(refused.r.code, "file_changed");
    assert.match(refused.r.message, /first bytes differ/);
    assert.equal(refused.state, "failed");
    assert.deepEqual(stack.proxy.partPuts(), [], "nothing was sent");
    assert.equal(refused.left, 1, "the upload is still kept, to resume with the right file or discard");

    // A file with another size is refused the same way.
    writeFileSync(changed, bytes.subarray(1));
    await page.setInputFiles("#file", changed);
    const shorter = await page.evaluate(async () => {
      const [pending] = await sealdrop.Uploader.pending();
      return outcome(new sealdrop.Uploader().resume(pending, { file: document.getElementById("file").files[0] }));
    });
    assert.equal(shorter.code, "file_changed");
    assert.deepEqual(stack.proxy.partPuts(), []);

    const discarded = await page.evaluate(async () => {
      // The owner's credential, as the discard sends it, to ask as the owner afterwards.
      const realFetch = window.fetch;
      let auth = null;
      window.fetch = (input, init = {}) => {
        auth ??= new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined)).get("authorization");
        return realFetch(input, init);
      };
      const [pending] = await sealdrop.Uploader.pending();
      try {
        await new sealdrop.Uploader().discard(pending);
      } finally {
        window.fetch = realFetch;
      }
      return { fileId: pending.fileId, auth, left: (await sealdrop.Uploader.pending()).length };
    });
    assert.equal(discarded.left, 0);
    assert.match(discarded.auth ?? "", /^Bearer /, "the discard proved ownership");
    const asOwner = { headers: { authorization: discarded.auth } };
    const upload = await fetch(`${stack.url}/api/uploads/${discarded.fileId}`, asOwner);
    assert.equal(upload.status, 200);
    assert.equal((await upload.json()).state, "aborted", "the upload was aborted");
    const file = await fetch(`${stack.url}/api/files/${discarded.fileId}`, asOwner);
    assert.equal(file.status, 404, "there is no file, even for its owner");
    assert.equal((await file.json()).error.code, "file_not_found");
    if (provider === "s3") {
      const left = (await stack.s3.listMultipartUploads()).filter((u) => u.key.includes(discarded.fileId));
      assert.deepEqual(left, [], "storage holds no multipart upload of it");
    }
  });

  test("a page reloaded before its create was answered resumes into the upload that create made", async () => {
    await page.setInputFiles("#file", path);
    // The create reaches the worker, but its answer never reaches the client.
    const made = await page.evaluate(async () => {
      const realFetch = window.fetch.bind(window);
      let made;
      window.fetch = async (input, init = {}) => {
        const res = await realFetch(input, init);
        if ((init.method ?? "GET") !== "POST" || new URL(String(input)).pathname !== "/api/uploads") return res;
        made = await res.json();
        return new Promise(() => {});
      };
      window.up = new sealdrop.Uploader({ concurrency: 1 }).upload(document.getElementById("file").files[0]);
      while (!made) await new Promise((r) => setTimeout(r, 20));
      return made;
    });
    await page.reload();
    await loadClient(page);
    await page.setInputFiles("#file", path);
    const got = await resumeOnly(page, { repick: true });
    assert.equal(got.pending.length, 1);
    assert.equal(got.pending[0].fileId, null, "the browser never learnt the upload's id");
    assert.ok(got.r.ok, got.r.message);
    assert.equal(got.r.value.fileId, made.fileId, "the same create again found the same upload");
    assert.equal(got.digest, sha256(bytes));
  });

  test("a killed browser resumes the upload through its saved file handle and sends only the missing parts", async () => {
    const profile = join(work, `${provider}-profile`);
    let chrome = await launchChromium(profile);
    try {
      let killed = await openPage(chrome.context, stack.url);
      // An OPFS file: a real FileSystemFileHandle, readable again after a restart.
      const digest = await killed.evaluate(async (size) => {
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
      await stopAtHalf(stack.proxy, () => startUpload(killed, { withHandle: true }));

      await chrome.kill();
      chrome = await launchChromium(profile);
      killed = await openPage(chrome.context, stack.url);
      const got = await resumeOnly(killed, { repick: false });

      assert.equal(got.pending.length, 1);
      assert.equal(got.pending[0].name, "killed.bin");
      assert.equal(got.pending[0].handle, "file", "the handle survived the crash");
      assert.ok(got.r.ok, got.r.message);
      assert.deepEqual(countByPart(stack.proxy), { 4: 1, 5: 1, 6: 1 }, "only the parts storage did not hold");
      assert.equal(got.digest, digest, "downloaded byte-identical");
      assert.equal(got.left, 0);
    } finally {
      await chrome.close();
    }
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
