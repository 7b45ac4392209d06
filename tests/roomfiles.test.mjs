// Files in rooms end to end (docs/PROTOCOL.md, Files in a room; issue 12): uploads tied
// to a room through the HTTP API with the room JWT, watched by several real WebSocket
// clients against the real worker in workerd. Sealed fields are made by the independent
// WebCrypto implementation; the worker only ever sees the sealed form.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startServer } from "./support/server.mjs";
import { startStack } from "./support/stack.mjs";
import { member, mint } from "./rooms/support.mjs";
import { roomCipher } from "./rooms/webcrypto-room.mjs";
import { assertError, postJson, roomCreateBody as roomCreateBodyWith, roomSealer, roomUpload as roomUploadTo } from "./rooms/files.mjs";

const work = mkdtempSync(join(tmpdir(), "sealdrop-roomfiles-"));
const PROCESSOR_SECRET = randomBytes(24).toString("hex");
let server;
let roomCount = 0;
const newRoom = () => `f${Date.now().toString(36)}${(roomCount++).toString(36)}`;
const sockets = [];
const join_ = async (room, sub, opts) => {
  const s = await member(server.url, room, sub, opts);
  sockets.push(s);
  return s;
};

before(async () => {
  server = await startServer({
    persistDir: join(work, "state"),
    secrets: { PROCESSORS: `transcoder:${PROCESSOR_SECRET}` },
  });
});

