// Rooms end to end: several real WebSocket clients against the real worker in workerd
// (docs/PROTOCOL.md). Tokens are minted by jose, sealed payloads by the independent
// WebCrypto implementation; the worker only ever sees the sealed form.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { jwtVerify } from "jose";
import { ROOT, startServer } from "./support/server.mjs";
import { RoomSocket, devSecret, member, mint, openText, sealText, unsecured } from "./rooms/support.mjs";

const work = mkdtempSync(join(tmpdir(), "sealdrop-rooms-"));
let server;
let quick; // a second worker with short auth and idle timeouts
let windowed; // a third with presence windows long enough that a burst of joins falls in one
let roomCount = 0;
/** A fresh room id per test, so tests never share a room. */
const newRoom = () => `t${Date.now().toString(36)}${(roomCount++).toString(36)}`;
const sockets = [];
const track = (s) => { sockets.push(s); return s; };

before(async () => {
  [server, quick, windowed] = await Promise.all([
    startServer({ persistDir: join(work, "state") }),
    startServer({ vars: { ROOM_AUTH_TIMEOUT_SECONDS: "2", ROOM_IDLE_TIMEOUT_SECONDS: "3" } }),
    // A window far longer than the test: only a numbered event (the message) closes it.
    startServer({ vars: { ROOM_PRESENCE_WINDOW_MS: "600000" } }),
  ]);
});

