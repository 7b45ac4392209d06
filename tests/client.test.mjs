// The browser client (@sealdrop/client, the wasm build in web/pkg) on its own terms, in
// headless Chromium against the real worker: progress events, the Upload handle and
// cancel, links and keys, the options, concurrency, retries and error codes. Faults
// at the storage side (stalls, Retry-After, busy sessions, attempts running out,
// pause, cancel), once per provider through the fault proxy, are
// tests/faults.test.mjs.
//
// Two ways to see and steer requests on top of the real worker: the page's `fetch` is
// wrapped (the client looks `fetch` up at each call) for the JSON calls and ranged
// GETs (a flipped ciphertext byte, short, long or mislabelled ranges, a tampered file
// record), and part PUTs, which the client sends with XMLHttpRequest, go through
// Playwright routing (tests/support/puts.mjs: count them by part, answer 403/500/503,
// fail, or hold them unanswered). Resuming after a reload or a killed browser is
// tests/resume.test.mjs; the full upload/download/privacy suite is
// tests/transfer.test.mjs.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, beforeEach, describe, test } from "node:test";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { addPageHelpers } from "./support/page-helpers.mjs";
import { watchPuts } from "./support/puts.mjs";
import { startServer } from "./support/server.mjs";

const MiB = 1024 * 1024;