after(async () => {
  for (const s of sockets) { try { s.ws.close(); } catch { /* gone */ } }
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

const sealer = roomSealer();
const said = sealer.said;
const sealFile = (room, sender, field, text) => sealer.file(room, sender, field, text);
const sealMsg = (room, sender, text, field) => sealer.message(room, sender, text, field);
const openFile = (room, sender, field, sealed) => sealer.open(room, sender, field, sealed);
const roomCreateBody = (room, sub, opts) => roomCreateBodyWith(sealer, room, sub, opts);
const roomUpload = (room, sub, { url = server.url, ...opts } = {}) => roomUploadTo(url, sealer, room, sub, opts);

/** GET /api/rooms/{room}/files/{id} as `sub`. */
async function roomFile(room, sub, fileId) {
  const jwt = await mint({ sub, room });
  return fetch(`${server.url}/api/rooms/${room}/files/${fileId}`, { headers: { authorization: `Bearer ${jwt}` } });
}

const report = (url, fileId, body, secret = PROCESSOR_SECRET) =>
  postJson(`${url}/api/files/${fileId}/processing`, body, { authorization: `Bearer ${secret}` });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------
// Uploads in a room
// ---------------------------------------------------------------------------------

describe("room files: uploads", () => {
  test("an upload into a room is broadcast started, coalesced progress, completed and added", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const total = 1_000_000;
    const up = await roomUpload(room, "alice", { size: total });

    const started = await bob.event("file-upload-started");
    assert.equal(started.data.fileId, up.fileId);
    assert.equal(started.data.uploadId, up.fileId);
    assert.equal(started.data.userId, "alice");
    assert.equal(started.data.size, total);
    assert.equal(typeof started.seq, "number");
    assert.equal(started.data.sealedName, up.body.room.sealedName, "relayed exactly as sealed");
    assert.equal(await openFile(room, "alice", "name", started.data.sealedName), "holiday.mp4");

    // 100 reports, 10 ms apart: the room sends at most one per 250 ms, and the last.
    const from = bob.frames.length;
    const t0 = Date.now();
    for (let i = 1; i <= 100; i++) {
      alice.send("file-upload-progress", { fileId: up.fileId, bytesUploaded: i * (total / 100) });
      await sleep(10);
    }
    const last = await bob.waitFor(
      (f) => f.event === "file-upload-progress" && f.data.bytesUploaded === total,
      "the final progress value",
    );
    const elapsed = Date.now() - t0;
    const broadcasts = bob.frames.slice(from).filter((f) => f.event === "file-upload-progress");
    assert.ok(broadcasts.length >= 2, `the first report and the final one: ${broadcasts.length}`);
    assert.ok(broadcasts.length <= Math.floor(elapsed / 250) + 2,
      `${broadcasts.length} broadcasts in ${elapsed} ms: more than 4 a second`);
    assert.ok(broadcasts.length < 100, "reports were coalesced");
    for (let i = 1; i < broadcasts.length; i++) {
      assert.ok(broadcasts[i].data.bytesUploaded > broadcasts[i - 1].data.bytesUploaded, "only forward");
    }
    assert.equal(last, broadcasts.at(-1), "the final value is the last broadcast");
    assert.equal(last.data.totalBytes, total);
    assert.equal(last.data.percentage, 100);
    // Speed and ETA are the room's: measured from when it received the reports.
    assert.ok(last.data.uploadSpeed > 0, JSON.stringify(last.data));
    assert.equal(last.data.estimatedTimeRemaining, 0);
    // A report cannot carry its own speed.
    const forged = await alice.request("file-upload-progress",
      { fileId: up.fileId, bytesUploaded: total, uploadSpeed: 1e12 });
    assert.equal(forged.event, "error");
    assert.equal(forged.data.code, "invalid_data");

    await up.finish();
    const completed = await bob.event("file-upload-completed");
    assert.equal(completed.data.fileId, up.fileId);
    const added = await bob.event("file-added");
    assert.equal(added.data.file.id, up.fileId);
    assert.equal(added.data.file.uploadedBy, "alice");
    assert.equal(added.data.file.isFolder, false);
    assert.equal(added.data.file.size, total);
    assert.ok(added.seq > completed.seq, "completed, then added");

    const list = await bob.request("files");
    assert.equal(list.event, "ack");
    assert.deepEqual(list.data.files.map((f) => f.id), [up.fileId]);
    assert.equal(list.data.hasMore, false);
  });

  test("a backwards, oversized or foreign report is refused and changes nothing", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const up = await roomUpload(room, "alice", { size: 1000 });
    assert.equal((await alice.request("file-upload-progress", { fileId: up.fileId, bytesUploaded: 600 })).event, "ack");
    const back = await alice.request("file-upload-progress", { fileId: up.fileId, bytesUploaded: 500 });
    assert.equal(back.data.code, "invalid_progress");
    const over = await alice.request("file-upload-progress", { fileId: up.fileId, bytesUploaded: 1001 });
    assert.equal(over.data.code, "invalid_progress");
    const foreign = await bob.request("file-upload-progress", { fileId: up.fileId, bytesUploaded: 700 });
    assert.equal(foreign.data.code, "forbidden");
    // The snapshot a joiner gets still says 600.
    const carol = await join_(room, "carol");
    const snapshot = await carol.event("uploads");
    assert.equal(snapshot.data.uploads.length, 1);
    assert.equal(snapshot.data.uploads[0].bytesUploaded, 600);
  });

  test("a late joiner gets a snapshot of the uploads in flight", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const up = await roomUpload(room, "alice", { size: 4000 });
    await alice.request("file-upload-progress", { fileId: up.fileId, bytesUploaded: 1000 });
    await alice.request("file-upload-paused", { fileId: up.fileId });
    const carol = await join_(room, "carol");
    const { data } = await carol.event("uploads");
    assert.equal(data.roomId, room);
    const [entry] = data.uploads;
    assert.equal(entry.fileId, up.fileId);
    assert.equal(entry.userId, "alice");
    assert.equal(entry.state, "paused");
    assert.equal(entry.bytesUploaded, 1000);
    assert.equal(entry.totalBytes, 4000);
    assert.equal(entry.percentage, 25);
    assert.equal(entry.sealedName, up.body.room.sealedName);
  });

  test("another device of the uploader pauses and cancels the upload through the room", async () => {
    const room = newRoom();
    const uploading = await join_(room, "alice");
    const phone = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const up = await roomUpload(room, "alice", { size: 5000 });

    assert.equal((await bob.request("control-upload", { fileId: up.fileId, action: "pause" })).data.code, "forbidden");
    const ack = await phone.request("control-upload", { fileId: up.fileId, action: "pause" });
    assert.equal(ack.event, "ack");
    assert.equal(ack.data.delivered, 1, "the uploading device, not the asking one");
    const control = await uploading.event("upload-control");
    assert.deepEqual([control.data.fileId, control.data.action], [up.fileId, "pause"]);
    assert.equal(phone.frames.filter((f) => f.event === "upload-control").length, 0);
    // The uploading device obeys and says so; everyone sees it.
    assert.equal((await uploading.request("file-upload-paused", { fileId: up.fileId })).data.changed, true);
    const paused = await bob.event("file-upload-paused");
    assert.equal(paused.data.fileId, up.fileId);
    assert.equal((await uploading.request("file-upload-paused", { fileId: up.fileId })).data.changed, false);

    await phone.request("control-upload", { fileId: up.fileId, action: "cancel" });
    assert.equal((await uploading.event("upload-control", { n: 2 })).data.action, "cancel");
    assert.equal((await up.abort()).status, 204);
    const failed = await bob.event("file-upload-failed");
    assert.deepEqual([failed.data.fileId, failed.data.reason], [up.fileId, "cancelled"]);
    const list = await bob.request("files");
    assert.deepEqual(list.data.files, [], "a cancelled upload is no file");
  });

  test("only a joined member whose role may upload, in an unlocked room, creates an upload", async () => {
    const room = newRoom();
    await join_(room, "alice");
    await join_(room, "vera", { role: "viewer" });
    const mod = await join_(room, "mona", { role: "moderator" });
    const url = `${server.url}/api/uploads`;
    const body = await roomCreateBody(room, "alice");

    await assertError(await postJson(url, body), 401, "invalid_token");
    await assertError(await postJson(url, body, { authorization: "Bearer not.a.jwt" }), 401, "invalid_token");
    const elsewhere = await mint({ sub: "alice", room: "another-room" });
    await assertError(await postJson(url, body, { authorization: `Bearer ${elsewhere}` }), 403, "forbidden");
    const viewer = await mint({ sub: "vera", room, role: "viewer" });
    await assertError(await postJson(url, await roomCreateBody(room, "vera"), { authorization: `Bearer ${viewer}` }), 403, "forbidden");
    const stranger = await mint({ sub: "never-joined", room });
    await assertError(await postJson(url, await roomCreateBody(room, "never-joined"), { authorization: `Bearer ${stranger}` }), 403, "forbidden");
    const alice = await mint({ sub: "alice", room });
    const badName = { ...body, room: { ...body.room, sealedName: "not sealed!" } };
    await assertError(await postJson(url, badName, { authorization: `Bearer ${alice}` }), 400, "invalid_json");

    assert.equal((await mod.request("lock-room", {})).event, "ack");
    await assertError(await postJson(url, body, { authorization: `Bearer ${alice}` }), 403, "room_locked");
    assert.equal((await mod.request("unlock-room", {})).event, "ack");
    const res = await postJson(url, body, { authorization: `Bearer ${alice}` });
    assert.equal(res.status, 201, await res.text());
  });
});