after(async () => {
  for (const s of sockets) { try { s.ws.close(); } catch { /* gone */ } }
  await Promise.all([server?.stop(), quick?.stop(), windowed?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

const join_ = (room, sub, opts) => member(server.url, room, sub, opts).then(track);

describe("rooms: authentication", () => {
  test("a valid token authenticates by frame and by subprotocol", async () => {
    const room = newRoom();
    const s = track(await RoomSocket.open(server.url, room));
    const who = await s.authenticate(await mint({ sub: "alice", name: "Alice", room }));
    assert.equal(who.userId, "alice");
    assert.equal(who.userName, "Alice");
    assert.match(who.sessionId, /^[A-Za-z0-9_-]{11}$/);
    const success = await s.event("authentication_successful");
    assert.equal(success.data.sessionId, who.sessionId);

    const token = await mint({ sub: "bob", room, role: "moderator" });
    const p = track(await RoomSocket.open(server.url, room, { protocols: ["sealdrop.v1", `sealdrop.token.${token}`] }));
    assert.equal(p.ws.protocol, "sealdrop.v1", "the room answers with the plain subprotocol, never the token");
    const ok = await p.event("authentication_successful");
    assert.equal(ok.data.role, "moderator");
  });

  test("every bad token is refused with its code and the socket closed with a 4xxx code", async () => {
    const room = newRoom();
    const now = Math.floor(Date.now() / 1000);
    const other = new TextEncoder().encode("a different secret of at least 32 bytes!!");
    const cases = [
      ["alg none", unsecured({ room }), "invalid_token", 4001],
      ["HS512", await mint({ room, alg: "HS512" }), "invalid_token", 4001],
      ["wrong signature", await mint({ room, secret: other }), "invalid_token", 4001],
      ["expired past the leeway", await mint({ room, exp: now - 61 }), "expired_token", 4002],
      ["not valid yet", await mint({ room, nbf: now + 120 }), "invalid_token", 4001],
      ["another audience", await mint({ room, aud: "not-sealdrop" }), "invalid_token", 4001],
      ["another room", await mint({ room: "elsewhere" }), "unauthorized", 4003],
      ["garbage", "not.a.token", "invalid_token", 4001],
    ];
    for (const [label, token, code, close] of cases) {
      const s = track(await RoomSocket.open(server.url, room));
      s.send("authenticate", { token }, "a1");
      const failed = await s.event("authentication_failed");
      assert.equal(failed.data.code, code, label);
      assert.ok(failed.data.reason.length > 0, label);
      const error = await s.event("error");
      assert.equal(error.data.id, "a1", label);
      assert.equal((await s.closed).code, close, label);
    }
    // Still within the leeway: accepted.
    const late = track(await RoomSocket.open(server.url, room));
    await late.authenticate(await mint({ room, exp: now - 30 }));
  });

  test("events before authentication are refused and the socket keeps working", async () => {
    const room = newRoom();
    const s = track(await RoomSocket.open(server.url, room));
    for (const event of ["join-room", "history", "leave-room", "lock-room"]) {
      const answer = await s.request(event, {});
      assert.equal(answer.data.code, "not_authenticated", event);
    }
    await s.authenticate(await mint({ room }));
    assert.equal((await s.request("join-room")).event, "ack");
  });

  test("a socket that does not authenticate in time is closed (4008)", async () => {
    const s = track(await RoomSocket.open(quick.url, newRoom()));
    assert.deepEqual(await s.closed, { code: 4008, reason: "authentication_timeout" });
  });

  test("`npm run token` prints a token the room accepts", async () => {
    const room = newRoom();
    const token = execFileSync(process.execPath, [join(ROOT, "scripts/token.mjs"), "--user", "tok", "--room", room, "--role", "owner"], { encoding: "utf8" }).trim();
    const s = track(await RoomSocket.open(server.url, room));
    const who = await s.authenticate(token);
    assert.deepEqual([who.userId, who.role], ["tok", "owner"]);
  });

  test("not a WebSocket: 426; not a room id: 404", async () => {
    const res = await fetch(`${server.url}/api/rooms/r1/ws`);
    assert.equal(res.status, 426);
    assert.equal((await res.json()).error.code, "upgrade_required");
    const bad = await fetch(`${server.url}/api/rooms/a.b/ws`);
    assert.equal(bad.status, 404);
    assert.equal((await bad.json()).error.code, "not_found");
  });

  test("the dev token route mints tokens jose verifies, only with DEV_LOGIN", async () => {
    const res = await fetch(`${server.url}/api/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Dev Dora", rooms: { r9: "owner" }, userId: "dora" }),
    });
    assert.equal(res.status, 200);
    const { token, userId, expiresAt } = await res.json();
    assert.equal(userId, "dora");
    assert.ok(expiresAt > Date.now());
    const { payload, protectedHeader } = await jwtVerify(token, devSecret(), { audience: "sealdrop", algorithms: ["HS256"] });
    assert.equal(protectedHeader.alg, "HS256");
    assert.deepEqual([payload.sub, payload.name, payload.rooms], ["dora", "Dev Dora", { r9: "owner" }]);
    const refused = await fetch(`${server.url}/api/dev/token`, { method: "POST", body: JSON.stringify({ name: "", rooms: {} }) });
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error.code, "invalid_json");
    // wrangler.toml never turns it on: a worker without DEV_LOGIN=true has no such route.
    assert.doesNotMatch(readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8"), /DEV_LOGIN/);
    const off = await startServer({ secrets: { DEV_LOGIN: "false" } });
    try {
      const gone = await fetch(`${off.url}/api/dev/token`, { method: "POST", body: "{}" });
      assert.equal(gone.status, 404);
      assert.equal((await gone.json()).error.code, "not_found");
    } finally {
      await off.stop();
    }
  });
});

describe("rooms: membership, presence, chat", () => {
  test("join, leave and presence with two devices of one user", async () => {
    const room = newRoom();
    const carol = await join_(room, "carol");
    const start = carol.frames.length;
    const phone = await join_(room, "alice");
    await carol.presenceIs({ alice: 1, carol: 1 });
    const laptop = await join_(room, "alice");
    await carol.presenceIs({ alice: 2, carol: 1 });
    // Others hear of joins and device counts only in presence-changed; the second device
    // is not a second member.
    const joins = carol.presenceChanges(start).flatMap((f) => f.data.joined);
    assert.deepEqual(joins.map((j) => j.userId), ["alice"]);
    assert.ok(joins[0].seq > 0);
    const names = new Set(carol.frames.slice(start).map((f) => f.event));
    assert.deepEqual([...names], ["presence-changed"]);
    const presence = laptop.frames.filter((f) => f.event === "presence");
    assert.equal(presence.length, 1, "a newcomer gets one snapshot");
    assert.deepEqual(laptop.online(), { alice: 2, carol: 1 });

    const mark = carol.frames.length;
    await phone.close();
    await laptop.close();
    await carol.presenceIs({ carol: 1 });
    const offline = carol.presenceChanges(mark).flatMap((f) => f.data.offline);
    assert.deepEqual(offline.map((u) => [u.userId, u.devices]), [["alice", 0]]);

    // leave-room ends the membership on every device.
    const a1 = await join_(room, "alice");
    const a2 = await join_(room, "alice");
    await carol.presenceIs({ alice: 2, carol: 1 });
    const before = carol.frames.length;
    const leave = await a1.request("leave-room");
    assert.equal(leave.event, "ack");
    const left = await carol.waitFor((f) => f.event === "presence-changed" && f.data.left.length > 0, "alice leaving");
    assert.deepEqual(left.data.left.map((u) => [u.userId, u.seq]), [["alice", leave.data.seq]]);
    assert.ok(carol.frames.indexOf(left) >= before);
    await carol.presenceIs({ carol: 1 });
    assert.equal((await a2.event("user-left")).seq, leave.data.seq);
    assert.equal((await a2.request("send-message", { text: await sealText(room, "alice", "x") })).data.code, "not_joined");
  });

  test("joins within one presence window: one presence-changed for each member, one snapshot for each newcomer", async () => {
    const room = newRoom();
    const carol = track(await member(windowed.url, room, "carol"));
    const start = carol.frames.length;
    const users = ["u1", "u2", "u3", "u4", "u5"];
    // Authenticated first, then all joining at once: one window holds every join.
    const newcomers = await Promise.all(users.map(async (sub) => {
      const s = track(await RoomSocket.open(windowed.url, room));
      await s.authenticate(await mint({ sub, room }));
      return s;
    }));
    const acks = await Promise.all(newcomers.map((s) => s.request("join-room")));
    assert.deepEqual(acks.map((a) => a.event), users.map(() => "ack"));
    assert.deepEqual(carol.presenceChanges(start), [], "the window is still open");
    // A message closes the window before it is sent: whoever reads it has heard of every join.
    const sent = await carol.request("send-message", { text: await sealText(room, "carol", "welcome") });
    assert.equal(sent.event, "ack");
    await carol.event("new-message");
    const got = carol.frames.slice(start).filter((f) => f.event !== "ack");
    assert.deepEqual(got.map((f) => f.event), ["presence-changed", "new-message"]);
    const [change] = got;
    const joined = change.data.joined;
    assert.deepEqual(joined.map((j) => j.userId).sort(), users);
    const seqs = joined.map((j) => j.seq);
    assert.deepEqual(seqs, seqs.slice().sort((a, b) => a - b), "in seq order");
    assert.equal(change.seq, Math.max(...seqs));
    assert.ok(got[1].seq > change.seq);
    assert.deepEqual(change.data.online.map((u) => [u.userId, u.devices]).sort(), users.map((u) => [u, 1]));
    const everyone = Object.fromEntries(["carol", ...users].map((u) => [u, 1]));
    assert.deepEqual(carol.online(), everyone);
    // Each newcomer: one snapshot, then only the joins after its own, in one frame (the
    // last to join: nothing), and never an event per join.
    let silent = 0;
    for (const [i, s] of newcomers.entries()) {
      await s.event("new-message");
      assert.equal(s.frames.filter((f) => f.event === "presence").length, 1);
      const changes = s.presenceChanges();
      assert.ok(changes.length <= 1, JSON.stringify(changes));
      if (changes.length === 0) silent += 1;
      assert.deepEqual(s.frames.filter((f) => f.event === "user-joined").map((f) => f.seq), [acks[i].data.head], "its own join, directly");
      assert.deepEqual(s.online(), everyone);
    }
    assert.equal(silent, 1, "only the last newcomer has nothing to hear");
  });

  test("messages arrive in order on every device, sealed, and history pages back without gaps", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const sent = [];
    for (let i = 0; i < 24; i++) {
      const from = i % 3 === 0 ? bob : alice;
      const sender = from === bob ? "bob" : "alice";
      const ack = await from.request("send-message", { text: await sealText(room, sender, `message ${i}`) });
      assert.equal(ack.event, "ack");
      sent.push({ seq: ack.data.seq, sender, text: `message ${i}` });
    }
    const seqs = sent.map((s) => s.seq);
    assert.deepEqual(seqs, seqs.slice().sort((a, b) => a - b), "acks in send order");
    const last = await alice.event("new-message", { n: 24 });
    assert.equal(last.seq, seqs.at(-1));
    const received = alice.frames.filter((f) => f.event === "new-message");
    assert.deepEqual(received.map((f) => f.seq), seqs, "every message once, in order");
    for (const [i, f] of received.entries()) {
      assert.equal(await openText(room, f.data.senderId, f.data.text), sent[i].text);
    }
    // Paging back 10 at a time gives every message exactly once.
    const paged = [];
    let beforeSeq;
    for (;;) {
      const page = await bob.request("history", beforeSeq ? { limit: 10, beforeSeq } : { limit: 10 });
      paged.unshift(...page.data.messages.map((m) => m.seq));
      beforeSeq = page.data.messages[0]?.seq;
      if (!page.data.hasMore) break;
    }
    assert.deepEqual(paged, seqs);
    // A late joiner gets the last 50 (here all 24) on join.
    const carol = await join_(room, "carol");
    const history = await carol.event("history");
    assert.deepEqual(history.data.messages.map((m) => m.seq), seqs);
  });

  test("read receipts: mark-as-read broadcasts message-read, only forward", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const { data } = await alice.request("send-message", { text: await sealText(room, "alice", "read me") });
    const ack = await bob.request("mark-as-read", { seq: data.seq });
    assert.equal(ack.data.seq, data.seq);
    const read = await alice.event("message-read");
    assert.deepEqual(read.data, { roomId: room, userId: "bob", seq: data.seq });
    assert.equal((await bob.request("mark-as-read", { seq: 1 })).data.seq, data.seq, "never backwards");
    assert.equal((await bob.request("mark-as-read", { seq: data.seq + 100 })).data.code, "invalid_seq");
  });

  test("moderators lock and unlock; a locked room admits no new members", async () => {
    const room = newRoom();
    const mod = await join_(room, "mod", { role: "moderator" });
    const alice = await join_(room, "alice");
    assert.equal((await alice.request("lock-room")).data.code, "forbidden");
    const reason = await sealText(room, "mod", "quiet hours", "reason", "room-locked");
    const ack = await mod.request("lock-room", { reason });
    assert.deepEqual([ack.data.locked, ack.data.changed], [true, true]);
    const locked = await alice.event("room-locked");
    assert.equal(locked.data.lockedBy, "mod");
    assert.equal(locked.data.reason, reason);
    const zoe = track(await RoomSocket.open(server.url, room));
    await zoe.authenticate(await mint({ sub: "zoe", room }));
    const refused = await zoe.request("join-room");
    assert.equal(refused.data.code, "room_locked");
    // alice was a member already: her reconnect is let in.
    await alice.close();
    const back = await join_(room, "alice");
    assert.equal(back.frames.find((f) => f.event === "room-state").data.lock.lockedBy, "mod");
    assert.equal((await mod.request("unlock-room")).data.changed, true);
    await back.event("room-unlocked");
    assert.equal((await zoe.request("join-room")).event, "ack");
  });

  test("30 messages a minute per user, then rate_limited with retryAfter", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const text = await sealText(room, "alice", "spam");
    for (let i = 0; i < 30; i++) {
      assert.equal((await alice.request("send-message", { text })).event, "ack", `message ${i + 1}`);
    }
    const refused = await alice.request("send-message", { text });
    assert.equal(refused.data.code, "rate_limited");
    assert.ok(refused.data.retryAfter >= 1 && refused.data.retryAfter <= 60, `retryAfter ${refused.data.retryAfter}`);
    assert.equal((await bob.request("send-message", { text: await sealText(room, "bob", "hi") })).event, "ack", "per user");
    assert.equal((await alice.request("history", { limit: 1 })).event, "ack", "the socket still works");
  });
});

describe("rooms: bad input", () => {
  test("every bad frame gets a precise error and the socket and room keep working", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const good = await sealText(room, "alice", "still fine");
    const cases = [
      ["{not json", "invalid_json"],
      ["[1,2,3]", "invalid_json"],
      [JSON.stringify({ event: "send-message", data: { text: good }, id: 42 }), "invalid_frame"],
      [JSON.stringify({ data: {}, id: "x1" }), "invalid_frame"],
      [JSON.stringify({ event: "send-message", data: { text: good }, extra: true, id: "x2" }), "invalid_frame"],
      [JSON.stringify({ event: "teleport", data: {}, id: "x3" }), "unknown_event"],
      [JSON.stringify({ event: "send-message", data: {}, id: "x4" }), "invalid_data"],
      [JSON.stringify({ event: "send-message", data: { text: 12 }, id: "x5" }), "invalid_data"],
      [JSON.stringify({ event: "send-message", data: { text: "plain text, not sealed" }, id: "x6" }), "invalid_data"],
      [JSON.stringify({ event: "mark-as-read", data: { seq: "7" }, id: "x7" }), "invalid_data"],
      [JSON.stringify({ event: "history", data: { limit: 1000 }, id: "x8" }), "invalid_data"],
      [JSON.stringify({ event: "send-message", data: { roomId: "another-room", text: good }, id: "x9" }), "wrong_room"],
      [JSON.stringify({ event: "join-room", data: { userId: "bob" }, id: "x10" }), "forbidden"],
      [JSON.stringify({ event: "send-message", data: { text: "A".repeat(70_000) } }), "frame_too_large"],
    ];
    for (const [i, [text, code]] of cases.entries()) {
      const from = alice.frames.length;
      alice.sendRaw(text);
      const error = await alice.event("error", { from });
      assert.equal(error.data.code, code, text.slice(0, 60));
      const id = (() => { try { return JSON.parse(text).id; } catch { return undefined; } })();
      if (typeof id === "string") assert.equal(error.data.id, id, "the error names the frame's id");
      const ack = await alice.request("send-message", { text: good });
      assert.equal(ack.event, "ack", `still works after ${code}`);
      await bob.event("new-message", { n: i + 1 });
    }
    const from = alice.frames.length;
    alice.ws.send(new Uint8Array([1, 2, 3]));
    assert.equal((await alice.event("error", { from })).data.code, "invalid_frame");
    assert.equal((await alice.request("history", { limit: 1 })).event, "ack");
  });
});

describe("rooms: reconnect, restart, hibernation", () => {
  test("a dropped socket resumes from its last seq; a resent request is not duplicated", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice");
    const bob = await join_(room, "bob");
    const { data: before } = await alice.request("send-message", { text: await sealText(room, "alice", "before") });
    await bob.waitFor((f) => f.seq === before.seq, "the message before the drop");
    const lastSeen = Math.max(...bob.frames.filter((f) => f.seq).map((f) => f.seq));
    await bob.close();
    const missed = [];
    for (const t of ["while away 1", "while away 2"]) {
      missed.push((await alice.request("send-message", { text: await sealText(room, "alice", t) })).data.seq);
    }
    // Resending the same request id (its ack was lost) gives the same message back.
    const text = await sealText(room, "alice", "once only");
    alice.send("send-message", { text }, "fixed-id-1");
    const first = await alice.waitFor((f) => f.event === "ack" && f.data.id === "fixed-id-1");
    const again = track(await RoomSocket.open(server.url, room));
    await again.authenticate(await mint({ sub: "alice", room }));
    await again.request("join-room");
    again.send("send-message", { text }, "fixed-id-1");
    const second = await again.waitFor((f) => f.event === "ack" && f.data.id === "fixed-id-1");
    assert.equal(second.data.seq, first.data.seq);
    assert.equal(second.data.duplicate, true);
    missed.push(first.data.seq);

    const back = await join_(room, "bob", { lastSeq: lastSeen });
    const replayed = back.frames.filter((f) => f.event === "new-message").map((f) => f.seq);
    assert.deepEqual(replayed, missed, "exactly what was missed, once each");
    assert.equal(back.joinAck.replayed, back.frames.filter((f) => f.seq).length);
    assert.equal(back.joinAck.resync, false);
    assert.ok(!back.frames.some((f) => f.event === "history"), "no history page when resuming");
  });

  test("a room restarted (the worker stopped and started again) resumes from storage", async () => {
    const room = newRoom();
    const alice = await join_(room, "alice", { role: "moderator" });
    const bob = await join_(room, "bob");
    await alice.request("send-message", { text: await sealText(room, "alice", "before the restart") });
    const { data: lock } = await alice.request("lock-room");
    await bob.waitFor((f) => f.seq === lock.seq, "the lock");
    const lastSeen = Math.max(...bob.frames.filter((f) => f.seq).map((f) => f.seq));
    await server.stop();
    await Promise.all([alice.closed, bob.closed]);
    server = await startServer({ persistDir: join(work, "state") });
    const alice2 = await join_(room, "alice", { role: "moderator" });
    const { data } = await alice2.request("send-message", { text: await sealText(room, "alice", "after the restart") });
    assert.equal(data.seq, lastSeen + 1, "numbering continues");
    const bob2 = await join_(room, "bob", { lastSeq: lastSeen });
    const replayed = bob2.frames.filter((f) => f.seq);
    assert.deepEqual(replayed.map((f) => f.event), ["new-message"]);
    assert.equal(await openText(room, "alice", replayed[0].data.text), "after the restart");
    assert.equal(bob2.frames.find((f) => f.event === "room-state").data.lock.lockedBy, "alice", "the lock survived");
  });

  test("a room hibernates (evicted with its sockets open), answers pings asleep, and wakes with presence intact", async () => {
    const room = newRoom();
    const wakes = () => readFileSync(server.logFile, "utf8").split("\n").filter((l) => l.includes(`room ${room}: woke`));
    const a1 = await join_(room, "alice");
    const a2 = await join_(room, "alice");
    const bob = await join_(room, "bob");
    assert.equal(wakes().length, 1, "woke once, for the first socket");
    // workerd evicts an object whose sockets are all hibernatable after 10 s without events.
    const deadline = Date.now() + 60_000;
    let pongs = 0;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5_000));
      // `ping` is answered by the platform: it must not wake the object.
      const got = a1.waitFor((f) => f.event === "(text)" && f.data === "pong" && a1.raw.filter((r) => r === "pong").length > pongs, "pong");
      a1.sendRaw("ping");
      await got;
      pongs += 1;
      if (pongs >= 4) break;
    }
    assert.equal(wakes().length, 1, "pings did not wake the object");
    // An event now wakes it: it must know every socket from their attachments alone.
    const carol = await join_(room, "carol");
    const woke = wakes();
    assert.equal(woke.length, 2, `the object was evicted and woke again: ${woke.join(" | ")}`);
    assert.match(woke[1], /woke with 3 sockets/);
    const presence = carol.frames.find((f) => f.event === "presence");
    const byUser = Object.fromEntries(presence.data.users.map((u) => [u.userId, u.devices]));
    assert.deepEqual(byUser, { alice: 2, bob: 1, carol: 1 });
    await bob.presenceIs({ alice: 2, bob: 1, carol: 1 });
    await a2.close();
    await bob.presenceIs({ alice: 1, bob: 1, carol: 1 });
  });

  test("a silent socket is closed at the idle timeout; a pinging one is not", async () => {
    const room = newRoom();
    const silent = track(await member(quick.url, room, "alice"));
    const alive = track(await member(quick.url, room, "bob"));
    const timer = setInterval(() => alive.sendRaw("ping"), 500);
    try {
      assert.deepEqual(await silent.closed, { code: 4010, reason: "idle_timeout" });
      await alive.presenceIs({ bob: 1 });
      assert.equal((await alive.request("history", { limit: 1 })).event, "ack");
    } finally {
      clearInterval(timer);
    }
  });
});
