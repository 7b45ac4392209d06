// A video's thumbnail (issue 12; docs/FORMAT.md §10): the room page makes it from the
// video's first frame where the browser decodes the video, seals it with the file key,
// and stores it beside the file. The video is made in the page (a canvas recorded by
// MediaRecorder as WebM/VP8: its first half second one colour, then another), uploaded
// into a room, and the thumbnail the server serves is opened with the file key from the
// share link by the independent implementation (tests/support/thumbnail.mjs) and
// decoded: its pixels must be the first frame's colour, not the later one. (Headless
// Chromium decodes it; what kept the page from it was its own Content-Security-Policy,
// which had no media-src.)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "./support/server.mjs";
import { createRoom, launchBrowser, until } from "./support/browser.mjs";
import { member, mint } from "./rooms/support.mjs";
import { openThumbnail } from "./support/thumbnail.mjs";

const work = mkdtempSync(join(tmpdir(), "sealdrop-videothumb-"));
const marker = randomBytes(4).toString("hex");
/** The first frames' colour, and the colour after (RGB). */
const FIRST = [220, 40, 40];
const LATER = [40, 60, 220];
let server;
let browser;

before(async () => {
  server = await startServer({ persistDir: mkdtempSync(join(work, "state-")) });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Whether every channel of `got` is within `slack` of `want` (VP8 and WebP are lossy). */
const near = (got, want, slack = 32) => want.every((v, i) => Math.abs(got[i] - v) <= slack);

describe("a video's first-frame thumbnail", () => {
  test("made in the page from a WebM (VP8), sealed with the file key, opens to the first frame's colour", async () => {
    // The page may decode media from local object URLs only (web/_headers): without
    // media-src the strict policy (default-src 'none') refuses the <video> and the page,
    // finding no frame, makes no thumbnail.
    const res = await fetch(`${server.url}/room`);
    const csp = res.headers.get("content-security-policy").split(";").map((d) => d.trim().split(/\s+/));
    assert.deepEqual(csp.find(([name]) => name === "media-src"), ["media-src", "blob:"]);
    await res.body?.cancel();

    const page = await browser.newPage();
    const { roomId } = await createRoom(page, server.url, "Vera");

    // The video, recorded in the page: 320×240, FIRST for half a second, then LATER.
    const recorded = await page.evaluate(async ([first, later]) => {
      const type = "video/webm;codecs=vp8";
      if (!MediaRecorder.isTypeSupported(type)) return { error: `MediaRecorder cannot record ${type}` };
      const canvas = document.createElement("canvas");
      canvas.width = 320;
      canvas.height = 240;
      const g = canvas.getContext("2d");
      let colour = first;
      const paint = () => { g.fillStyle = `rgb(${colour.join(",")})`; g.fillRect(0, 0, 320, 240); };
      paint();
      const stream = canvas.captureStream(30);
      const recorder = new MediaRecorder(stream, { mimeType: type });
      const chunks = [];
      recorder.ondataavailable = (e) => chunks.push(e.data);
      const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
      // A canvas stream has a frame only when the canvas is painted: keep painting.
      const timer = setInterval(paint, 20);
      recorder.start();
      await new Promise((r) => setTimeout(r, 500));
      colour = later;
      await new Promise((r) => setTimeout(r, 500));
      recorder.stop();
      await stopped;
      clearInterval(timer);
      const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
      let text = "";
      for (const byte of bytes) text += String.fromCharCode(byte);
      const probe = document.createElement("video");
      return { webm: btoa(text), canPlay: probe.canPlayType('video/webm; codecs="vp8"') };
    }, [FIRST, LATER]);
    assert.equal(recorded.error, undefined, recorded.error);
    assert.equal(recorded.canPlay, "probably", "this Chromium decodes WebM/VP8");
    const webm = Buffer.from(recorded.webm, "base64");
    assert.equal(webm.readUInt32BE(0), 0x1a45dfa3, "an EBML (WebM) file");

    const name = `clip-${marker}.webm`;
    await page.setInputFiles("#pick-files", { name, mimeType: "video/webm", buffer: webm });
    // The page shows the preview it made, opened from what the server holds.
    const shown = await until(page, (name) => {
      const row = [...document.querySelectorAll("#files li[data-file-id]")].find((li) => li.querySelector(".file-name")?.textContent === name);
      const img = row?.querySelector("img.thumb");
      return img?.complete && img.naturalWidth > 0 && [img.naturalWidth, img.naturalHeight];
    }, name, "the video's thumbnail in the file list");
    assert.deepEqual(shown, [256, 192], "at most 256 px a side, the aspect kept");
    const clip = await until(page, (name) => {
      const row = [...document.querySelectorAll("#files li[data-file-id]")].find((li) => li.querySelector(".file-name")?.textContent === name);
      const link = [...document.querySelectorAll("#messages a.file-link")].find((a) => a.textContent.includes(name))?.href;
      return row && link && { fileId: row.dataset.fileId, link };
    }, name, "the video's row and its link in the chat");

    // What the server serves: the file's header and the sealed thumbnail, opened with
    // the file key from the link (never sent to the server).
    // (A room member may read it: Vera's friend joins first.)
    const friend = await member(server.url, roomId, "friend");
    friend.ws.close();
    const served = await fetch(`${server.url}/api/rooms/${roomId}/files/${clip.fileId}/thumbnail`, {
      headers: { authorization: `Bearer ${await mint({ sub: "friend", room: roomId })}` },
    });
    assert.equal(served.status, 200);
    const body = Buffer.from(await served.arrayBuffer());
    const fileKey = Buffer.from(clip.link.split("#k1.")[1], "base64url");
    const image = openThumbnail(fileKey, body.subarray(0, 76), body.subarray(76));
    assert.equal(image.subarray(8, 12).toString(), "WEBP");
    const wrongKey = Buffer.from(fileKey);
    wrongKey[0] ^= 1;
    assert.throws(() => openThumbnail(wrongKey, body.subarray(0, 76), body.subarray(76)), /key_commitment_failed/);

    // Decoded (by the browser, from the opened bytes only): the first frame's colour.
    const pixels = await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/webp" }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const g = canvas.getContext("2d");
      g.drawImage(bitmap, 0, 0);
      const at = (x, y) => [...g.getImageData(x, y, 1, 1).data.slice(0, 3)];
      return { size: [bitmap.width, bitmap.height], samples: [at(128, 96), at(20, 20), at(236, 172)] };
    }, image.toString("base64"));
    assert.deepEqual(pixels.size, [256, 192]);
    for (const px of pixels.samples) {
      assert.ok(near(px, FIRST), `pixel ${px} is the first frame's colour ${FIRST}`);
      assert.ok(!near(px, LATER), `pixel ${px} is not the later colour ${LATER}`);
    }
    await page.close();
  });
});
