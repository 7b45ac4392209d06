// Share links in the browser (issue 13): the client's createShare / listShares /
// revokeShare / deleteFile and download({ password }) in headless Chromium against the
// real worker (r2-binding), and the demo app's receive page in words: a password link
// opens with its password and is refused without it or with a wrong one, and storage
// never holds the password, the verifier or any key; a one-time share gives exactly one
// complete download to two parallel attempts; an expired share, a revoked share, an
// expired file and a deleted file are refused with their codes and the page's words,
// and deletion leaves nothing of the file in storage.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { newUpload, until, uploadAll } from "./support/api.mjs";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { addPageHelpers, stubSavePicker } from "./support/page-helpers.mjs";
import { derivePassword, parseFragment } from "./support/password.mjs";
import { startServer } from "./support/server.mjs";
import { filesUnder, leakscan, objectData, storageDirs } from "./support/storage.mjs";

const MiB = 1024 * 1024;
const hex = (bytes) => Buffer.from(bytes).toString("hex");

let server;
let browser;
let page;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
  page = await openClientPage(browser, server.url);
  await addPageHelpers(page);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const work = mkdtempSync(join(tmpdir(), "sealdrop-shares-browser-"));

/** Uploads `size` random bytes from the page: the UploadResult and the bytes' SHA-256. */
function upload(size) {
  return page.evaluate(async (size) => {
    const blob = randomBlob(size);
    const r = await new sealdrop.Uploader({ persist: false }).upload(blob, { name: "shared.bin" });
    return { fileId: r.fileId, link: r.link, ownerToken: r.ownerToken, sha256: await sha256(blob) };
  }, size);
}

/** Downloads `link` in the page: `outcome` of the bytes' SHA-256. */
function fetchIn(link, options = {}) {
  return page.evaluate(
    ({ link, options }) => outcome(sealdrop.download(link, options).then((d) => sha256(d.blob))),
    { link, options },
  );
}

/** The owner's view of one share of `file`. */
function shareView(file, token) {
  return page.evaluate(async ({ file, token }) => {
    const shares = await sealdrop.listShares(file, file.ownerToken);
    return shares.find((s) => s.token === token);
  }, { file, token });
}

/** The demo app's receive page at `link`. */
async function receivePage(link) {
  const app = await browser.newPage();
  await stubSavePicker(app);
  const url = new URL(link);
  await app.goto(`${server.url}${url.pathname}${url.hash}`);
  await app.locator("#version[data-state=ready]").waitFor({ timeout: 30_000 });
  return app;
}

/** What the receive page says once the link failed. */
async function refusalWords(link) {
  const app = await receivePage(link);
  await app.locator("#incoming.failed").waitFor({ timeout: 60_000 });
  const words = await app.locator("#incoming-status").textContent();
  await app.close();
  return words;
}

