// Headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM_BIN) driven by
// playwright-core, in a persistent context with a fresh profile.
//
//   const browser = await launchBrowser();
//   const page = await browser.newPage();
//   await browser.close();
//
// Console errors and uncaught exceptions of every page are written to stderr,
// so they show up in the test output.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

// Flags that work as root on these machines (see TOOLCHAIN notes); playwright adds
// --headless itself and refuses --user-data-dir (the profile is the first argument).
export const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function forwardErrors(page) {
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      const loc = msg.location();
      console.error(`[browser console.error] ${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ""}`);
    }
  });
  page.on("pageerror", (err) => console.error(`[browser pageerror] ${err.stack ?? err}`));
}

/**
 * @returns {Promise<{ context: import("playwright-core").BrowserContext,
 *   newPage: () => Promise<import("playwright-core").Page>, close: () => Promise<void> }>}
 */
export async function launchBrowser() {
  const userDataDir = mkdtempSync(join(tmpdir(), "sealdrop-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
      headless: true,
      args: ARGS,
    });
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
  context.pages().forEach(forwardErrors);
  context.on("page", forwardErrors);
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a blank page of the app at `url` with the wasm client loaded and initialised
 * as `window.sealdrop`, the way a page using the npm package would.
 * @returns {Promise<import("playwright-core").Page>}
 */
export async function openClientPage(browser, url) {
  const page = await browser.newPage();
  await page.goto(`${url}/test/blank.html`);
  await page.evaluate(async () => {
    const mod = await import("/pkg/sealdrop_client.js");
    await mod.default();
    window.sealdrop = mod;
  });
  return page;
}

/** Waits until `fn` (run in the page) returns something truthy; returns it. */
export async function until(page, fn, arg, what) {
  const handle = await page.waitForFunction(fn, arg, { timeout: 60_000 }).catch((e) => {
    throw new Error(`timed out waiting for ${what}: ${e.message}`);
  });
  return handle.jsonValue();
}

/** Opens the room page in `page`, creates a room as `name` (the page makes its key) and
 * waits until it is connected: the room's link (with its key) and id. */
export async function createRoom(page, serverUrl, name) {
  await page.goto(`${serverUrl}/room`);
  await page.fill("#create-name", name);
  await page.click("#create-form button[type=submit]");
  await page.waitForURL(/\/r\/[A-Za-z0-9_-]{22}#k1\.[A-Za-z0-9_-]{43}$/);
  await until(page, () => document.querySelector("#conn")?.dataset.state === "open", null, `${name} connected`);
  const link = page.url();
  return { link, roomId: new URL(link).pathname.split("/")[2] };
}