let server;
let browser;
let page;
/** The part PUTs of `page` (tests/support/puts.mjs). */
let puts;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
  page = await openClientPage(browser, server.url);
  puts = await watchPuts(page);
  await addPageHelpers(page);
  await page.evaluate(() => {
    /** Uploads `blob` in ~5 MiB parts while faults are injected, then downloads it,
     *  and tells whether the bytes survived and how often part URLs were asked for. */
    window.uploadThroughInjectedFaults = async (blob, options = {}) => {
      const up = await outcome(new sealdrop.Uploader({ partSize: 5 * 1024 * 1024 + 80, ...options }).upload(blob));
      const down = up.ok ? await sealdrop.download(up.value.link) : null;
      return {
        up,
        same: down ? (await sha256(down.blob)) === (await sha256(blob)) : false,
        partUrlCalls: net.log.filter((e) => e.path.endsWith("/part-urls")).length,
      };
    };

    // The fetch wrapper: a log of every request, and hooks.
    const realFetch = window.fetch.bind(window);
    const net = {
      log: [],
      before: null, // (entry, init) => Response | undefined; may throw
      after: null, // (entry, response) => Response | undefined
      reset() {
        Object.assign(net, { log: [], before: null, after: null });
      },
    };
    window.net = net;
    window.fetch = async (input, init = {}) => {
      const url = new URL(String(input), location.href);
      const headers = new Headers(init.headers);
      const entry = {
        method: (init.method ?? "GET").toUpperCase(),
        path: url.pathname,
        range: headers.get("range"),
        at: performance.now(),
      };
      net.log.push(entry);
      const injected = await net.before?.(entry, init);
      if (injected) return injected;
      const res = await realFetch(input, init);
      return (await net.after?.(entry, res)) ?? res;
    };
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

beforeEach(async () => {
  puts.reset();
  await page.evaluate(() => window.net.reset());
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Uploads a random file of `size` bytes in the page; returns the events and result. */
async function uploadInPage(size, uploaderOptions = {}, name = "file.bin") {
  return page.evaluate(async ([size, options, name]) => {
    const blob = randomBlob(size);
    const file = new File([blob], name, { type: "application/x-test" });
    const events = [];
    const upload = new sealdrop.Uploader(options).upload(file, {
      onProgress: (p) => events.push(p),
    });
    const result = await outcome(upload);
    window.lastFile = file;
    return { result, events, backend: upload.cipherBackend, sha256: await sha256(file) };
  }, [size, uploaderOptions, name]);
}

describe("progress events", () => {
  const KEYS = ["bytesDone", "bytesTotal", "cipherBackend", "cipherWorkers", "concurrency", "eta", "partSize", "partsDone", "partsTotal", "speed"];

  function checkEvents(events, size, partsTotal) {
    assert.ok(events.length >= 2, `at least a first and a last event, got ${events.length}`);
    for (const [i, e] of events.entries()) {
      assert.deepEqual(Object.keys(e).sort(), KEYS, "exactly the documented fields");
      assert.equal(e.bytesTotal, size);
      assert.equal(e.partsTotal, partsTotal);
      // The test page is on localhost, a secure context: WebCrypto does the AES.
      assert.equal(e.cipherBackend, "webcrypto");
      // Two dedicated workers seal or open the records, off the page's main thread.
      assert.equal(e.cipherWorkers, 2, "the default pool of cipher workers");
      assert.ok(Number.isSafeInteger(e.bytesDone) && e.bytesDone >= 0 && e.bytesDone <= size);
      assert.ok(Number.isSafeInteger(e.partsDone) && e.partsDone >= 0 && e.partsDone <= partsTotal);
      assert.ok(Number.isFinite(e.speed) && e.speed >= 0);
      assert.ok(e.eta === null || (Number.isSafeInteger(e.eta) && e.eta >= 0));
      // The adaptive limit, within 1 and the default ceiling (6).
      assert.ok(Number.isSafeInteger(e.concurrency) && e.concurrency >= 1 && e.concurrency <= 6, `${e.concurrency}`);
      assert.equal(e.partSize, events[0].partSize, "the part size is fixed for the upload");
      assert.ok(Number.isSafeInteger(e.partSize) && e.partSize > 0);
      if (i > 0) {
        assert.ok(e.bytesDone >= events[i - 1].bytesDone, "bytesDone never goes back");
        assert.ok(e.partsDone >= events[i - 1].partsDone, "partsDone never goes back");
      }
    }
    assert.equal(events[0].bytesDone, 0, "the first event is at the start");
    assert.equal(events[0].partsDone, 0);
    assert.equal(events.at(-1).bytesDone, size, "the last event is at 100%");
    assert.equal(events.at(-1).partsDone, partsTotal);
    assert.equal(events.at(-1).eta, 0);
  }

  test("a 0-byte file: a start and an end event, both 0 of 0", async () => {
    const { result, events } = await uploadInPage(0);
    assert.ok(result.ok, result.message);
    assert.equal(result.value.size, 0);
    checkEvents(events, 0, 1);
  });

  test("three parts: one event per part, in order, monotonic", async () => {
    const size = 11 * MiB + 3; // 5 MiB parts (the storage minimum): 3 parts
    const { result, events, backend } = await uploadInPage(size, { partSize: 5 * MiB + 80 });
    assert.ok(result.ok, result.message);
    checkEvents(events, size, 3);
    assert.equal(backend, "webcrypto", "upload.cipherBackend names the backend too");
    const perPart = events.map((e) => e.partsDone).filter((n, i, all) => n !== all[i - 1]);
    assert.deepEqual(perPart, [0, 1, 2, 3], "an event after each part");
  });

  test("download progress has the same shape and ends at 100%", async () => {
    const size = 3 * MiB + 5;
    const { result } = await uploadInPage(size);
    assert.ok(result.ok, result.message);
    const events = await page.evaluate(async (link) => {
      const events = [];
      await sealdrop.download(link, { onProgress: (p) => events.push(p) });
      return events;
    }, result.value.link);
    checkEvents(events, size, 1);
  });
});

describe("round trips", () => {
  // Odd record sizes and several parts exercise record and part boundaries.
  for (const [label, size, options] of [
    ["1 byte", 1, {}],
    ["1 MiB + 1 byte", MiB + 1, {}],
    ["record size 1000, 3 parts", 11 * MiB + 7, { recordSize: 1000, partSize: 5 * MiB, concurrency: 2 }],
    ["record size 16 MiB", 16 * MiB + 1, { recordSize: 16 * MiB }],
  ]) {
    test(`${label}: downloads byte-identical, with name and type`, async () => {
      const { result, sha256 } = await uploadInPage(size, options, `round ${label}.bin`);
      assert.ok(result.ok, result.message);
      const got = await page.evaluate(async (link) => {
        const d = await sealdrop.download(link, { concurrency: 3 });
        return { name: d.name, type: d.type, size: d.size, blobSize: d.blob.size, blobType: d.blob.type, sha256: await sha256(d.blob) };
      }, result.value.link);
      assert.deepEqual(got, {
        name: `round ${label}.bin`, type: "application/x-test", size, blobSize: size,
        blobType: "application/x-test", sha256,
      });
    });
  }

  test("name and type options override the file's, and a plain Blob works", async () => {
    const got = await page.evaluate(async () => {
      const up = await new sealdrop.Uploader().upload(randomBlob(100), { name: "notes 📝.txt", type: "text/plain" });
      const d = await sealdrop.download(up.link);
      return { name: d.name, type: d.type, size: d.size };
    });
    assert.deepEqual(got, { name: "notes 📝.txt", type: "text/plain", size: 100 });
  });
});

describe("cancel with an AbortSignal", () => {
  test("mid-upload: rejects with code cancelled, stops sending and deletes the upload", async () => {
    // The signal fires while the first part is on its way (held unanswered).
    puts.handler = (put, route) => puts.hold(route);
    const started = page.evaluate(async () => {
      window.controller = new AbortController();
      let created;
      net.after = async (entry, res) => {
        if (entry.method === "POST" && entry.path === "/api/uploads") created = await res.clone().json();
      };
      const result = await outcome(new sealdrop.Uploader({ partSize: 5 * 1024 * 1024, concurrency: 1 }).upload(
        randomBlob(20 * 1024 * 1024), { signal: controller.signal }));
      const logAtReject = net.log.length;
      await new Promise((r) => setTimeout(r, 1000));
      return { result, created, log: net.log, logAtReject };
    });
    await puts.until((log) => log.length === 1);
    await page.evaluate(() => controller.abort());
    const got = await started;
    assert.equal(got.result.ok, false);
    assert.equal(got.result.code, "cancelled");
    assert.equal(got.result.name, "SealdropError");
    assert.ok(got.result.isError, "rejects with an Error");
    assert.equal(got.log.length, got.logAtReject, "no request after the rejection");
    assert.deepEqual(puts.parts(), [1], "no part after the first");
    await puts.until((log) => log[0].outcome !== "pending");
    assert.equal(puts.log[0].outcome, "failed", "the part in flight was aborted");
    const del = got.log.filter((e) => e.method === "DELETE");
    assert.deepEqual(del.map((e) => e.path), [`/api/uploads/${got.created.fileId}`], "the upload is deleted");
    const status = await fetch(`${server.url}/api/uploads/${got.created.fileId}`, {
      headers: { authorization: `Bearer ${got.created.ownerToken}` },
    });
    assert.equal((await status.json()).state, "aborted");
  });

  test("an already aborted signal: cancelled before any request", async () => {
    const got = await page.evaluate(async () => {
      const result = await outcome(new sealdrop.Uploader().upload(randomBlob(10), { signal: AbortSignal.abort() }));
      return { result, requests: net.log.length };
    });
    assert.equal(got.result.code, "cancelled");
    assert.equal(got.requests, 0);
  });

  test("mid-download: rejects with code cancelled", async () => {
    const { result } = await uploadInPage(20 * MiB);
    assert.ok(result.ok, result.message);
    const got = await page.evaluate(async (link) => {
      const controller = new AbortController();
      net.before = (entry) => {
        if (entry.range) controller.abort();
      };
      return outcome(sealdrop.download(link, { signal: controller.signal }));
    }, result.value.link);
    assert.equal(got.code, "cancelled");
  });
});

describe("links and keys", () => {
  test("malformed links are refused with invalid_link, before any request", async () => {
    const { result } = await uploadInPage(10);
    const link = result.value.link;
    const [head, key] = link.split("#");
    const token = head.split("/s/")[1];
    const bad = [
      "", "nonsense", head, `${head}#`, `${head}#k2.${key.slice(3)}`, `${head}#${key.slice(0, -1)}`,
      `${head}#${key}A`, `${head.replace("/s/", "/f/")}#${key}`, `${head}x#${key}`,
      `ftp://example/s/${token}#${key}`, `/s/${token}#${key}`,
    ];
    const got = await page.evaluate(async (bad) => {
      net.reset();
      const codes = [];
      for (const link of bad) codes.push((await outcome(sealdrop.download(link))).code);
      codes.push((await outcome(sealdrop.download(42))).code);
      return { codes, requests: net.log.length };
    }, bad);
    assert.deepEqual(got.codes, [...bad, 42].map(() => "invalid_link"));
    assert.equal(got.requests, 0);
  });

  test("a wrong key: key_commitment_failed, and no content is fetched", async () => {
    const { result } = await uploadInPage(2 * MiB);
    const [head] = result.value.link.split("#");
    const wrong = `${head}#k1.${Buffer.alloc(32, 7).toString("base64url")}`;
    const got = await page.evaluate(async (link) => {
      net.reset();
      const r = await outcome(sealdrop.download(link, { onMetadata: () => { throw new Error("no metadata for a wrong key"); } }));
      return { r, ranges: net.log.filter((e) => e.range).length };
    }, wrong);
    assert.equal(got.r.ok, false);
    assert.equal(got.r.code, "key_commitment_failed");
    assert.equal(got.ranges, 0, "no content request");
  });

  test("a flipped ciphertext byte: record_auth_failed naming the record, no data", async () => {
    const { result } = await uploadInPage(3 * MiB + 5);
    const got = await page.evaluate(async (link) => {
      const sealed = 1024 * 1024 + 16;
      net.after = async (entry, res) => {
        if (!entry.range) return undefined;
        const bytes = new Uint8Array(await res.arrayBuffer());
        const start = Number(entry.range.match(/bytes=(\d+)-/)[1]);
        const target = 2 * sealed + 100 - start; // a byte of record 2
        if (target >= 0 && target < bytes.length) bytes[target] ^= 1;
        return new Response(bytes, { status: res.status, headers: res.headers });
      };
      return outcome(sealdrop.download(link));
    }, result.value.link);
    assert.equal(got.ok, false);
    assert.equal(got.code, "record_auth_failed");
    assert.equal(got.record, 2);
  });

  test("an unknown share: share_not_found with status 404", async () => {
    const { result } = await uploadInPage(1);
    const token = new URL(result.value.link).pathname.slice(3);
    const link = result.value.link.replace(token, "A".repeat(32));
    const got = await page.evaluate((link) => outcome(sealdrop.download(link)), link);
    assert.equal(got.code, "share_not_found");
    assert.equal(got.status, 404);
  });
});

describe("options", () => {
  test("out-of-range options throw invalid_option from the constructor", async () => {
    const codes = await page.evaluate(() => {
      const bad = [
        { concurrency: 0 }, { concurrency: 17 }, { concurrency: 1.5 }, { concurrency: "4" },
        { recordSize: 8 }, { recordSize: 16 * 1024 * 1024 + 1 }, { maxAttempts: 0 },
        { partSize: -1 }, { endpoint: "ftp://example" }, { endpoint: 7 }, "not an object",
      ];
      return bad.map((options) => {
        try {
          new sealdrop.Uploader(options);
          return "accepted";
        } catch (e) {
          return e.code;
        }
      });
    });
    assert.deepEqual(codes, Array(11).fill("invalid_option"));
  });

  test("upload needs a Blob; download options are checked too", async () => {
    const got = await page.evaluate(async () => [
      (await outcome(new sealdrop.Uploader().upload("not a file"))).code,
      (await outcome(new sealdrop.Uploader().upload(new Blob([]), { onProgress: 5 }))).code,
      (await outcome(new sealdrop.Uploader().upload(new Blob([]), { signal: {} }))).code,
      (await outcome(sealdrop.download("http://x/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA#k1.", { concurrency: 99 }))).code,
    ]);
    assert.deepEqual(got, ["invalid_option", "invalid_option", "invalid_option", "invalid_option"]);
  });

  for (const concurrency of [1, 3]) {
    // The adaptive limit starts at 2 and probes 3 once the first two parts are done, so
    // a ceiling of 3 is reached within 6 parts.
    test(`concurrency ${concurrency}: exactly that many PUTs in flight at most`, async () => {
      // Hold each PUT a moment before it goes on, so that they overlap.
      puts.handler = async () => {
        await sleep(300);
        return false;
      };
      const { result } = await uploadInPage(30 * MiB, { concurrency, partSize: 5 * MiB + 80 });
      assert.ok(result.ok, result.message);
      assert.deepEqual(puts.countByPart(), { 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1 });
      assert.equal(puts.maxInFlight, concurrency);
    });
  }
});

describe("retries", () => {
  test("a network error and an expired URL are retried; the file arrives intact", async () => {
    const size = 11 * MiB;
    let n = 0;
    puts.handler = (put, route) => {
      n += 1;
      if (n === 1) return puts.fail(route);
      if (n === 2) {
        return puts.answer(route, 403, {
          body: JSON.stringify({ error: { code: "token_expired", message: "injected" } }),
          headers: { "content-type": "application/json" },
        });
      }
      return false;
    };
    const got = await page.evaluate((size) => uploadThroughInjectedFaults(randomBlob(size)), size);
    assert.ok(got.up.ok, got.up.message);
    assert.ok(got.same, "downloaded byte-identical");
    assert.equal(puts.log.length, 3 + 2, "3 parts, one retried after a network error, one re-sent after re-signing");
    assert.equal(got.partUrlCalls, 2, "one batch, then a fresh URL for the expired one");
  });

  test("a part storage does not hold is sent again when complete answers parts_missing", async () => {
    // Part 2's first PUT is answered 200 with an ETag by someone other than storage
    // (as a broken proxy might): storage never got it, so complete refuses.
    const etag = '"never-stored"';
    puts.handler = (put, route) => (put.part === 2 && put.nth === 1
      ? puts.answer(route, 200, { body: JSON.stringify({ etag }), headers: { etag, "content-type": "application/json" } })
      : false);
    const got = await page.evaluate(async () => {
      const r = await uploadThroughInjectedFaults(randomBlob(11 * 1024 * 1024));
      return { ...r, completes: net.log.filter((e) => e.method === "POST" && e.path.startsWith("/api/uploads/") && e.path.endsWith("/complete")).length };
    });
    assert.ok(got.up.ok, got.up.message);
    assert.ok(got.same, "downloaded byte-identical");
    assert.deepEqual(puts.countByPart(), { 1: 1, 2: 2, 3: 1 }, "only the part storage lacked, once more");
    assert.equal(got.completes, 2, "refused once (parts_missing), then completed");
  });

  test("an error that cannot be retried fails at once with its own code, and deletes nothing", async () => {
    puts.handler = (put, route) => puts.answer(route, 400, {
      body: JSON.stringify({ error: { code: "part_size_mismatch", message: "injected" } }),
      headers: { "content-type": "application/json" },
    });
    const got = await page.evaluate(async () => {
      const up = new sealdrop.Uploader().upload(randomBlob(1000));
      const r = await outcome(up);
      return { r, state: up.state, error: up.error?.code, deletes: net.log.filter((e) => e.method === "DELETE").length };
    });
    assert.equal(got.r.code, "part_size_mismatch");
    assert.equal(got.r.status, 400);
    assert.equal(got.state, "failed");
    assert.equal(got.error, "part_size_mismatch");
    assert.equal(got.deletes, 0, "a failed upload is not deleted on the server");
    assert.equal(puts.log.length, 1);
  });
});

describe("idempotent create", () => {
  test("a create whose answer is lost is sent again and reaches the same upload", async () => {
    const got = await page.evaluate(async () => {
      let first;
      net.after = async (entry, res) => {
        if (entry.method !== "POST" || entry.path !== "/api/uploads" || first) return undefined;
        first = await res.clone().json();
        throw new TypeError("Failed to fetch (injected: the answer was lost)");
      };
      const r = await outcome(new sealdrop.Uploader().upload(randomBlob(1000)));
      return { r, first, creates: net.log.filter((e) => e.method === "POST" && e.path === "/api/uploads").length };
    });
    assert.ok(got.r.ok, got.r.message);
    assert.equal(got.creates, 2);
    assert.equal(got.r.value.fileId, got.first.fileId, "the retried create answered the same upload");
  });

  test("a cancel before the create answered deletes the upload the create made", async () => {
    const got = await page.evaluate(async () => {
      let made;
      let hold = true;
      net.after = async (entry, res) => {
        if (entry.method !== "POST" || entry.path !== "/api/uploads" || !hold) return undefined;
        hold = false;
        made = await res.clone().json();
        return new Promise(() => {}); // this answer never arrives
      };
      const up = new sealdrop.Uploader().upload(randomBlob(1000));
      while (!made) await new Promise((r) => setTimeout(r, 20));
      await up.cancel();
      return {
        r: await outcome(up), made,
        creates: net.log.filter((e) => e.method === "POST" && e.path === "/api/uploads").length,
        deletes: net.log.filter((e) => e.method === "DELETE").map((e) => e.path),
      };
    });
    assert.equal(got.r.code, "cancelled");
    assert.equal(got.creates, 2, "the create was sent again to learn the upload");
    assert.deepEqual(got.deletes, [`/api/uploads/${got.made.fileId}`]);
    const status = await fetch(`${server.url}/api/uploads/${got.made.fileId}`, {
      headers: { authorization: `Bearer ${got.made.ownerToken}` },
    });
    assert.equal((await status.json()).state, "aborted", "no orphan session is left");
  });
});

describe("the Upload handle", () => {
  /** Starts a 4-part upload in the page as `window.up`, recording its states. */
  function startUpload(options = {}) {
    return page.evaluate((options) => {
      window.states = [];
      window.blob = randomBlob(20 * 1024 * 1024 - 3); // 4 parts of 5 records
      window.up = new sealdrop.Uploader({ concurrency: 1, partSize: 5 * 1024 * 1024 + 80, ...options }).upload(blob, {
        onStateChange: (state, error) => states.push([state, error?.code ?? null]),
      });
      window.settled = outcome(up);
      net.after = async (entry, res) => {
        if (entry.method === "POST" && entry.path === "/api/uploads") window.created = await res.clone().json();
        return undefined;
      };
    }, options);
  }

  test("cancel of a failed upload deletes its session; cancel of a done one does nothing", async () => {
    puts.handler = (put, route) => puts.answer(route, 409, {
      body: JSON.stringify({ error: { code: "part_size_mismatch", message: "injected" } }),
      headers: { "content-type": "application/json" },
    });
    await startUpload();
    const failed = await page.evaluate(async () => {
      const r = await settled;
      const state = up.state;
      await up.cancel();
      return { r, state, after: up.state, created, deletes: net.log.filter((e) => e.method === "DELETE").length };
    });
    assert.equal(failed.r.code, "part_size_mismatch");
    assert.equal(failed.state, "failed");
    assert.equal(failed.after, "cancelled");
    assert.equal(failed.deletes, 1);
    puts.handler = null;
    const done = await page.evaluate(async () => {
      net.reset();
      const up = new sealdrop.Uploader().upload(randomBlob(10));
      const r = await up;
      await up.cancel();
      return { state: up.state, deletes: net.log.filter((e) => e.method === "DELETE").length, link: r.link };
    });
    assert.equal(done.state, "done");
    assert.equal(done.deletes, 0);
  });

  test("an Upload is awaitable and its state follows the upload", async () => {
    const got = await page.evaluate(async () => {
      const up = new sealdrop.Uploader().upload(randomBlob(10), { name: "n.txt" });
      const first = up.state;
      const thenable = typeof up.then === "function";
      const result = await up;
      const again = await up; // awaiting twice gives the same result
      return { first, thenable, keys: Object.keys(result).sort(), same: result.link === again.link, state: up.state, error: up.error };
    });
    assert.deepEqual(got, { first: "starting", thenable: true, keys: ["fileId", "link", "ownerToken", "size"], same: true, state: "done", error: null });
  });
});

describe("a lying or failing server", () => {
  // 1 MiB records, 8 MiB ranges: 7 records per range, so 10 MiB is 2 ranges and the
  // last one (records 7..9) starts at 7 sealed records.
  const SEALED = MiB + 16;
  const size = 10 * MiB;
  let link;

  before(async () => {
    await page.evaluate(() => window.net.reset()); // beforeEach runs after this hook
    const { result } = await uploadInPage(size);
    assert.ok(result.ok, result.message);
    link = result.value.link;
  });

  /** Downloads `link` with `net.after` answering the last range with `answer(bytes, res)`. */
  function downloadWithLastRange(answer) {
    return page.evaluate(async ([link, lastStart, answer]) => {
      const rewrite = new Function("bytes", "res", `return (${answer})(bytes, res);`);
      net.after = async (entry, res) => {
        if (!entry.range?.startsWith(`bytes=${lastStart}-`)) return undefined;
        return rewrite(new Uint8Array(await res.arrayBuffer()), res);
      };
      const r = await outcome(sealdrop.download(link));
      return { ...r, value: undefined, blob: r.ok ? r.value.blob.size : null };
    }, [link, 7 * SEALED, answer.toString()]);
  }

  test("the last range answered short: truncated at the first missing record, no blob", async () => {
    for (const answer of [
      (bytes) => new Response(bytes.subarray(0, bytes.length - 100), { status: 206 }),
      // The real headers (the full Content-Length), but the body ends early.
      (bytes, res) => new Response(bytes.subarray(0, bytes.length - 100), { status: 206, headers: res.headers }),
    ]) {
      const got = await downloadWithLastRange(answer);
      assert.equal(got.ok, false);
      assert.equal(got.code, "truncated", got.message);
      assert.equal(got.record, 9, "the last record is the one cut");
      assert.equal(got.blob, null);
    }
  });

  test("a range answered longer than asked: invalid_response", async () => {
    for (const answer of [
      // Longer body, the asked-for Content-Length: caught after reading.
      (bytes, res) => new Response(new Uint8Array([...bytes, 1, 2, 3]), { status: 206, headers: res.headers }),
      // A declared longer length: caught before reading.
      (bytes) => new Response(new Uint8Array([...bytes, 1, 2, 3]), {
        status: 206, headers: { "content-length": String(bytes.length + 3) },
      }),
      // An endless body declaring a terabyte: refused before a byte of it is read
      // (reading it would never finish).
      () => new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(65536)) }), {
        status: 206, headers: { "content-length": String(2 ** 40) },
      }),
      // Another Content-Range than the one asked for.
      (bytes, res) => new Response(bytes, {
        status: 206, headers: { "content-range": res.headers.get("content-range").replace(/^bytes \d+/, "bytes 0") },
      }),
    ]) {
      const got = await downloadWithLastRange(answer);
      assert.equal(got.ok, false);
      assert.equal(got.code, "invalid_response", got.message);
      assert.equal(got.blob, null);
    }
  });

  test("a tampered ciphertextSize is invalid_response, a huge one too, and the page survives", async () => {
    const results = await page.evaluate(async (link) => {
      const results = [];
      for (const tamper of [
        (r) => ({ ...r, ciphertextSize: r.ciphertextSize + 1 }),
        (r) => ({ ...r, ciphertextSize: r.ciphertextSize - 16 }),
        (r) => ({ ...r, ciphertextSize: 2 ** 53 - 1 }),
        // Huge but self-consistent (2^52 plaintext bytes in 1 MiB records): the shape
        // that once made the client allocate ~2^30 range slots and trap.
        (r) => ({ ...r, plaintextSize: 2 ** 52, ciphertextSize: 2 ** 52 + 16 * 2 ** 32 }),
      ]) {
        net.reset();
        net.after = async (entry, res) => {
          // The file record comes with the download opened on the link's share.
          if (entry.method !== "POST" || !/^\/api\/shares\/[^/]+\/downloads$/.test(entry.path)) return undefined;
          const opened = await res.json();
          const record = tamper(opened.file);
          return new Response(JSON.stringify({ ...opened, file: record }), { status: 201, headers: { "content-type": "application/json" } });
        };
        const r = await outcome(sealdrop.download(link));
        results.push({ ok: r.ok, code: r.code, message: r.message, ranges: net.log.filter((e) => e.range).length });
      }
      net.reset();
      const d = await outcome(sealdrop.download(link));
      results.push({ ok: d.ok, code: d.code, size: d.ok ? d.value.blob.size : null });
      return results;
    }, link);
    for (const r of results.slice(0, -1)) {
      assert.equal(r.ok, false);
      assert.equal(r.code, "invalid_response", r.message);
      assert.equal(r.ranges, 0, "no content is fetched");
    }
    assert.deepEqual(results.at(-1), { ok: true, code: undefined, size }, "the page still downloads");
  });

  test("a ranged GET refused once with an XML 403: a fresh URL, then the file", async () => {
    const got = await page.evaluate(async (link) => {
      let refused = 0;
      net.before = (entry) => {
        if (!entry.range || refused++ > 0) return undefined;
        return new Response('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
          + "<Message>Request has expired</Message></Error>", { status: 403, headers: { "content-type": "application/xml" } });
      };
      const r = await outcome(sealdrop.download(link));
      return {
        ok: r.ok, message: r.message, size: r.ok ? r.value.blob.size : null,
        records: net.log.filter((e) => /\/downloads(\/[^/]+\/url)?$/.test(e.path)).length,
        ranges: net.log.filter((e) => e.range).length,
      };
    }, link);
    assert.ok(got.ok, got.message);
    assert.equal(got.size, size);
    assert.equal(got.records, 2, "the download opened, then a fresh URL for it");
    assert.equal(got.ranges, 3, "2 ranges, one sent again");
  });
});

