// Uploading into a room from the room page (issue 12), in Chromium against the real
// worker, with two people: Alice (two devices: two pages of one browser, so one user
// id) and Bob (another browser). Alice's upload is created with the room JWT through
// `uploader.upload(file, {room})`; Bob watches its bar move, downloads the file from the
// room and gets the same bytes. Alice's second device pauses and cancels an upload that
// runs on her first one, through the room. A dropped folder is one entry with its files.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startServer } from "./support/server.mjs";
import { launchBrowser, until } from "./support/browser.mjs";
import { member, mint } from "./rooms/support.mjs";
import { openThumbnail } from "./support/thumbnail.mjs";

const work = mkdtempSync(join(tmpdir(), "sealdrop-roomup-browser-"));
const shots = join(ROOT, "test-results");
const marker = randomBytes(4).toString("hex");
let server;
let alice;
let bob;
const sockets = [];

before(async () => {
  mkdirSync(shots, { recursive: true });
  // A state folder of our own: it outlives the server, for the privacy scan.
  server = await startServer({ persistDir: mkdtempSync(join(work, "state-")) });
  [alice, bob] = await Promise.all([launchBrowser(), launchBrowser()]);
});

after(async () => {
  for (const s of sockets) { try { s.ws.close(); } catch { /* gone */ } }
  await alice?.close();
  await bob?.close();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const connected = (page) => until(page, () => document.querySelector("#conn")?.dataset.state === "open", null, "connected");
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

describe("uploading into a room from the page", () => {
  test("progress for everyone, download from the room, control from another device, a folder", async () => {
    // Alice makes the room; Bob joins by its link; Alice opens it on a second device.
    const a1 = await alice.newPage();
    await a1.goto(`${server.url}/room`);
    await a1.fill("#create-name", "Alice");
    await a1.click("#create-form button[type=submit]");
    await a1.waitForURL(/\/r\/[A-Za-z0-9_-]{22}#k1\.[A-Za-z0-9_-]{43}$/);
    await connected(a1);
    const link = a1.url();
    const roomId = new URL(link).pathname.split("/")[2];
    const b = await bob.newPage();
    await b.goto(link);
    await b.fill("#hello-name", "Bob");
    await b.click("#hello-form button[type=submit]");
    await connected(b);
    const a2 = await alice.newPage();
    await a2.goto(link);
    await connected(a2);

    // 1. Control from the other device. Alice's first device holds its part PUTs, so
    // the upload stays in flight; her second device pauses it, then cancels it.
    const held = [];
    const hold = (route) => (route.request().method() === "PUT" ? held.push(route) : route.continue());
    await a1.route("**/*", hold);
    const small = join(work, `held-${marker}.bin`);
    writeFileSync(small, randomBytes(3_000_000));
    await a1.setInputFiles("#pick-files", small);
    const heldRow = await until(a2, () => document.querySelector("#uploads li[data-file-id] .upload-controls button[data-action=pause]")
      ?.closest("li").dataset.fileId, null, "the upload on Alice's other device, with its controls");
    const bobRow = `#uploads li[data-file-id="${heldRow}"]`;
    await b.waitForSelector(bobRow, { timeout: 60_000 });
    assert.equal(await b.textContent(`${bobRow} .file-name`), `held-${marker}.bin`, "Bob sees the name, opened");
    assert.equal(await b.$(`${bobRow} .upload-controls`), null, "only the uploader's devices get controls");
    await a2.click(`#uploads li[data-file-id="${heldRow}"] button[data-action=pause]`);
    await until(b, (sel) => document.querySelector(sel)?.dataset.state === "paused", bobRow, "the upload paused, as the uploading device reports it");
    await a2.waitForSelector(`#uploads li[data-file-id="${heldRow}"] button[data-action=resume]`, { timeout: 60_000 });
    await a2.screenshot({ path: join(shots, "roomup-paused-other-device.png"), fullPage: true });
    await a2.click(`#uploads li[data-file-id="${heldRow}"] button[data-action=cancel]`);
    await until(b, (sel) => !document.querySelector(sel), bobRow, "the cancelled upload leaves Bob's list");
    assert.match(await b.textContent("#messages"), /Alice's upload of held-.* was cancelled/);
    await a1.unroute("**/*", hold);
    for (const route of held) await route.abort().catch(() => {});

    // 2. 64 MiB into the room: Bob's bar moves, then he downloads it from the room.
    const big = join(work, `big-${marker}.bin`);
    const bytes = randomBytes(64 * 1024 * 1024);
    writeFileSync(big, bytes);
    await b.evaluate(() => {
      window.seenBars = [];
      new MutationObserver(() => {
        for (const bar of document.querySelectorAll("#uploads progress")) window.seenBars.push(Number(bar.value));
      }).observe(document.querySelector("#uploads"), { subtree: true, childList: true, attributes: true });
    });
    await a1.setInputFiles("#pick-files", big);
    await until(b, () => Number(document.querySelector("#uploads progress")?.value) > 0, null, "the big upload under way");
    await b.screenshot({ path: join(shots, "roomup-uploading.png"), fullPage: true });
    const bigRow = `#files li[data-file-id] button.download`;
    await until(b, (sel) => document.querySelector(sel), bigRow, "the file with its download button");
    const seen = await b.evaluate(() => window.seenBars);
    assert.ok(seen.some((v) => v > 0 && v < 100), `Bob saw the bar between 0 and 100: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen, [...seen].sort((x, y) => x - y), "the bar never went back");
    await a1.screenshot({ path: join(shots, "roomup-files.png"), fullPage: true });
    const [saved] = await Promise.all([b.waitForEvent("download", { timeout: 120_000 }), b.click(bigRow)]);
    const got = readFileSync(await saved.path());
    assert.equal(got.length, bytes.length);
    assert.equal(sha256(got), sha256(bytes), "Bob downloaded the very bytes Alice sent");
    assert.equal(saved.suggestedFilename(), `big-${marker}.bin`);

    // The download is in the room's audit log (Alice owns the room).
    const moderator = await member(server.url, roomId, "auditor", { role: "moderator" });
    sockets.push(moderator);
    const audit = await moderator.request("audit", {});
    const actions = audit.data.entries.map((e) => e.action);
    for (const action of ["upload-started", "upload-failed", "upload-completed", "shared", "downloaded"]) {
      assert.ok(actions.includes(action), `audit has ${action}: ${actions}`);
    }

    // 3. A folder: one entry, its files under it with their paths, one click for all.
    // (Headless Chromium cannot pick a folder: the files go in with their relative
    // paths as the folder picker and a folder drop give them.)
    await a1.evaluate((marker) => window.sealdropRoom.sendFiles([
      { file: new File([`first ${marker}`], "a.txt", { type: "text/plain" }), path: `Trip-${marker}/day1/a.txt` },
      { file: new File([`second ${marker}`], "b.txt", { type: "text/plain" }), path: `Trip-${marker}/b.txt` },
    ]), marker);
    const folder = `#files li.folder`;
    const children = await until(b, (sel) => {
      const items = [...document.querySelectorAll(`${sel} ul li .file-name`)].map((e) => e.textContent);
      return items.length === 2 && document.querySelector(`${sel} button.download`) && items;
    }, folder, "the folder's two files, downloadable");
    assert.deepEqual(children, [`Trip-${marker}/b.txt`, `Trip-${marker}/day1/a.txt`]);
    assert.equal(await b.textContent(`${folder} > .file-row .file-name`), `Trip-${marker}`);
    const downloads = [];
    b.on("download", (d) => downloads.push(d));
    await b.click(`${folder} > .file-row button.download`);
    await until(b, (sel) => document.querySelector(sel)?.textContent === "Downloaded", `${folder} > .file-row button.download`, "the folder downloaded");
    const texts = await Promise.all(downloads.map(async (d) => readFileSync(await d.path(), "utf8")));
    assert.deepEqual(texts.sort(), [`first ${marker}`, `second ${marker}`]);

    // 4. An image: Alice's page makes its thumbnail and seals it; Bob's opens it.
    const png = Buffer.from(await a1.evaluate(async () => {
      const canvas = new OffscreenCanvas(640, 480);
      const g = canvas.getContext("2d");
      const gradient = g.createLinearGradient(0, 0, 640, 480);
      gradient.addColorStop(0, "#c33");
      gradient.addColorStop(1, "#33c");
      g.fillStyle = gradient;
      g.fillRect(0, 0, 640, 480);
      g.fillStyle = "#fff";
      g.font = "64px sans-serif";
      g.fillText("sealdrop", 170, 260);
      const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: "image/png" })).arrayBuffer());
      let text = "";
      for (const byte of bytes) text += String.fromCharCode(byte);
      return btoa(text);
    }), "base64");
    await a1.setInputFiles("#pick-files", { name: `photo-${marker}.png`, mimeType: "image/png", buffer: png });
    const thumb = await until(b, (name) => {
      const row = [...document.querySelectorAll("#files li[data-file-id]")].find((li) => li.querySelector(".file-name")?.textContent === name);
      const img = row?.querySelector("img.thumb");
      return img?.complete && img.naturalWidth > 0 && { src: img.src, width: img.naturalWidth, height: img.naturalHeight };
    }, `photo-${marker}.png`, "the photo's thumbnail in Bob's page");
    assert.deepEqual([thumb.width, thumb.height], [256, 192], "at most 256 px a side, the aspect kept");
    // What the server serves, opened by the independent implementation with the file
    // key from the photo's share link in the chat.
    // The file's row and its share message in the chat arrive separately: wait for both.
    const photo = await until(b, (name) => {
      const row = [...document.querySelectorAll("#files li[data-file-id]")].find((li) => li.querySelector(".file-name")?.textContent === name);
      const link = [...document.querySelectorAll("#messages a.file-link")].find((a) => a.textContent.includes(name))?.href;
      return row && link && { fileId: row.dataset.fileId, link };
    }, `photo-${marker}.png`, "the photo's row and its link in the chat");
    const served = await fetch(`${server.url}/api/rooms/${roomId}/files/${photo.fileId}/thumbnail`, {
      headers: { authorization: `Bearer ${await mint({ sub: "auditor", room: roomId, role: "moderator" })}` },
    });
    assert.equal(served.status, 200);
    const sealedAnswer = Buffer.from(await served.arrayBuffer());
    const thumbBytes = openThumbnail(Buffer.from(photo.link.split("#k1.")[1], "base64url"), sealedAnswer.subarray(0, 76), sealedAnswer.subarray(76));
    assert.equal(thumbBytes.subarray(8, 12).toString(), "WEBP");
    assert.ok(thumbBytes.length <= 65536);
    await until(b, () => document.querySelector("#messages img.thumb")?.naturalWidth > 0, null, "the thumbnail in the file's chat message");
    await b.screenshot({ path: join(shots, "roomup-member.png"), fullPage: true });
    await a1.screenshot({ path: join(shots, "roomup-uploader.png"), fullPage: true });

    // Privacy: storage holds neither the image nor its thumbnail (nor any name).
    const persistDir = server.persistDir;
    await server.stop();
    server = undefined;
    // Pieces of the thumbnail and the image that say only them (compressed image data:
    // no runs of zeros that any page of any SQLite file would hold too).
    const pieces = [thumbBytes, png].flatMap((buf) => {
      const out = [];
      for (let at = 32; at + 32 <= buf.length && out.length < 8; at += Math.max(32, Math.floor(buf.length / 12))) {
        const piece = buf.subarray(at, at + 32);
        if (new Set(piece).size >= 20) out.push(piece.toString("hex"));
      }
      return out;
    });
    assert.ok(pieces.length >= 8, `enough distinctive pieces (${pieces.length})`);
    const args = [...pieces.flatMap((hex) => ["--secret-hex", hex]),
      "--secret", `photo-${marker}.png`, "--secret", `Trip-${marker}`, "--secret", `big-${marker}.bin`];
    const scanner = leakscanBinary();
    const planted = join(work, "planted");
    mkdirSync(planted);
    writeFileSync(join(planted, "copy"), Buffer.concat([Buffer.from("xx"), Buffer.from(pieces[0], "hex")]));
    assert.equal(spawnSync(scanner, [...args, planted], { encoding: "utf8" }).status, 1, "the scan finds a planted piece of the thumbnail");
    const scan = spawnSync(scanner, [...args, persistDir], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
    assert.ok(scan.stdout, `the scan ran: ${scan.stderr}`);
    const report = JSON.parse(scan.stdout);
    assert.ok(report.bytesScanned > 64 * 1024 * 1024, "the scan read the stored file too");
    assert.deepEqual(report.leaks, [], "no thumbnail, image or name in storage");
    assert.equal(scan.status, 0);
  });
});

function leakscanBinary() {
  execFileSync("cargo", ["build", "--release", "--quiet", "-p", "leakscan"], { cwd: ROOT, stdio: "inherit" });
  const targetDir = JSON.parse(execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { cwd: ROOT, encoding: "utf8" })).target_directory;
  return join(targetDir, "release", "leakscan");
}