// ---------------------------------------------------------------------------------
// The room's files
// ---------------------------------------------------------------------------------

describe("room files: sharing, folders, removal, audit", () => {
  test("share-file posts the sealed link into the chat, and history keeps it", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const up = await roomUpload(room, "alice");
    await up.finish();
    const link = `https://sealdrop.example/f/${up.fileId}#k1.${randomBytes(32).toString("base64url")}`;
    const ack = await alice.request("share-file", {
      fileId: up.fileId,
      link: await sealMsg(room, "alice", link, "link"),
      message: await sealMsg(room, "alice", "the cut from today"),
    });
    assert.equal(ack.event, "ack", JSON.stringify(ack));
    const message = await bob.event("new-message");
    assert.equal(message.data.file.fileId, up.fileId);
    const cipher = await roomCipher(new Uint8Array(32).fill(7), room);
    const opened = new TextDecoder().decode(
      await cipher.open({ event: "new-message", sender: "alice", field: "link" }, message.data.file.link));
    assert.equal(opened, link);
    const history = await bob.request("history", {});
    assert.ok(history.data.messages.some((m) => m.file?.fileId === up.fileId), JSON.stringify(history.data));
    const unknown = await alice.request("share-file", { fileId: "A".repeat(22), link: message.data.file.link });
    assert.equal(unknown.event, "error");
  });

  test("a folder is one entry, its files point at it, and removing it removes them and their storage", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const folder = await alice.request("create-folder", { sealedName: await sealFile(room, "alice", "name", "Holiday") });
    assert.equal(folder.event, "ack", JSON.stringify(folder));
    const folderId = folder.data.fileId;
    const a = await roomUpload(room, "alice", { parentId: folderId, path: "Holiday/day1/a.jpg", name: "a.jpg" });
    const b = await roomUpload(room, "alice", { parentId: folderId, path: "Holiday/b.jpg", name: "b.jpg" });
    await a.finish();
    await b.finish();
    const list = await bob.request("files");
    const byId = Object.fromEntries(list.data.files.map((f) => [f.id, f]));
    assert.equal(byId[folderId].isFolder, true);
    assert.equal(byId[a.fileId].parentId, folderId);
    assert.equal(byId[b.fileId].parentId, folderId);
    assert.equal(await openFile(room, "alice", "path", byId[a.fileId].sealedPath), "Holiday/day1/a.jpg");
    await assertError(await postJson(`${server.url}/api/uploads`, await roomCreateBody(room, "alice", { parentId: "d99999" }),
      { authorization: `Bearer ${await mint({ sub: "alice", room })}` }), 404, "file_not_found");

    assert.equal((await roomFile(room, "bob", a.fileId)).status, 200);
    assert.equal((await bob.request("remove-file", { fileId: folderId })).data.code, "forbidden");
    const removed = await alice.request("remove-file", { fileId: folderId });
    assert.equal(removed.event, "ack", JSON.stringify(removed));
    assert.deepEqual(new Set(removed.data.removed), new Set([a.fileId, b.fileId, folderId]));
    await bob.event("file-removed", { n: 3 });
    await assertError(await roomFile(room, "bob", a.fileId), 404, "file_not_found");
    await assertError(await fetch(`${server.url}/api/files/${b.fileId}`), 404, "file_not_found");
    assert.deepEqual((await bob.request("files")).data.files, []);
  });

  test("removing a file deletes its storage; a moderator may remove anyone's", async () => {
    const room = newRoom();
    await join_(room, "alice");
    const bob = await join_(room, "bob");
    const mod = await join_(room, "mona", { role: "moderator" });
    const up = await roomUpload(room, "alice");
    await up.finish();
    const res = await roomFile(room, "bob", up.fileId);
    const record = await res.json();
    assert.equal(res.status, 200, JSON.stringify(record));
    const blob = await fetch(record.download.url);
    assert.equal(blob.status, 200);
    assert.equal((await blob.arrayBuffer()).byteLength, up.plan.ciphertextSize);

    assert.equal((await bob.request("remove-file", { fileId: up.fileId })).data.code, "forbidden");
    const ack = await mod.request("remove-file", { fileId: up.fileId });
    assert.equal(ack.event, "ack", JSON.stringify(ack));
    const gone = await bob.event("file-removed");
    assert.deepEqual([gone.data.fileId, gone.data.removedBy], [up.fileId, "mona"]);
    const after = await fetch(record.download.url);
    assert.equal(after.status, 404, "storage deleted: the old download URL finds nothing");
    await after.body?.cancel();
    await assertError(await fetch(`${server.url}/api/files/${up.fileId}`), 404, "file_not_found");
  });

  test("every file operation is in the audit log, which only moderators read", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const mod = await join_(room, "mona", { role: "moderator" });
    const done = await roomUpload(room, "alice");
    await done.finish();
    const cancelled = await roomUpload(room, "alice");
    await cancelled.abort();
    await alice.request("share-file", { fileId: done.fileId, link: await sealMsg(room, "alice", `https://sealdrop.example/f/${done.fileId}#k1.${randomBytes(32).toString("base64url")}`, "link") });
    assert.equal((await bob.request("file-downloaded", { fileId: done.fileId })).event, "ack");
    await alice.request("remove-file", { fileId: done.fileId });

    assert.equal((await bob.request("audit", {})).data.code, "forbidden");
    const audit = await mod.request("audit", {});
    assert.equal(audit.event, "ack", JSON.stringify(audit));
    const seen = audit.data.entries.map((e) => [e.action, e.fileId, e.userId, e.detail ?? null]);
    assert.deepEqual(seen, [
      ["upload-started", done.fileId, "alice", null],
      ["upload-completed", done.fileId, "alice", null],
      ["upload-started", cancelled.fileId, "alice", null],
      ["upload-failed", cancelled.fileId, "alice", "cancelled"],
      ["shared", done.fileId, "alice", null],
      ["downloaded", done.fileId, "bob", null],
      ["removed", done.fileId, "alice", null],
    ]);
    for (const e of audit.data.entries) assert.ok(Date.parse(e.at) > 0, JSON.stringify(e));
    const page = await mod.request("audit", { beforeSeq: audit.data.entries[2].seq, limit: 1 });
    assert.deepEqual(page.data.entries.map((e) => e.seq), [audit.data.entries[1].seq]);
    assert.equal(page.data.hasMore, true);
  });
});

