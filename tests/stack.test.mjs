// The per-provider stack (tests/support/stack.mjs) end to end, once per provider in
// PROVIDERS: the browser uploads through the fault proxy, a part PUT that storage's
// side answers with 500 is retried, the proxy counts every part PUT by number, and
// the file downloads byte-identical. This is what the e2e suites build on.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { PROVIDERS, startStack } from "./support/stack.mjs";

const MiB = 1024 * 1024;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

for (const provider of PROVIDERS) {
  describe(`stack: ${provider}`, () => {
    let stack;
    let page;
    before(async () => {
      stack = await startStack({ provider });
      page = await openClientPage(browser, stack.url);
    });
    after(async () => {
      await page?.close();
      await stack?.stop();
    });

    test("part PUTs go through the proxy, are counted by part number, and a 500 is retried", async () => {
      const failed = stack.proxy.inject({ method: "PUT", partNumber: 2, fault: "status", status: 500 });
      const got = await page.evaluate(async (size) => {
        const bytes = new Uint8Array(size);
        for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
        const digest = async (blob) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()))].join();
        const blob = new Blob([bytes]);
        const up = await new window.sealdrop.Uploader({ partSize: 5 * 1024 * 1024 + 80 }).upload(blob);
        const down = await window.sealdrop.download(up.link);
        return { same: (await digest(down.blob)) === (await digest(blob)) };
      }, 11 * MiB);
      assert.equal(failed.hits, 1);
      assert.ok(got.same, "downloads byte-identical");
      assert.deepEqual(stack.proxy.partPuts().sort(), [1, 2, 2, 3], "part 2 was sent twice");
      assert.deepEqual(stack.proxy.partPuts({ ok: true }).sort(), [1, 2, 3]);
    });
  });
}
