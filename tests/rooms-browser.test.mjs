// Rooms in Chromium against the real worker: the room payload vectors through the
// independent WebCrypto implementation, two people in one room through the real room
// page (create, share the link, join, chat, presence with two devices, read marks,
// lock), RoomClient's attachments, and then a scan of everything the room stored for
// any message, attachment, lock reason or key in the clear.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startServer } from "./support/server.mjs";
import { createRoom, launchBrowser, until } from "./support/browser.mjs";

const work = mkdtempSync(join(tmpdir(), "sealdrop-rooms-browser-"));
const persistDir = join(work, "state");
const shots = join(ROOT, "test-results");
const marker = randomBytes(4).toString("hex");
const said = []; // every plaintext that went through the room, for the scan
let server;
let alice; // two browsers: two people, each with their own storage
let bob;
let roomLink;

before(async () => {
  mkdirSync(shots, { recursive: true });
  server = await startServer({ persistDir });
  [alice, bob] = await Promise.all([launchBrowser(), launchBrowser()]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close()]);
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const messagesIn = (page) => page.$$eval("#messages li.message", (lis) => lis.map((li) => ({
  who: li.querySelector(".who").textContent,
  text: li.querySelector(".text").textContent,
  reads: li.querySelector(".reads").textContent,
})));

describe("rooms in the browser", () => {
  test("every room payload vector passes the independent WebCrypto implementation in Chromium", async () => {
    const page = await alice.newPage();
    // A page of the worker's origin (a secure context) without the app on it.
    await page.goto(`${server.url}/api/health`);
    const source = readFileSync(join(ROOT, "tests/rooms/webcrypto-room.mjs"), "utf8");
    const dir = join(ROOT, "tests/vectors/room");
    const files = readdirSync(dir).filter((f) => f.endsWith(".txt")).map((f) => readFileSync(join(dir, f), "utf8"));
    assert.ok(files.length >= 19);
    const results = await page.evaluate(async ({ source, files }) => {
      const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      const { checkVector } = await import(url);
      const out = [];
      for (const text of files) {
        try { out.push({ ok: await checkVector(text) }); } catch (e) { out.push({ error: String(e.message) }); }
      }
      // Negative control: a harness that passes anything must fail here.
      const altered = files.find((t) => t.includes("expect: success")).replace(/^plaintext: (..)/m, (_, b) => `plaintext: ${b === "00" ? "01" : "00"}`);
      let control = "passed";
      try { await checkVector(altered); } catch { control = "failed"; }
      return { out, control };
    }, { source, files });
    assert.deepEqual(results.out.filter((r) => r.error), [], "every vector passes");
    assert.equal(results.control, "failed", "an altered vector fails");
    await page.close();
  });

  test("create a room, share the link, two people chat with presence, read marks and a lock", async () => {
    // Alice makes a room: her browser makes the key, the page shows the link.
    const a = await alice.newPage();
    await createRoom(a, server.url, "Alice");
    roomLink = await a.inputValue("#room-link");
    assert.equal(roomLink, a.url());
    assert.match(await a.textContent("#me"), /Alice \(owner\)/);

    // Bob opens the link in his own browser and gives his name.
    const b = await bob.newPage();
    await b.goto(roomLink);
    await b.fill("#hello-name", "Bob");
    await b.click("#hello-form button[type=submit]");
    await until(b, () => document.querySelector("#conn")?.dataset.state === "open", null, "bob connected");
    assert.match(await b.textContent("#me"), /Bob \(member\)/);
    assert.equal(await b.isVisible("#lock"), false, "members have no lock button");

    const send = async (page, text) => {
      said.push(text);
      await page.fill("#text", text);
      await page.click("#composer button[type=submit]");
    };
    await send(a, `Hello Bob, this is Alice ${marker}`);
    await until(b, (t) => [...document.querySelectorAll("#messages .text")].some((e) => e.textContent === t), said[0], "bob sees alice's message");
    await send(b, `Hi Alice! Bob here ${marker}`);
    await until(a, (t) => [...document.querySelectorAll("#messages .text")].some((e) => e.textContent === t), said[1], "alice sees bob's reply");
    const seenByAlice = await messagesIn(a);
    assert.deepEqual(seenByAlice.map((m) => [m.who, m.text]), [["Alice", said[0]], ["Bob", said[1]]]);

    // Presence: Alice opens a second tab (a second device of the same user).
    const a2 = await alice.newPage();
    await a2.goto(roomLink);
    await until(a2, () => document.querySelector("#conn")?.dataset.state === "open", null, "alice's second tab");
    const members = await until(b, () => {
      const rows = [...document.querySelectorAll("#members li")].map((li) => li.textContent);
      return rows.some((r) => r.includes("Alice") && r.includes("2 devices")) && rows;
    }, null, "bob sees alice on two devices");
    assert.equal(members.length, 2);
    assert.ok(members.some((r) => r.includes("Bob") && r.includes("1 device")));
    // History: the second tab got both messages on join.
    assert.deepEqual((await messagesIn(a2)).map((m) => m.text), [said[0], said[1]]);

    // Read marks: Alice sees that Bob has read her message (and his own reply).
    await until(a, () => [...document.querySelectorAll("#messages .reads")].some((e) => e.textContent.includes("Read by Bob")), null, "read by Bob");

    // Lock: Alice (owner) locks with a sealed reason; Bob sees the banner.
    const reason = `quiet now ${marker}`;
    said.push(reason);
    a.once("dialog", (d) => d.accept(reason));
    await a.click("#lock");
    const banner = await until(b, () => { const e = document.querySelector("#locked"); return !e.hidden && e.textContent; }, null, "bob sees the lock");
    assert.match(banner, new RegExp(`Locked by Alice: ${reason}`));
    await a2.close();

    await a.screenshot({ path: join(shots, "room-alice.png"), fullPage: true });
    await b.screenshot({ path: join(shots, "room-bob.png"), fullPage: true });
    const create = await alice.newPage();
    await create.goto(`${server.url}/room`);
    await create.screenshot({ path: join(shots, "room-create.png"), fullPage: true });
    await Promise.all([create.close(), a.close(), b.close()]);
  });

  test("RoomClient seals text and attachments, and opens them for every device and in history", async () => {
    const page = await bob.newPage();
    await page.goto(`${server.url}/api/health`);
    const attachment = JSON.stringify({ url: `https://example.invalid/${marker}`, type: "image/png" });
    const text = `with an attachment ${marker}`;
    said.push(attachment, text);
    const got = await page.evaluate(async ({ link, text, attachment }) => {
      const mod = await import("/pkg/sealdrop_client.js");
      await mod.default();
      const token = async () => (await (await fetch("/api/dev/token", {
        method: "POST", headers: { "content-type": "application/json" },
        // The room is locked by now: only a moderator (or a member already) gets in.
        body: JSON.stringify({ name: "Carol", rooms: { [link.split("/r/")[1].split("#")[0]]: "moderator" } }),
      })).json()).token;
      const states = [];
      const received = [];
      const client = await mod.RoomClient.connect(link, {
        token, onStateChange: (s) => states.push(s), on: { "new-message": (m) => received.push(m) },
      });
      const ack = await client.sendMessage(text, [attachment]);
      // The message comes back to every device, opened.
      while (!received.some((m) => m.seq === ack.seq)) await new Promise((r) => setTimeout(r, 50));
      const mine = received.find((m) => m.seq === ack.seq);
      const page = await client.history({ limit: 2 });
      client.close();
      return { ack, mine, states, history: page.messages.map((m) => m.text), userId: client.userId };
    }, { link: roomLink, text, attachment });
    assert.equal(got.mine.text, text);
    assert.deepEqual(got.mine.attachments, [attachment]);
    assert.equal(got.mine.sealError, undefined);
    assert.equal(got.history.at(-1), text);
    assert.equal(got.ack.duplicate, false);
    assert.deepEqual(got.states, ["open", "closed"]);
    await page.close();
  });

  test("RoomClient reconnects after the worker restarts and sends what was queued once, in order", async () => {
    const page = await bob.newPage();
    await page.goto(`${server.url}/api/health`);
    await page.evaluate(async () => {
      const mod = await import("/pkg/sealdrop_client.js");
      await mod.default();
      const { roomId, link } = mod.RoomClient.createRoomLink();
      const token = async () => (await (await fetch("/api/dev/token", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "Dora", userId: "dora", rooms: { [roomId]: "owner" } }),
      })).json()).token;
      window.states = [];
      window.got = [];
      window.client = await mod.RoomClient.connect(link, {
        token, onStateChange: (s) => window.states.push(s), on: { "new-message": (m) => window.got.push(m) },
      });
      await window.client.sendMessage("before the restart");
    });
    const { port } = new URL(server.url);
    await server.stop();
    await page.waitForFunction(() => window.states.includes("reconnecting"), null, { timeout: 60_000 });
    const queued = [`queued one ${marker}`, `queued two ${marker}`];
    said.push(...queued);
    // Sent while the worker is down: they wait in the client's queue.
    await page.evaluate((texts) => { window.acks = Promise.all(texts.map((t) => window.client.sendMessage(t))); }, queued);
    server = await startServer({ persistDir, port: Number(port) });
    const result = await page.evaluate(async () => {
      const acks = await window.acks;
      const history = await window.client.history({ limit: 10 });
      const out = { acks, states: [...window.states], history: history.messages.map((m) => [m.seq, m.text]), got: window.got.map((m) => [m.seq, m.text]) };
      window.client.close();
      return out;
    });
    assert.equal(result.states[0], "open", JSON.stringify(result.states));
    assert.ok(result.states.includes("reconnecting"), JSON.stringify(result.states));
    assert.equal(result.states.at(-1), "open", JSON.stringify(result.states));
    const seqs = result.acks.map((a) => a.seq);
    assert.equal(seqs[1], seqs[0] + 1, "in order, one after the other");
    assert.deepEqual(result.history.map(([, t]) => t), ["before the restart", ...queued], "each stored exactly once");
    assert.deepEqual(result.got.map(([, t]) => t), ["before the restart", ...queued], "each delivered exactly once");
    await page.close();
  });

  test("the room's storage holds no message, attachment, lock reason or room key", async () => {
    await server.stop();
    server = undefined;
    assert.ok(said.length >= 5);
    const key = Buffer.from(roomLink.split("#k1.")[1], "base64url");
    assert.equal(key.length, 32);
    const args = [];
    for (const text of said) args.push("--secret", text);
    args.push("--secret-hex", key.toString("hex"), "--secret", key.toString("hex"), "--secret", key.toString("base64"), "--secret", key.toString("base64url"));
    const scanner = leakscanBinary();
    // The scan can fail: a planted message is found.
    const planted = join(work, "planted");
    mkdirSync(planted);
    writeFileSync(join(planted, "copy"), `xx${said[1]}yy`);
    const control = spawnSync(scanner, [...args, planted], { encoding: "utf8" });
    assert.equal(control.status, 1, control.stderr);
    const stored = readdirSync(persistDir, { recursive: true }).map((p) => join(persistDir, p)).filter((p) => statSync(p).isFile());
    assert.ok(stored.some((p) => /Room/.test(p)), `the Room objects' storage is under ${persistDir}`);
    const scan = spawnSync(scanner, [...args, persistDir], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
    const report = JSON.parse(scan.stdout);
    assert.ok(report.bytesScanned > 0);
    assert.deepEqual(report.leaks, [], "nothing said in the room is in its storage");
    assert.equal(scan.status, 0);
    // And the room did store the sealed forms (so the scan looked at the right place).
    const sqlite = stored.filter((p) => /Room/.test(p)).map((p) => readFileSync(p)).reduce((n, b) => n + b.length, 0);
    assert.ok(sqlite > 0);
  });
});

function leakscanBinary() {
  execFileSync("cargo", ["build", "--release", "--quiet", "-p", "leakscan"], { cwd: ROOT, stdio: "inherit" });
  const targetDir = JSON.parse(execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { cwd: ROOT, encoding: "utf8" })).target_directory;
  return join(targetDir, "release", "leakscan");
}
