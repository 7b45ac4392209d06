// The demo app (web/) as a person uses it, in headless Chromium against the real
// worker: the security headers of the page that holds keys, and that the app runs
// under its policy; pause, resume and cancel buttons; the list of unfinished uploads
// after a reload (resume by picking the file again, discard); the leave-page warning
// only for an upload that could not be resumed; and the words shown for a link that is
// not a link, has a short id, or has no key.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { launchBrowser } from "./support/browser.mjs";
import { stubSavePicker } from "./support/page-helpers.mjs";
import { watchPuts } from "./support/puts.mjs";
import { startServer } from "./support/server.mjs";

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), "sealdrop-app-"));

let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A fresh app page at `path`, with CSP violations collected in `page.violations`. */
async function openApp(path = "/") {
  const page = await browser.newPage();
  await stubSavePicker(page);
  page.violations = [];
  await page.exposeFunction("reportViolation", (v) => page.violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.reportViolation(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.goto(`${server.url}${path}`);
  await page.locator("#version[data-state=ready]").waitFor({ timeout: 30_000 });
  return page;
}

function file(name, size) {
  const path = join(work, name);
  writeFileSync(path, randomBytes(size));
  return path;
}

describe("the page that holds keys", () => {
  for (const path of ["/", "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/etc"]) {
    test(`${path} is served with a strict Content-Security-Policy and the usual security headers`, async () => {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type"), /^text\/html/);
      const csp = Object.fromEntries(res.headers.get("content-security-policy").split(";").map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name, values];
      }));
      assert.deepEqual(csp["default-src"], ["'none'"]);
      assert.deepEqual(csp["script-src"], ["'self'", "'wasm-unsafe-eval'"], "no inline script, no eval");
      assert.deepEqual(csp["style-src"], ["'self'"]);
      assert.deepEqual(csp["frame-ancestors"], ["'none'"]);
      assert.deepEqual(csp["base-uri"], ["'none'"]);
      assert.deepEqual(csp["form-action"], ["'none'"]);
      assert.deepEqual(csp["require-trusted-types-for"], ["'script'"]);
      assert.ok(csp["connect-src"].includes("'self'"));
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.equal(res.headers.get("referrer-policy"), "no-referrer");
      assert.equal(res.headers.get("x-frame-options"), "DENY");
      assert.equal(res.headers.get("cross-origin-opener-policy"), "same-origin");
      assert.match(res.headers.get("permissions-policy"), /camera=\(\)/);
      assert.match(res.headers.get("strict-transport-security"), /max-age=\d+/);
      await res.body?.cancel();
    });
  }

  test("the scripts and the wasm client are served under the same headers; _headers itself is not served", async () => {
    for (const path of ["/app.js", "/pkg/sealdrop_client.js", "/pkg/sealdrop_client_bg.wasm"]) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(res.headers.get("cross-origin-resource-policy"), "same-origin", path);
      await res.body?.cancel();
    }
    const rules = await fetch(`${server.url}/_headers`);
    assert.doesNotMatch(await rules.text(), /Content-Security-Policy/, "the SPA page, not the rules");
  });

  test("the app uploads and downloads under its policy without a single violation", async () => {
    const page = await openApp();
    await page.setInputFiles("#file-input", file("policy.bin", 2 * MiB));
    const link = await page.locator("#uploads li.done input").inputValue({ timeout: 60_000 });
    const receiver = await openApp(new URL(link).pathname + new URL(link).hash);
    await receiver.click("#incoming-start", { timeout: 60_000 });
    await receiver.locator("#incoming.done").waitFor({ timeout: 60_000 });
    assert.deepEqual([...page.violations, ...receiver.violations], []);
    await Promise.all([page.close(), receiver.close()]);
  });
});

