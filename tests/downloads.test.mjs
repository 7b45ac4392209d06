// Downloads of any size, once per storage provider, in headless Chromium against the
// real worker with the fault proxy (tests/support/faultproxy.mjs) in front of storage,
// where every ranged GET is logged with its Range header: a byte flipped in storage is
// an integrity error naming its record and leaves the file on disk under its `.part`
// name; a download to a file (the origin private file system stands in for
// showSaveFilePicker, same FileSystemFileHandle) stopped at about half resumes from the
// last verified record, fetches only the ranges after it, and its SHA-256 matches; the
// service worker (web/sw.js) answers a Range from the middle of a video's preview after
// fetching only the records that hold it (and the whole file piece by piece without
// a Range), refuses types that are not safe to render,
// and streams a download to a navigation where there is no File System Access.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { addPageHelpers } from "./support/page-helpers.mjs";
import { PROVIDERS, startStack } from "./support/stack.mjs";

const MiB = 1024 * 1024;
const TAG = 16;

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

for (const provider of PROVIDERS) describe(`downloads (${provider})`, () => {
  let stack;
  let page;

  /** The helpers every test here uses, in `page` (again after a reload). */
  const setUp = async () => {
    await addPageHelpers(page);
    await page.evaluate(async () => {
      /** Uploads `size` random bytes as `name` of `type`; keeps them as window.files[name]. */
      window.files = {};
      window.put = async (size, name, type, options = {}) => {
        const file = new File([randomBlob(size)], name, { type });
        files[name] = file;
        const up = await new sealdrop.Uploader({ recordSize: 1024 * 1024, ...options }).upload(file);
        return { link: up.link, sha256: await sha256(file) };
      };
      /** A fresh file handle `name` in the origin private file system. */
      window.opfs = async (name) => {
        const root = await navigator.storage.getDirectory();
        await root.removeEntry(name).catch(() => {});
        return root.getFileHandle(name, { create: true });
      };
      window.opfsNames = async () => {
        const names = [];
        for await (const name of (await navigator.storage.getDirectory()).keys()) names.push(name);
        return names.sort();
      };
    });
  };

  before(async () => {
    stack = await startStack({ provider });
    page = await openClientPage(browser, stack.url);
    await setUp();
  });

  after(async () => {
    await page?.close();
    await stack?.stop();
  });

  /** Whether `path` is the stored object's (r2-binding: /blob/{id}; s3: <bucket>/files/{id}). */
  const isObject = (path) => !path.startsWith("/api/") && /\/(blob|files)\/[A-Za-z0-9_-]{22,}$/.test(path);
  /** The ranged GETs of the stored object since the log was reset, as [first, last] bytes. */
  const objectRanges = () => stack.proxy.requests({ method: "GET" })
    .filter((e) => isObject(e.path))
    .map((e) => e.range.match(/^bytes=(\d+)-(\d+)$/).slice(1).map(Number));

  test("a byte flipped in storage: record_auth_failed naming its record, and the file stays .part", async () => {
    const { link } = await page.evaluate(() => put(5 * 1024 * 1024 + 3, "flip.bin", "application/x-test"));
    const record = 3;
    stack.proxy.resetLog();
    const flip = stack.proxy.inject({ method: "GET", path: isObject, fault: "flip", atByte: record * (MiB + TAG) + 1000 });
    const got = await page.evaluate(async (link) => {
      const fileHandle = await opfs("flip.bin.part");
      const d = await outcome(sealdrop.download(link, { fileHandle, concurrency: 1 }));
      return { d, names: await opfsNames() };
    }, link);
    assert.equal(flip.hits, 1);
    assert.equal(got.d.ok, false);
    assert.equal(got.d.code, "record_auth_failed");
    assert.equal(got.d.record, record, "the error names the flipped record");
    assert.ok(got.names.includes("flip.bin.part"), "the partial file keeps its .part name");
    assert.ok(!got.names.includes("flip.bin"), "nothing is presented as complete");
  });

  test("a download to disk stopped at about half resumes after a reload from the last verified record: only the missing ranges are fetched, the SHA-256 matches", async () => {
    // 40 records of 1 MiB; a range is 7 whole records (8 MiB of ciphertext at most).
    const size = 40 * MiB - 5;
    const { link, sha256: digest } = await page.evaluate((size) => put(size, "big.bin", "application/x-test"), size);
    stack.proxy.resetLog();
    const first = await page.evaluate(async ([link, size]) => {
      const fileHandle = await opfs("big.bin.part");
      const controller = new AbortController();
      const d = await outcome(sealdrop.download(link, {
        fileHandle, concurrency: 1, signal: controller.signal,
        onProgress: (p) => { if (p.bytesDone >= size / 2) controller.abort(); },
      }));
      return { d, kept: (await fileHandle.getFile()).size, pending: (await sealdrop.pendingDownloads()).map((p) => p.name) };
    }, [link, size]);
    assert.equal(first.d.code, "cancelled", "the first download stopped");
    assert.ok(first.kept > 0 && first.kept < size, `part of the file is on disk (${first.kept} B)`);
    assert.equal(first.kept % MiB, 0, "only whole verified records are kept");
    assert.ok(first.pending.includes("big.bin"), "the unfinished download is kept in IndexedDB");
    const firstRanges = objectRanges();

    // A reload: the page knows nothing; the client lists what it kept.
    await page.reload();
    await page.evaluate(async () => {
      const mod = await import("/pkg/sealdrop_client.js");
      await mod.default();
      window.sealdrop = mod;
    });
    await setUp();
    stack.proxy.resetLog();
    const second = await page.evaluate(async () => {
      const kept = (await sealdrop.pendingDownloads()).find((p) => p.name === "big.bin");
      const d = await outcome(sealdrop.download(kept.link, { fileHandle: kept.handle, concurrency: 2 }));
      const root = await navigator.storage.getDirectory();
      const file = await (await root.getFileHandle("big.bin")).getFile();
      return {
        kept: { ...kept, handle: kept.handle.kind, link: kept.link },
        d, sha256: await sha256(file), names: await opfsNames(),
        after: (await sealdrop.pendingDownloads()).map((p) => p.name),
      };
    });
    assert.equal(second.kept.link, link, "the kept link, its key unwrapped, is the link");
    assert.equal(second.kept.size, size);
    assert.equal(second.kept.handle, "file");
    assert.ok(second.d.ok, second.d.message);
    assert.equal(second.d.value.resumedFrom, first.kept, "it resumed where the first stopped");
    assert.equal(second.d.value.blob, null, "a file sink gives no Blob");
    assert.equal(second.sha256, digest, "the file on disk is byte-identical");
    assert.ok(second.names.includes("big.bin") && !second.names.includes("big.bin.part"), "renamed once complete");
    assert.ok(!second.after.includes("big.bin"), "a complete download is no longer kept");

    // Only what was missing: the ranges start at the first record not kept, follow each
    // other without a gap or an overlap, and end with the file.
    const sealedRecord = MiB + TAG;
    const resumedAt = (first.kept / MiB) * sealedRecord;
    const ranges = objectRanges().sort((a, b) => a[0] - b[0]);
    assert.equal(ranges[0][0], resumedAt, "nothing before the resume point is fetched again");
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i][0], ranges[i - 1][1] + 1, "ranges tile the rest");
    const sealedTotal = 39 * sealedRecord + (MiB - 5 + TAG);
    assert.equal(ranges.at(-1)[1], sealedTotal - 1, "up to the last byte");
    assert.equal(ranges.length, Math.ceil((40 - first.kept / MiB) / 7), "one GET per missing range");
    assert.ok(firstRanges.length + ranges.length <= Math.ceil(40 / 7) + 2, "about the file's ranges in all, not twice");
  });

  describe("the service worker", () => {
    before(async () => {
      await page.evaluate(async () => {
        await navigator.serviceWorker.register("/sw.js", { type: "module" });
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) {
          await new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }));
        }
        /** Posts `message` to the service worker; resolves to its answer. */
        window.tell = (message, transfer = []) => new Promise((resolve) => {
          const channel = new MessageChannel();
          channel.port1.onmessage = (e) => resolve(e.data);
          navigator.serviceWorker.controller.postMessage(message, [channel.port2, ...transfer]);
        });
        /** Bytes in hex, to compare in the page. */
        window.hexOf = async (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
      });
    });

    test("a preview answers a Range from the middle of a video after fetching only the records that hold it", async () => {
      const { link } = await page.evaluate(() => put(20 * 1024 * 1024 + 7, "clip.mp4", "video/mp4"));
      const opened = await page.evaluate((link) => tell({ type: "preview", id: "clip", link }), link);
      assert.deepEqual(opened, { ok: true });
      stack.proxy.resetLog();
      // 200 bytes across the boundary of records 10 and 11.
      const start = 11 * MiB - 100;
      const got = await page.evaluate(async (start) => {
        const res = await fetch("/preview/clip", { headers: { Range: `bytes=${start}-${start + 199}` } });
        const body = new Uint8Array(await res.arrayBuffer());
        const expected = new Uint8Array(await files["clip.mp4"].slice(start, start + 200).arrayBuffer());
        return {
          status: res.status, type: res.headers.get("content-type"), range: res.headers.get("content-range"),
          csp: res.headers.get("content-security-policy"), same: (await hexOf(body)) === (await hexOf(expected)),
        };
      }, start);
      assert.equal(got.status, 206);
      assert.equal(got.type, "video/mp4");
      assert.equal(got.range, `bytes ${start}-${start + 199}/${20 * MiB + 7}`);
      assert.match(got.csp, /sandbox/);
      assert.ok(got.same, "the plaintext of exactly those bytes");
      const sealedRecord = MiB + TAG;
      assert.deepEqual(objectRanges(), [[10 * sealedRecord, 12 * sealedRecord - 1]], "one GET of records 10 and 11, nothing else");

      // A suffix range reads the last record only.
      stack.proxy.resetLog();
      const tail = await page.evaluate(async () => {
        const res = await fetch("/preview/clip", { headers: { Range: "bytes=-7" } });
        const body = new Uint8Array(await res.arrayBuffer());
        const file = files["clip.mp4"];
        const expected = new Uint8Array(await file.slice(file.size - 7).arrayBuffer());
        return { status: res.status, same: (await hexOf(body)) === (await hexOf(expected)) };
      });
      assert.deepEqual(tail, { status: 206, same: true });
      assert.deepEqual(objectRanges(), [[20 * sealedRecord, 20 * sealedRecord + 7 + TAG - 1]]);
      assert.deepEqual(await page.evaluate(() => tell({ type: "forget", id: "clip" })), { ok: true });
      assert.equal(await page.evaluate(async () => (await fetch("/preview/clip", { headers: { Range: "bytes=0-1" } })).status), 404);
    });

    test("a preview without Range answers the whole file, piece by piece; a Range past the end is 416", async () => {
      const size = 9 * MiB + 5; // two 8 MiB reads
      const { link, sha256: digest } = await page.evaluate((size) => put(size, "pic.png", "image/png"), size);
      const got = await page.evaluate(async (link) => {
        await tell({ type: "preview", id: "pic", link });
        const res = await fetch("/preview/pic");
        const whole = { status: res.status, length: res.headers.get("content-length"), sha256: await sha256(await res.blob()) };
        const past = await fetch("/preview/pic", { headers: { Range: `bytes=${files["pic.png"].size}-` } });
        await tell({ type: "forget", id: "pic" });
        return { whole, past: { status: past.status, range: past.headers.get("content-range") } };
      }, link);
      assert.deepEqual(got.whole, { status: 200, length: String(size), sha256: digest });
      assert.deepEqual(got.past, { status: 416, range: `bytes */${size}` });
    });

    test("types that could run in the page are not previewed", async () => {
      for (const type of ["text/html", "image/svg+xml"]) {
        const { link } = await page.evaluate((type) => put(100, "page", type), type);
        const got = await page.evaluate(async (link) => {
          await tell({ type: "preview", id: "unsafe", link });
          const res = await fetch("/preview/unsafe", { headers: { Range: "bytes=0-9" } });
          await tell({ type: "forget", id: "unsafe" });
          return { status: res.status, code: (await res.json()).error.code };
        }, link);
        assert.deepEqual(got, { status: 415, code: "not_previewable" }, type);
      }
    });

    test("without File System Access, the download streams through the service worker to a navigation", async () => {
      const { link, sha256: digest } = await page.evaluate(() => put(9 * 1024 * 1024 + 11, "notes é.bin", "application/x-test"));
      const got = await page.evaluate(async (link) => {
        const { readable, writable } = new TransformStream();
        let saved;
        const done = outcome(sealdrop.download(link, {
          writable,
          onMetadata: (info) => {
            saved = tell({ type: "save", id: "s1", name: info.name, size: info.size, readable }, [readable]).then(async (answer) => {
              // What a navigation to /save/s1 gets (fetched here, so the test can read it).
              const res = await fetch("/save/s1");
              return {
                answer, status: res.status, disposition: res.headers.get("content-disposition"),
                length: res.headers.get("content-length"), sha256: await sha256(await res.blob()),
              };
            });
          },
        }));
        const d = await done;
        return { d: { ok: d.ok, blob: d.value?.blob, message: d.message }, saved: await saved };
      }, link);
      assert.ok(got.d.ok, got.d.message);
      assert.equal(got.d.blob, null);
      assert.deepEqual(got.saved.answer, { ok: true });
      assert.equal(got.saved.status, 200);
      assert.equal(got.saved.disposition, "attachment; filename*=UTF-8''notes%20%C3%A9.bin");
      assert.equal(Number(got.saved.length), 9 * MiB + 11);
      assert.equal(got.saved.sha256, digest, "byte-identical");
    });
  });
});