describe("re-signing and re-sealing parts", () => {
  const xml403 = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    + "<Message>Request has expired</Message></Error>";
  const refuse = (route) => puts.answer(route, 403, { body: xml403, headers: { "content-type": "application/xml" } });

  test("a part PUT refused once with an XML 403 (a presigned URL expired): a fresh URL, then success", async () => {
    puts.handler = (put, route) => (puts.log.length === 1 ? refuse(route) : false);
    const got = await page.evaluate(() => uploadThroughInjectedFaults(randomBlob(11 * 1024 * 1024)));
    assert.ok(got.up.ok, got.up.message);
    assert.ok(got.same, "downloaded byte-identical");
    assert.equal(puts.log.length, 3 + 1, "3 parts, one sent again with its fresh URL");
    assert.equal(got.partUrlCalls, 2, "one batch, then a fresh URL for the refused one");
  });

  test("a second 403 with the fresh URL fails with the 403", async () => {
    puts.handler = (put, route) => refuse(route);
    const got = await page.evaluate(async () => {
      const r = await outcome(new sealdrop.Uploader().upload(randomBlob(1000)));
      return { r, partUrlCalls: net.log.filter((e) => e.path.endsWith("/part-urls")).length };
    });
    assert.equal(got.r.code, "http_403");
    assert.equal(got.r.status, 403);
    assert.equal(puts.log.length, 2);
    assert.equal(got.partUrlCalls, 2);
  });

  // A Blob whose bytes can be swapped between reads: the client reads through
  // `file.slice()`, as it would a File changed on disk (which headless Chromium cannot
  // simulate). The part's retry re-reads and re-seals it under the same nonces.
  for (const change of [false, true]) {
    test(change
      ? "a part retried after the file changed is never sent again: file_changed"
      : "a part retried over unchanged bytes is re-sealed identically and sent", async () => {
      await page.evaluate(() => {
        const first = randomBlob(3000);
        const second = randomBlob(3000);
        window.current = first;
        window.swap = () => { window.current = second; };
        class ChangingBlob extends Blob {
          slice(start, end) { return window.current.slice(start, end); }
        }
        window.changing = new ChangingBlob([first]);
      });
      const bodies = [];
      puts.handler = async (put, route) => {
        bodies.push(createHash("sha256").update(route.request().postDataBuffer() ?? Buffer.alloc(0)).digest("hex"));
        if (bodies.length > 1) return false;
        if (change) await page.evaluate(() => swap());
        return puts.answer(route, 500);
      };
      const got = await page.evaluate(async () => {
        // In the page (workers: 0): the Blob subclass's slice() that stands in for a
        // file changing on disk exists only here; a cipher worker gets a plain Blob.
        const up = new sealdrop.Uploader({ persist: false, workers: 0 }).upload(changing);
        const r = await outcome(up);
        return { r, state: up.state, deletes: net.log.filter((e) => e.method === "DELETE").length };
      });
      if (change) {
        assert.equal(got.r.ok, false);
        assert.equal(got.r.code, "file_changed");
        assert.match(got.r.message, /reads differently/);
        assert.equal(got.state, "failed");
        assert.equal(bodies.length, 1, "the second ciphertext never left the page");
        assert.equal(got.deletes, 0, "a failed upload is not deleted on the server");
      } else {
        assert.ok(got.r.ok, got.r.message);
        assert.equal(bodies.length, 2);
        assert.equal(bodies[0], bodies[1], "the same ciphertext, byte for byte");
      }
    });
  }
});
