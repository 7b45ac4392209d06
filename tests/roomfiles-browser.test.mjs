// The room page with files (issue 12), in Chromium against the real worker: a member
// (driven from Node through the HTTP API and a socket, sealing with the room key from
// the page's link) uploads into the room; the page shows the upload in flight with its
// name, bar, speed and ETA as the room measures them, then the file with its download
// link, a folder as one entry, the shared file in the chat and a processor's status.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startServer } from "./support/server.mjs";
import { createRoom, launchBrowser, until } from "./support/browser.mjs";
import { member } from "./rooms/support.mjs";
import { postJson, roomSealer, roomUpload } from "./rooms/files.mjs";

const work = mkdtempSync(join(tmpdir(), "sealdrop-roomfiles-browser-"));
const shots = join(ROOT, "test-results");
const marker = randomBytes(4).toString("hex");
const PROCESSOR_SECRET = randomBytes(24).toString("hex");
let server;
let browser;
const sockets = [];

before(async () => {
  mkdirSync(shots, { recursive: true });
  server = await startServer({ secrets: { PROCESSORS: `transcoder:${PROCESSOR_SECRET}` } });
  browser = await launchBrowser();
});

after(async () => {
  for (const s of sockets) { try { s.ws.close(); } catch { /* gone */ } }
  await browser?.close();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("the room page with files", () => {
  test("uploads in flight, files, a folder, a shared file and processing status, live", async () => {
    const page = await browser.newPage();
    const { link, roomId: room } = await createRoom(page, server.url, "Alice");
    const sealer = roomSealer(Buffer.from(link.split("#k1.")[1], "base64url"));
    const nina = await member(server.url, room, "nina");
    sockets.push(nina);

    // An upload in flight: the page shows its name, then the bar moving.
    const name = `holiday-${marker}.mp4`;
    const total = 8_000_000;
    const up = await roomUpload(server.url, sealer, room, "nina", { size: total, name });
    const row = `#uploads li[data-file-id="${up.fileId}"]`;
    await page.waitForSelector(row, { timeout: 60_000 });
    assert.equal(await page.textContent(`${row} .file-name`), name, "the sealed name, opened in the page");
    for (const part of [1, 2, 3, 4]) {
      await nina.request("file-upload-progress", { fileId: up.fileId, bytesUploaded: part * 1_500_000 });
      await new Promise((r) => setTimeout(r, 300));
    }
    const shown = await until(page, (sel) => {
      const bar = document.querySelector(`${sel} progress`);
      return bar && Number(bar.value) >= 75 && document.querySelector(`${sel} .file-figures`).textContent;
    }, row, "the bar at 75%");
    assert.match(shown, /^75\.0%/);
    assert.match(shown, /\/s/, `the room's speed is shown: ${shown}`);
    await page.screenshot({ path: join(shots, "roomfiles-uploading.png"), fullPage: true });

    // Completed: it leaves the uploads and joins the files; its Download button waits
    // for the file's share link (posted below).
    await up.finish();
    const fileRow = `#files li[data-file-id="${up.fileId}"]`;
    await page.waitForSelector(fileRow, { timeout: 60_000 });
    await until(page, (sel) => !document.querySelector(sel), row, "the upload leaves the list");
    assert.equal(await page.$(`${fileRow} button.download`), null, "no link yet");
    const key = [...sealer.said].find((s) => /^[A-Za-z0-9_-]{43}$/.test(s));

    // A folder is one entry with its files under it.
    const folder = await nina.request("create-folder", { sealedName: await sealer.file(room, "nina", "name", `Trip ${marker}`) });
    const inFolder = [];
    for (const path of [`Trip ${marker}/day1/a.jpg`, `Trip ${marker}/b.jpg`]) {
      const f = await roomUpload(server.url, sealer, room, "nina", { parentId: folder.data.fileId, path, name: path.split("/").at(-1), type: "image/jpeg" });
      await f.finish();
      inFolder.push(f.fileId);
    }
    const folderRow = `#files li.folder[data-file-id="${folder.data.fileId}"]`;
    const children = await until(page, (sel) => {
      const items = [...document.querySelectorAll(`${sel} ul li .file-name`)].map((e) => e.textContent);
      return items.length === 2 && items;
    }, folderRow, "the folder's two files");
    assert.deepEqual(children, [`Trip ${marker}/b.jpg`, `Trip ${marker}/day1/a.jpg`]);
    assert.match(await page.textContent(`${folderRow} > .file-row .file-name`), new RegExp(`Trip ${marker}`));

    // Shared into the chat: the sealed share link opens in the page, and the file's
    // row gets its Download button.
    const fileLink = `${server.url}/s/${"A".repeat(32)}#k1.${key}`;
    await nina.request("share-file", { fileId: up.fileId, link: await sealer.message(room, "nina", fileLink, "link") });
    const opened = await until(page, () => document.querySelector("#messages a.file-link")?.href, null, "the shared link");
    assert.equal(opened, fileLink);
    await page.waitForSelector(`${fileRow} button.download`, { timeout: 60_000 });

    // A processor reports: the page (subscribed) shows it.
    const report = (body) => postJson(`${server.url}/api/files/${up.fileId}/processing`, body, { authorization: `Bearer ${PROCESSOR_SECRET}` });
    assert.equal((await report({ event: "started" })).status, 200);
    assert.equal((await report({ event: "progress", progress: 60 })).status, 200);
    const badge = await until(page, (sel) => document.querySelector(`${sel} .processing`)?.textContent, fileRow, "the processing badge");
    assert.match(badge, /transcoder: processing/);
    await page.screenshot({ path: join(shots, "roomfiles-files.png"), fullPage: true });
    await page.close();
  });
});