describe("password links", () => {
  test("a password share downloads with the right password only, in the client and the app, and storage holds no password, verifier or key", async (t) => {
    const password = `pässwörd ✓ ${randomBytes(6).toString("hex")}`;
    const file = await upload(300_000);
    const r = await page.evaluate(async ({ file, password }) => {
      const started = performance.now();
      const share = await sealdrop.createShare(file, file.ownerToken, { password, downloadLimit: 5 });
      const ms = performance.now() - started;
      return { share, ms, needs: sealdrop.linkNeedsPassword(share.link), plain: sealdrop.linkNeedsPassword(file.link) };
    }, { file, password });
    const { share } = r;
    t.diagnostic(`createShare with a password (Argon2id in wasm + one request): ${r.ms.toFixed(0)} ms`);
    assert.match(share.link, /\/s\/[A-Za-z0-9_-]{32}#p1\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{64}$/);
    assert.equal(share.password, true);
    assert.equal(share.downloadLimit, 5);
    assert.deepEqual([r.needs, r.plain], [true, false]);

    const none = await fetchIn(share.link);
    assert.equal(none.code, "password_required");
    const wrong = await fetchIn(share.link, { password: `${password}x` });
    assert.deepEqual([wrong.code, wrong.status], ["wrong_password", 403]);
    // The same password typed decomposed (NFD) is the same password.
    const right = await fetchIn(share.link, { password: password.normalize("NFD") });
    assert.ok(right.ok, JSON.stringify(right));
    assert.equal(right.value, file.sha256);
    // The fragment moved onto another share of the same file does not open.
    const other = await page.evaluate((file) => sealdrop.createShare(file, file.ownerToken, { password: "other" }), file);
    const moved = `${other.link.split("#")[0]}#${share.link.split("#")[1]}`;
    const swapped = await fetchIn(moved, { password });
    assert.equal(swapped.code, "wrong_password", "the server refuses a verifier of another salt");

    let view = await shareView(file, share.token);
    assert.equal(view.downloads, 1);
    assert.equal(view.failedAttempts, 1);
    const outcomes = view.access.map((a) => a.outcome);
    // (No password never reaches the server: the client refuses first.)
    for (const o of ["completed", "opened", "wrong_password"]) {
      assert.ok(outcomes.includes(o), `${o} in ${outcomes}`);
    }
    assert.ok(view.access.every((a) => a.agent === null || a.agent === "chrome"));

    // The app asks for the password, says a wrong one in words, and opens with the right one.
    const app = await receivePage(share.link);
    await app.locator("#unlock").waitFor({ state: "visible", timeout: 30_000 });
    await app.fill("#unlock-password", "not it");
    await app.click("#unlock-submit");
    await app.locator("#unlock-status code").waitFor({ timeout: 60_000 });
    assert.match(await app.locator("#unlock-status").textContent(), /password is not right.*wrong_password/);
    await app.fill("#unlock-password", password);
    await app.click("#unlock-submit");
    await app.click("#incoming-start", { timeout: 60_000 });
    await app.locator("#incoming.done").waitFor({ timeout: 60_000 });
    assert.ok(await app.locator("#unlock").isHidden());
    await app.close();
    view = await shareView(file, share.token);
    assert.deepEqual([view.downloads, view.failedAttempts], [2, 2]);

    // Storage: the share's object holds the verifier's salted hash (the control: the
    // scan reaches it), and nothing of the password, the verifier, the link or a key.
    const { salt } = parseFragment(share.link.split("#")[1]);
    const keys = derivePassword(password, salt, share.token);
    const shareId = Buffer.from(share.token, "base64url").subarray(0, 16);
    const stored = await crypto.subtle.digest(
      "SHA-256",
      Buffer.concat([Buffer.from("sealdrop/v1/share-verifier\0"), shareId, keys.verifier]),
    );
    const control = leakscan(objectData(server.persistDir), { hex: [hex(stored)] });
    assert.equal(control.status, 1, `the scan finds the stored hash: ${JSON.stringify(control.report)}`);
    const fileKey = Buffer.from(file.link.split("#k1.")[1], "base64url");
    const fragment = share.link.split("#")[1];
    const scan = leakscan(storageDirs(server.persistDir), {
      secrets: [
        password, password.normalize("NFD"), fragment, ...fragment.slice(3).split("."),
        Buffer.from(keys.verifier).toString("base64url"), file.link.split("#")[1],
        fileKey.toString("base64url"), fileKey.toString("base64"), hex(fileKey),
      ],
      hex: [hex(fileKey), hex(keys.verifier), hex(keys.stretched), hex(keys.wrapKey)],
    });
    assert.deepEqual(scan.report.leaks, [], "nothing secret in storage");
    assert.equal(scan.status, 0);
  });
});

describe("limits", () => {
  test("a one-time share gives two parallel attempts in the browser exactly one complete download", async () => {
    const file = await upload(3 * MiB);
    const share = await page.evaluate((file) => sealdrop.createShare(file, file.ownerToken, { downloadLimit: 1 }), file);
    assert.match(share.link, /#k1\./);
    const both = await page.evaluate((link) => Promise.all([0, 1].map(() =>
      outcome(sealdrop.download(link).then((d) => sha256(d.blob))))), share.link);
    const done = both.filter((o) => o.ok);
    assert.equal(done.length, 1, JSON.stringify(both));
    assert.equal(done[0].value, file.sha256);
    const [refused] = both.filter((o) => !o.ok);
    // Normally `share_busy` (the first holds the slot); `share_exhausted` if the first
    // had completed before the second reached the share.
    assert.ok(["share_busy", "share_exhausted"].includes(refused.code), JSON.stringify(refused));
    const third = await fetchIn(share.link);
    assert.deepEqual([third.code, third.status], ["share_exhausted", 410]);
    const view = await shareView(file, share.token);
    assert.deepEqual([view.downloads, view.state, view.openDownloads], [1, "exhausted", 0]);
    assert.match(await refusalWords(share.link), /used as many times as the sender allowed.*share_exhausted/);
    // The owner raises the limit: one more download.
    const raised = await page.evaluate(({ file, token }) =>
      sealdrop.updateShare(file, file.ownerToken, token, { downloadLimit: 2 }), { file, token: share.token });
    assert.deepEqual([raised.state, raised.downloadLimit], ["active", 2]);
    const again = await fetchIn(share.link);
    assert.equal(again.value, file.sha256);
  });

  test("wrong passwords are limited per share: the sixth says too_many_attempts with Retry-After, in words", async () => {
    const file = await upload(1000);
    const share = await page.evaluate((file) => sealdrop.createShare(file, file.ownerToken, { password: "right" }), file);
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push(await fetchIn(share.link, { password: `wrong ${i}` }));
    assert.deepEqual(codes.map((c) => c.code), [...Array(5).fill("wrong_password"), "too_many_attempts"]);
    const limited = codes[5];
    assert.equal(limited.status, 429);
    assert.ok(limited.retryAfter > 0 && limited.retryAfter <= 15 * 60, JSON.stringify(limited));
    // While limited even the right password is not checked.
    assert.equal((await fetchIn(share.link, { password: "right" })).code, "too_many_attempts");
    const app = await receivePage(share.link);
    await app.locator("#unlock").waitFor({ state: "visible", timeout: 30_000 });
    await app.fill("#unlock-password", "right");
    await app.click("#unlock-submit");
    await app.locator("#unlock-status code").waitFor({ timeout: 60_000 });
    assert.match(await app.locator("#unlock-status").textContent(),
      /Too many wrong passwords were tried on this link\. Try again in \d+ (s|min \d+ s)\..*too_many_attempts/);
    assert.ok(await app.locator("#unlock-password").isEditable(), "the form stays for a later try");
    await app.close();
    const view = await shareView(file, share.token);
    assert.equal(view.failedAttempts, 5);
  });
});

describe("refusals", () => {
  test("an expired share and a revoked share are refused with their codes and the page's words", async () => {
    const file = await upload(100_000);
    const [brief, revoked] = await page.evaluate(async (file) => Promise.all([
      sealdrop.createShare(file, file.ownerToken, { expiresIn: 1 }),
      sealdrop.createShare(file, file.ownerToken),
    ]), file);
    const view = await page.evaluate(({ file, token }) => sealdrop.revokeShare(file, file.ownerToken, token), { file, token: revoked.token });
    assert.equal(view.state, "revoked");
    await until(async () => (await fetch(`${server.url}/api/shares/${brief.token}`)).status === 410, "the share expired");
    const expired = await fetchIn(brief.link);
    assert.deepEqual([expired.code, expired.status], ["share_expired", 410]);
    const gone = await fetchIn(revoked.link);
    assert.deepEqual([gone.code, gone.status], ["share_revoked", 410]);
    assert.match(await refusalWords(brief.link), /link has expired.*share_expired/);
    assert.match(await refusalWords(revoked.link), /revoked this link.*share_revoked/);
    // The owner's list says so too.
    const states = await page.evaluate((file) => sealdrop.listShares(file, file.ownerToken)
      .then((list) => list.map((s) => [s.token, s.state])), file);
    assert.deepEqual(new Map(states).get(revoked.token), "revoked");
    assert.deepEqual(new Map(states).get(brief.token), "expired");
  });

  test("an expired file is refused with `gone` and the page's words", async () => {
    // A file of the API's own (not sealed: the server cannot tell), living 10 seconds,
    // and a share of it (with a made-up key: the share refuses before any key is used).
    const up = await newUpload(server.url, { expiresIn: 10 });
    await uploadAll(up);
    const res = await fetch(`${server.url}/api/files/${up.fileId}/shares`, {
      method: "POST", headers: { ...up.auth, "content-type": "application/json" }, body: "{}",
    });
    const { token } = await res.json();
    assert.equal(res.status, 201);
    const share = { link: `${server.url}/s/${token}#k1.${"A".repeat(43)}` };
    await until(async () => (await fetch(`${server.url}/api/files/${up.fileId}`, { headers: up.auth })).status === 410, "the file expired", 1200);
    const refused = await fetchIn(share.link);
    assert.deepEqual([refused.code, refused.status], ["gone", 410]);
    assert.match(await refusalWords(share.link), /deleted or has expired.*gone/);
  });

  test("a deleted file is refused with `gone` and the page's words, and nothing of it is left in storage", async () => {
    const r2 = join(server.persistDir, "v3/r2");
    const before = new Set(filesUnder(r2).keys());
    const file = await upload(2 * MiB);
    const blobs = [...filesUnder(r2).keys()].filter((p) => !before.has(p) && p.includes("blobs"));
    assert.ok(blobs.length > 0, "the upload's object is in R2");
    assert.equal(leakscan(objectData(server.persistDir), { secrets: [file.fileId] }).status, 1, "an object names the file");
    const share = await page.evaluate((file) => sealdrop.createShare(file, file.ownerToken, { password: "pw" }), file);
    const deleted = await page.evaluate((file) => outcome(sealdrop.deleteFile(file, file.ownerToken)), file);
    assert.ok(deleted.ok, JSON.stringify(deleted));
    for (const link of [file.link, share.link]) {
      const refused = await fetchIn(link, { password: "pw" });
      assert.deepEqual([refused.code, refused.status], ["gone", 410], link);
    }
    assert.match(await refusalWords(file.link), /deleted or has expired.*gone/);
    const again = await page.evaluate((file) => outcome(sealdrop.listShares(file, file.ownerToken)), file);
    assert.equal(again.code, "gone");
    // Storage: the object's blobs are gone and no object's data names the file.
    const lingering = () => {
      const left = new Set(filesUnder(r2).keys());
      return blobs.filter((p) => left.has(p));
    };
    await until(() => lingering().length === 0, `the object is deleted from R2 (${lingering()})`, 200);
    const named = leakscan(objectData(server.persistDir), { secrets: [file.fileId] });
    assert.equal(named.status, 0, JSON.stringify(named.report));
  });
});

describe("the app's share dialog", () => {
  test("makes a one-time password link, lists it with its access records, and revokes it", async () => {
    const app = await browser.newPage();
    await app.goto(server.url);
    await app.locator("#version[data-state=ready]").waitFor({ timeout: 30_000 });
    const path = join(work, "dialog.bin");
    writeFileSync(path, randomBytes(200_000));
    await app.setInputFiles("#file-input", path);
    const card = app.locator("#uploads li.done");
    await card.waitFor({ timeout: 60_000 });
    await card.locator(".share-open").click();
    // The upload's default share is listed, without a link (the page did not make it).
    await card.locator(".shares li.share").first().waitFor({ timeout: 30_000 });
    await card.locator(".share-password").fill("dialog secret");
    await card.locator(".share-limit").fill("1");
    await card.locator(".share-create").click();
    const made = card.locator(".shares li.share", { has: app.locator(".share-link") });
    await made.waitFor({ timeout: 60_000 });
    assert.match(await card.locator(".share-status").textContent(), /Send the password separately/);
    assert.match(await made.locator(".share-facts").textContent(), /active · password · 0 of 1 downloads/);
    const link = await made.locator(".share-link").inputValue();
    assert.match(link, /#p1\./);

    const receiver = await receivePage(link);
    await receiver.locator("#unlock").waitFor({ state: "visible", timeout: 30_000 });
    await receiver.fill("#unlock-password", "dialog secret");
    await receiver.click("#unlock-submit");
    await receiver.click("#incoming-start", { timeout: 60_000 });
    await receiver.locator("#incoming.done").waitFor({ timeout: 60_000 });
    await receiver.close();

    await card.locator(".share-refresh").click();
    const token = await made.getAttribute("data-token");
    const used = card.locator(`.shares li.share[data-token="${token}"]`);
    await used.and(app.locator("[data-state=exhausted]")).waitFor({ timeout: 30_000 });
    assert.match(await used.locator(".share-facts").textContent(), /downloads used up · password · 1 of 1 downloads/);
    const records = await used.locator(".access-record").allTextContents();
    assert.ok(records.some((r) => /download completed \(chrome/.test(r)), records.join("\n"));
    await used.locator(".share-revoke").click();
    await used.and(app.locator("[data-state=revoked]")).waitFor({ timeout: 30_000 });
    assert.equal(await used.locator(".share-revoke").count(), 0);
    assert.match(await refusalWords(link), /revoked this link.*share_revoked/);
    await app.close();
  });
});