// ---------------------------------------------------------------------------------
// Processing status
// ---------------------------------------------------------------------------------

describe("room files: processing", () => {
  test("a processor drives a file through every state; subscribers see it in order", async () => {
    const room = newRoom();
    await join_(room, "alice");
    const bob = await join_(room, "bob");
    const carol = await join_(room, "carol");
    const up = await roomUpload(room, "alice");
    await up.finish();
    const sub = await bob.request("subscribe:file", { fileId: up.fileId });
    assert.equal(sub.event, "ack", JSON.stringify(sub));
    assert.equal((await bob.event("subscribed")).data.processing, null);

    await assertError(await report(server.url, up.fileId, { event: "started" }, "x".repeat(48)), 401, "invalid_token");
    await assertError(await report(server.url, up.fileId, { event: "progress", progress: 10 }), 409, "processing_out_of_order");
    assert.equal((await report(server.url, up.fileId, { event: "started", message: "transcoding", metadata: { codec: "h264" } })).status, 200);
    await assertError(await report(server.url, up.fileId, { event: "progress", progress: 101 }), 400, "invalid_json");
    await assertError(await report(server.url, up.fileId, { event: "progress", progress: 10, extra: 1 }), 400, "invalid_json");
    assert.equal((await report(server.url, up.fileId, { event: "progress", progress: 40 })).status, 200);
    await assertError(await report(server.url, up.fileId, { event: "progress", progress: 30 }), 409, "processing_out_of_order");
    assert.equal((await report(server.url, up.fileId, { event: "progress", progress: 90 })).status, 200);
    const finished = await report(server.url, up.fileId, { event: "completed", result: { duration: 12.5 } });
    assert.equal(finished.status, 200);
    assert.equal((await finished.json()).status, "completed");
    await assertError(await report(server.url, up.fileId, { event: "progress", progress: 95 }), 409, "processing_out_of_order");
    await assertError(await report(server.url, "A".repeat(22), { event: "started" }), 404, "file_not_found");

    const events = [];
    for (const name of ["processing:started", "processing:progress", "processing:completed"]) await bob.event(name);
    for (const f of bob.frames) if (f.event.startsWith("processing:")) events.push([f.event, f.data.progress ?? null]);
    assert.deepEqual(events, [
      ["processing:started", null],
      ["processing:progress", 40],
      ["processing:progress", 90],
      ["processing:completed", null],
    ]);
    assert.equal(bob.frames.find((f) => f.event === "processing:started").data.processor, "transcoder");
    assert.equal(carol.frames.filter((f) => f.event.startsWith("processing:")).length, 0, "only subscribers");
    const listed = (await carol.request("files")).data.files.find((f) => f.id === up.fileId);
    assert.equal(listed.processing.status, "completed");

    // A new run, then a failure; unsubscribed sockets hear nothing more.
    assert.equal((await bob.request("unsubscribe:file", { fileId: up.fileId })).event, "ack");
    assert.equal((await carol.request("subscribe:file", { fileId: up.fileId })).event, "ack");
    assert.equal((await report(server.url, up.fileId, { event: "started" })).status, 200);
    assert.equal((await report(server.url, up.fileId, { event: "failed", error: "codec not supported" })).status, 200);
    const failed = await carol.event("processing:failed");
    assert.equal(failed.data.error, "codec not supported");
    assert.equal(bob.frames.filter((f) => f.event === "processing:failed").length, 0);
  });
});