describe("sending", () => {
  let page;
  let puts;

  beforeEach(async () => {
    page = await openApp();
    puts = await watchPuts(page);
  });

  test("Pause stops the upload, Resume finishes it; Cancel says so in plain words", async () => {
    // 2 parts of 16 MiB; the first PUT of part 2 is held until the pause aborts it.
    puts.handler = (put, route) => (put.part === 2 && put.nth === 1 ? puts.hold(route) : false);
    await page.setInputFiles("#file-input", file("pausable.bin", 20 * MiB));
    // Part 1 is through and part 2 on its way (held).
    await puts.until((log) => log.some((p) => p.part === 2) && log.find((p) => p.part === 1)?.outcome === 200);
    const card = page.locator("#uploads li").first();
    await card.locator("button.pause").click();
    await card.locator(".status", { hasText: "Paused. Resume to send the rest." }).waitFor();
    assert.equal(await card.locator("button.pause").textContent(), "Resume");
    await card.locator("button.pause").click();
    await page.locator("#uploads li.done").waitFor({ timeout: 60_000 });
    assert.deepEqual(puts.countByPart(), { 1: 1, 2: 2 });

    puts.handler = (put, route) => puts.hold(route);
    await page.setInputFiles("#file-input", file("cancelled.bin", 3 * MiB));
    const second = page.locator("#uploads li").nth(1);
    await puts.until((log) => log.length === 4);
    await second.locator("button.cancel").click();
    // Once the server has deleted it (cancel() resolved), the card says so.
    await second.locator(".status", { hasText: "Cancelled. Nothing of it is kept." }).waitFor();
    assert.equal(await second.locator("code").count(), 0, "no error code for a cancel");
    assert.equal(await second.locator("button").count(), 0);
    await page.close();
  });

  test("attempts that run out pause the upload and say why; Resume tries again", async () => {
    let failing = true;
    puts.handler = (put, route) => (failing ? puts.answer(route, 503, { body: "unavailable" }) : false);
    await page.setInputFiles("#file-input", file("flaky.bin", 1000));
    const card = page.locator("#uploads li").first();
    await card.locator(".status", { hasText: "Paused: The upload kept failing." }).waitFor({ timeout: 120_000 });
    assert.equal(await card.locator(".status code").textContent(), "part_failed");
    failing = false;
    await card.locator("button.pause").click();
    await page.locator("#uploads li.done").waitFor({ timeout: 60_000 });
    await page.close();
  });

  test("after a reload: the unfinished upload is listed, resumed by picking the file again, and sends only what is missing", async () => {
    const path = file("interrupted.bin", 40 * MiB); // 3 parts of 16 MiB
    // Parts 2 and 3 are held until the reload ends the page that sent them: storage
    // holds part 1 only. (Released before the reload, the page would send them again.)
    puts.handler = (put, route) => (put.part >= 2 ? puts.hold(route) : false);
    await page.setInputFiles("#file-input", path);
    await puts.until((log) => [2, 3].every((n) => log.some((p) => p.part === n))
      && log.find((p) => p.part === 1)?.outcome === 200);
    await page.reload();
    puts.reset();
    await page.locator("#version[data-state=ready]").waitFor();
    const item = page.locator("#pending li", { hasText: "interrupted.bin" });
    await item.waitFor();
    assert.equal(await item.locator("h3").textContent(), "interrupted.bin");
    assert.match(await item.locator(".meta").textContent(), /^40\.0 MiB · started /);
    const chooser = page.waitForEvent("filechooser");
    await item.locator("button.primary").click();
    await (await chooser).setFiles(path);
    await page.locator("#uploads li.done").waitFor({ timeout: 60_000 });
    assert.equal(await item.count(), 0, "it left the list");
    assert.deepEqual(puts.countByPart(), { 2: 1, 3: 1 });
    await page.close();
  });

  test("Discard deletes an unfinished upload", async () => {
    puts.handler = (put, route) => puts.hold(route);
    await page.setInputFiles("#file-input", file("discarded.bin", 1000));
    await puts.until((log) => log.length === 1);
    await page.reload();
    await page.locator("#version[data-state=ready]").waitFor();
    const fileId = await page.evaluate(async () => {
      const { Uploader } = await import("/pkg/sealdrop_client.js");
      return (await Uploader.pending()).find((p) => p.name === "discarded.bin").fileId;
    });
    const item = page.locator("#pending li", { hasText: "discarded.bin" });
    // The upload's records are its owner's alone (a GET without its token is 401), so
    // the deletion is checked where it happens: the DELETE of the upload answers 204.
    const deleted = page.waitForResponse((r) =>
      r.url().endsWith(`/api/uploads/${fileId}`) && r.request().method() === "DELETE");
    await item.locator("button", { hasText: "Discard" }).click();
    await item.waitFor({ state: "detached" });
    assert.equal((await deleted).status(), 204);
    await page.close();
  });
});

describe("leaving the page", () => {
  /** Closes `page` running its beforeunload handlers; answers whether it asked. */
  async function asksBeforeLeaving(page) {
    let asked = false;
    page.on("dialog", async (dialog) => {
      asked = dialog.type() === "beforeunload";
      await dialog.accept();
    });
    await page.close({ runBeforeUnload: true });
    await page.waitForEvent("close", { timeout: 10_000 }).catch(() => {});
    return asked;
  }

  for (const kept of [true, false]) {
    test(kept
      ? "an upload this browser keeps (it resumes after a reload): no warning"
      : "an upload that could not resume after a reload: the page asks before leaving", async () => {
      const page = await browser.newPage();
      if (!kept) {
        // No IndexedDB here: the upload runs, but nothing could pick it up again.
        await page.addInitScript(() => Object.defineProperty(window, "indexedDB", { value: undefined }));
      }
      const puts = await watchPuts(page);
      puts.handler = (put, route) => puts.hold(route);
      await page.goto(`${server.url}/`);
      await page.locator("#version[data-state=ready]").waitFor();
      await page.mouse.click(5, 5); // the browser asks only on a page the person used
      await page.setInputFiles("#file-input", file(`leave-${kept}.bin`, 1000));
      await puts.until((log) => log.length === 1);
      assert.equal(await asksBeforeLeaving(page), !kept);
      puts.releaseAll();
    });
  }
});

describe("links that cannot work", () => {
  for (const [label, path, words] of [
    ["a path that is not a link (/s/..%2f..%2fetc)", "/s/..%2f..%2fetc", "This address is not a sealdrop link"],
    ["a short share token", "/s/AAAAAAAAAA#k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "The share token in this link is wrong"],
    ["no key", "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "This link has no key"],
    ["a cut key", "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA#k1.AAAA", "The key in this link is damaged"],
  ]) {
    test(`${label}: says what is wrong`, async () => {
      const page = await openApp(path);
      const shown = await page.locator("#nowhere:not([hidden]), #incoming.failed").textContent({ timeout: 30_000 });
      assert.match(shown, new RegExp(words));
      assert.ok(await page.locator("#send").isHidden(), "never the send page");
      await page.close();
    });
  }
});
