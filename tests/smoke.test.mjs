// The toolchain end to end: the worker built by worker-build answers in workerd,
// the static app is served (with the SPA fallback), and the wasm client built by
// wasm-bindgen loads in Chromium.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { launchBrowser } from "./support/browser.mjs";
import { ROOT, startServer } from "./support/server.mjs";

const crateVersion = readFileSync(join(ROOT, "Cargo.toml"), "utf8")
  .match(/\[workspace\.package\][^[]*?\nversion = "([^"]+)"/)[1];

let server;
let browser;
before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
});
after(async () => {
  await Promise.all([server?.stop(), browser?.close()]);
});

test("GET /api/health answers ok", async () => {
  const res = await fetch(`${server.url}/api/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^application\/json/);
  assert.deepEqual(await res.json(), { ok: true });
});

test("an unknown API route answers 404 with the JSON error shape", async () => {
  const res = await fetch(`${server.url}/api/nope`);
  assert.equal(res.status, 404);
  assert.match(res.headers.get("content-type"), /^application\/json/);
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, "not_found");
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
});

test("the app page loads the wasm client and shows its version", async () => {
  const page = await browser.newPage();
  const res = await page.goto(`${server.url}/`);
  assert.equal(res.status(), 200);
  const version = page.locator("#version[data-state=ready]");
  await version.waitFor({ timeout: 15_000 });
  assert.equal(await version.textContent(), `sealdrop-client/${crateVersion}`);
  await page.close();
});

test("/s/<token> serves the app page (SPA fallback), which loads the client", async () => {
  const page = await browser.newPage();
  const res = await page.goto(`${server.url}/s/abc`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-type"], /^text\/html/);
  assert.equal(await page.title(), "sealdrop");
  const version = page.locator("#version[data-state=ready]");
  await version.waitFor({ timeout: 15_000 });
  assert.equal(await version.textContent(), `sealdrop-client/${crateVersion}`);
  await page.close();
});

test("the app's assets hold no test page (tests serve tests/pages/ themselves)", () => {
  const shipped = readdirSync(join(ROOT, "web"), { recursive: true }).map(String);
  const testPages = readdirSync(join(ROOT, "tests/pages"), { recursive: true }).map(String);
  assert.ok(testPages.includes("blank.html"), "tests/pages holds the test pages");
  assert.deepEqual(shipped.filter((p) => p.startsWith("test") || testPages.includes(p.split("/").pop())), []);
});