// ---------------------------------------------------------------------------------
// Offline members: webhooks through the queue
// ---------------------------------------------------------------------------------

describe("room files: webhooks for offline members", () => {
  const secret = randomBytes(32).toString("hex");
  const received = []; // { status, headers, body }
  let receiver;
  let hooked;
  let failuresLeft = 2;

  before(async () => {
    const { createServer } = await import("node:http");
    receiver = createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const parsed = JSON.parse(body);
        // Rooms named "nf…" never get a 2xx; the first two other deliveries fail too.
        const fail = parsed.roomId.startsWith("nf") || failuresLeft-- > 0;
        const status = fail ? 500 : 204;
        received.push({ status, headers: req.headers, body, parsed });
        res.writeHead(status).end();
      });
    });
    await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
    hooked = await startServer({
      vars: {
        WEBHOOK_URL: `http://127.0.0.1:${receiver.address().port}/hook`,
        NOTIFY_RETRY_BASE_SECONDS: "1",
        NOTIFY_MAX_ATTEMPTS: "3",
      },
      secrets: { WEBHOOK_SECRET: secret },
    });
  });

  after(async () => {
    await hooked?.stop();
    await new Promise((r) => receiver?.close(r) ?? r());
  });

  const until = async (check, what) => {
    for (let i = 0; i < 1200; i++) {
      const found = await check();
      if (found) return found;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  const verify = ({ headers, body }) => {
    const ts = headers["x-sealdrop-timestamp"];
    assert.match(ts, /^\d+$/);
    const mac = createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex");
    assert.equal(headers["x-sealdrop-signature"], `v1=${mac}`);
    assert.match(headers["content-type"], /^application\/json/);
  };

  test("an offline member is notified once per interval, retried until the receiver takes it", async () => {
    const room = newRoom();
    const open = (sub) => member(hooked.url, room, sub).then((s) => { sockets.push(s); return s; });
    const alice = await open("alice");
    const bob = await open("bob");
    const carol = await open("carol");
    await bob.close();
    const text = "meet at the north entrance";
    assert.equal((await alice.request("send-message", { text: await sealMsg(room, "alice", text) })).event, "ack");
    const deliveredToBob = await until(() => received.find((r) => r.parsed.userId === "bob" && r.status === 204), "bob's delivery");
    const bobs = received.filter((r) => r.parsed.userId === "bob");
    assert.deepEqual(bobs.map((r) => r.status), [500, 500, 204], "two failures, then delivered");
    assert.ok(bobs.every((r) => r.body === deliveredToBob.body), "every attempt carries the same body");
    bobs.forEach(verify);
    const n = deliveredToBob.parsed;
    assert.deepEqual([n.type, n.roomId, n.userId, n.kind, n.senderId], ["room.notification", room, "bob", "message", "alice"]);
    assert.equal(received.filter((r) => r.parsed.userId === "carol" || r.parsed.userId === "alice").length, 0,
      "connected members and the sender are not notified");

    // A file arrives: carol, now offline, hears of it; bob, notified a moment ago, does not.
    await carol.close();
    const up = await roomUpload(room, "alice", { url: hooked.url, name: "holiday.mp4" });
    await up.finish();
    const toCarol = await until(() => received.find((r) => r.parsed.userId === "carol" && r.status === 204), "carol's delivery");
    assert.equal(toCarol.parsed.kind, "file");
    verify(toCarol);
    assert.equal(received.filter((r) => r.parsed.userId === "bob").length, 3, "bob is not notified twice in 5 minutes");
    for (const r of received) {
      for (const secretText of [text, "holiday", up.body.room.sealedName, up.body.room.sealedKey]) {
        assert.ok(!r.body.includes(secretText), `a webhook body holds ${secretText}: ${r.body}`);
      }
    }
  });

  test("after the last failed attempt the failure is in the room's audit log", async () => {
    const room = `nf${newRoom()}`;
    const open = (sub, role) => member(hooked.url, room, sub, { role }).then((s) => { sockets.push(s); return s; });
    const mod = await open("mona", "moderator");
    const bob = await open("bob");
    await bob.close();
    await mod.request("send-message", { text: await sealMsg(room, "mona", "hello") });
    const entry = await until(async () => {
      const audit = await mod.request("audit", {});
      return audit.data.entries?.find((e) => e.action === "notification-failed");
    }, "notification-failed in the audit log");
    assert.deepEqual([entry.userId, entry.detail], ["bob", "message"]);
    assert.equal(received.filter((r) => r.parsed.roomId === room).length, 3, "NOTIFY_MAX_ATTEMPTS attempts");
  });
});

