// Adaptive concurrency and part size (docs/API.md, "Adaptive concurrency and part
// size"), once per storage provider, in headless Chromium against the real worker,
// with the fault proxy between the browser and storage:
// - on a link where every part PUT waits 1.5 s before it is forwarded (latency, not
//   bandwidth, is the limit, so more in flight moves more), the limit grows past where
//   it starts and the uploader obeys it: storage sees more PUTs at once, never more
//   than the limit reported. Whether a further probe pays is a judgment on measured
//   throughput, which a loaded machine's CPU can sway: the controller's rules are
//   tested on simulated links in protocol/src/concurrency.rs (a latency-bound link
//   grows to the ceiling there), not here;
// - on a link where a third of the part PUTs fail, it shrinks, the upload still
//   completes byte-identical, and the next upload in this browser asks for the
//   smallest parts storage takes.
// Nothing here is timed: the assertions are on what the client reported
// (`onProgress`'s `concurrency` and `partSize`) and on what the proxy saw.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { addPageHelpers } from "./support/page-helpers.mjs";
import { PROVIDERS, startStack } from "./support/stack.mjs";

const MiB = 1024 * 1024;
/** 5 records of 1 MiB per part, the smallest part storage takes. */
const PART_SIZE = 5 * (MiB + 16);
/** The smallest whole-record part of at least 5 MiB: 5 records of 1 MiB and their tags. */
const SMALLEST_PART = 5 * (MiB + 16);
/** Where the client keeps its link history. */
const HISTORY_KEY = "sealdrop.linkHistory.v1";

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Whether a proxy log entry is a part PUT. */
const isPartPut = (entry) => entry.method === "PUT" && entry.partNumber !== null;

for (const provider of PROVIDERS) describe(`adaptive uploads (${provider})`, () => {
  let stack;
  let page;

  before(async () => {
    // No connection reuse: Chromium cannot resend a failed request unseen.
    stack = await startStack({ provider, keepAlive: false, seed: 14 });
    page = await openClientPage(browser, stack.url);
    await addPageHelpers(page);
    await page.evaluate(() => {
      /**
       * Uploads `size` random bytes with `options`, recording every progress event;
       * downloads the result and compares it.
       */
      window.adaptiveUpload = async (size, options) => {
        const blob = randomBlob(size);
        const events = [];
        const r = await outcome(new sealdrop.Uploader(options).upload(blob, {
          onProgress: (p) => events.push({ concurrency: p.concurrency, partSize: p.partSize }),
        }));
        const d = r.ok ? await sealdrop.download(r.value.link) : null;
        const same = d ? (await sha256(d.blob)) === (await sha256(blob)) : false;
        return { r: { ...r, value: undefined }, same, events };
      };
    });
  });

  after(async () => {
    await page?.close();
    await stack?.stop();
  });

  beforeEach(async () => {
    stack.proxy.clearFaults();
    stack.proxy.resetLog();
    await page.evaluate((key) => localStorage.removeItem(key), HISTORY_KEY);
  });

  test("on a link where latency is the limit, more parts go in flight", async (t) => {
    const delay = stack.proxy.inject({ match: isPartPut, fault: "delay", delayMs: 1500, probability: 1 });
    // The most part PUTs storage saw at once, counted as each arrives (every one is
    // held 1.5 s, so those the uploader started together overlap whatever the CPU).
    let peak = 0;
    const count = (entry) => {
      if (isPartPut(entry)) peak = Math.max(peak, stack.proxy.inFlight({ match: isPartPut }).length);
    };
    stack.proxy.events.on("request", count);
    const got = await page.evaluate(
      ([size, partSize]) => adaptiveUpload(size, { partSize }),
      [12 * 5 * MiB, PART_SIZE],
    ).finally(() => stack.proxy.events.off("request", count));
    assert.ok(got.r.ok, got.r.message);
    assert.ok(got.same, "downloads byte-identical");
    assert.equal(delay.hits, 12, "every part PUT waited");
    const levels = got.events.map((e) => e.concurrency);
    assert.equal(levels[0], 2, "it starts at 2");
    t.diagnostic(`concurrency reported: ${levels.join(" ")}; at most ${peak} PUTs at storage at once`);
    assert.ok(Math.max(...levels) > 2, `it grew: ${levels.join(" ")}`);
    assert.ok(peak > 2, `storage saw more than 2 PUTs at once (${peak})`);
    assert.ok(peak <= Math.max(...levels), `never more PUTs at once (${peak}) than the limit reported`);
    assert.ok(levels.every((n) => n >= 1 && n <= 6), "never above the ceiling");
    assert.ok(got.events.every((e) => e.partSize === PART_SIZE), "the explicit partSize wins");
  });

  test("on a link where a third of the part PUTs fail, fewer go in flight; the next upload takes small parts", async (t) => {
    const failing = stack.proxy.inject({ match: isPartPut, fault: "status", status: 500, probability: 0.33 });
    const got = await page.evaluate(
      ([size, partSize]) => adaptiveUpload(size, { partSize, maxAttempts: 20 }),
      [16 * 5 * MiB, PART_SIZE],
    );
    assert.ok(got.r.ok, got.r.message);
    assert.ok(got.same, "downloads byte-identical");
    assert.ok(failing.hits >= 2, `${failing.hits} PUTs failed`);
    const levels = got.events.map((e) => e.concurrency);
    t.diagnostic(`concurrency reported: ${levels.join(" ")}; ${failing.hits} PUTs failed`);
    const shrank = levels.some((n, i) => i > 0 && n < levels[i - 1]);
    assert.ok(shrank, `it shrank: ${levels.join(" ")}`);
    assert.ok(levels.every((n) => n >= 1 && n <= 6));

    // The history this browser kept says the link is flaky (at least 10% of attempts
    // failed): the next upload, with no partSize of its own, asks for the smallest
    // part (without a history it would have been 16 records).
    const history = await page.evaluate((key) => JSON.parse(localStorage.getItem(key)), HISTORY_KEY);
    const attempts = stack.proxy.requests().filter(isPartPut).length;
    assert.equal(history.uploads, 1);
    assert.equal(history.failurePermille, Math.floor((failing.hits * 1000) / attempts));
    assert.ok(history.failurePermille >= 100, JSON.stringify(history));
    stack.proxy.clearFaults();
    const next = await page.evaluate((size) => adaptiveUpload(size, {}), 20 * MiB);
    assert.ok(next.r.ok, next.r.message);
    assert.ok(next.same);
    assert.ok(next.events.every((e) => e.partSize === SMALLEST_PART), JSON.stringify(next.events[0]));
  });
});