// ---------------------------------------------------------------------------------
// s3 mode: removal deletes the object from the bucket
// ---------------------------------------------------------------------------------

describe("room files: s3 mode", () => {
  test("removing a room file deletes its object from the bucket", async () => {
    const stack = await startStack({ provider: "s3" });
    try {
      const room = newRoom();
      const open = (sub) => member(stack.workerUrl, room, sub).then((s) => { sockets.push(s); return s; });
      const alice = await open("alice");
      const bob = await open("bob");
      const up = await roomUpload(room, "alice", { url: stack.workerUrl });
      await up.finish();
      const key = `files/${up.fileId}`;
      assert.deepEqual((await stack.s3.listObjects(key)).map((o) => o.key), [key], "the object is in the bucket");
      const ack = await alice.request("remove-file", { fileId: up.fileId });
      assert.equal(ack.event, "ack", JSON.stringify(ack));
      await bob.event("file-removed");
      assert.deepEqual(await stack.s3.listObjects(key), [], "and gone once the room says so");
    } finally {
      await stack.stop();
    }
  });
});

// ---------------------------------------------------------------------------------
// Privacy: the room's storage (and the files' sessions) hold nothing that was sealed
// ---------------------------------------------------------------------------------

describe("room files: privacy", () => {
  test("no file name, folder path, link, file key or message is in storage", async () => {
    const persistDir = server.persistDir;
    await server.stop();
    server = undefined;
    const secrets = [...said].filter((t) => t.length >= 7);
    assert.ok(secrets.length >= 10, `the tests sealed enough to look for (${secrets.length})`);
    const args = [];
    for (const text of secrets) {
      args.push("--secret", text);
      // File keys and link keys: their raw bytes too.
      if (/^[A-Za-z0-9_-]{43}$/.test(text)) args.push("--secret-hex", Buffer.from(text, "base64url").toString("hex"));
    }
    execFileSync("cargo", ["build", "--release", "--quiet", "-p", "leakscan"], { cwd: ROOT, stdio: "inherit" });
    const targetDir = JSON.parse(execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { cwd: ROOT, encoding: "utf8" })).target_directory;
    const scanner = join(targetDir, "release", "leakscan");
    // The scan can fail: a planted name is found.
    const planted = join(work, "planted");
    mkdirSync(planted);
    writeFileSync(join(planted, "copy"), `xx${secrets[0]}yy`);
    assert.equal(spawnSync(scanner, [...args, planted], { encoding: "utf8" }).status, 1);
    const stored = readdirSync(persistDir, { recursive: true }).map((p) => join(persistDir, p)).filter((p) => statSync(p).isFile());
    assert.ok(stored.some((p) => /Room/.test(p)), `the Room objects' storage is under ${persistDir}`);
    const scan = spawnSync(scanner, [...args, persistDir], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
    const report = JSON.parse(scan.stdout);
    assert.ok(report.bytesScanned > 0);
    assert.deepEqual(report.leaks, [], "nothing sealed is in storage");
    assert.equal(scan.status, 0);
  });
});
