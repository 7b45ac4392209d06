// Room files through the HTTP API (issue 12, what the room page needs of the server):
// an owner's `DELETE /api/files/{id}`, and a file's expiry, take the file out of its room (`file-removed`,
// audited), and a file's sealed thumbnail is stored by its owner and read by members
// (docs/API.md; the format is docs/FORMAT.md §10, checked in thumbnail-vectors).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startServer } from "./support/server.mjs";
import { member, mint } from "./rooms/support.mjs";
import { assertError, roomSealer, roomUpload } from "./rooms/files.mjs";

let server;
const sockets = [];
const sealer = roomSealer();
const room = `roomup-${randomBytes(4).toString("hex")}`;

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const s of sockets) { try { s.ws.close(); } catch { /* gone */ } }
  await server?.stop();
});

async function join(sub, role = "member") {
  const s = await member(server.url, room, sub, { role });
  sockets.push(s);
  return s;
}

describe("room files over HTTP", () => {
  test("an owner's DELETE of a room file removes it from the room", async () => {
    const alice = await join("alice");
    const mia = await join("mia", "moderator");
    const up = await roomUpload(server.url, sealer, room, "alice");
    await up.finish();
    await mia.event("file-added");
    const from = mia.frames.length;
    const owner = { authorization: `Bearer ${up.ownerToken}` };
    const res = await fetch(`${server.url}/api/files/${up.fileId}`, { method: "DELETE", headers: owner });
    assert.equal(res.status, 204, await res.text());
    assert.equal(res.headers.get("x-sealdrop-room"), null, "the internal mark is not answered");
    const removed = await mia.event("file-removed", { from });
    assert.equal(removed.data.fileId, up.fileId);
    assert.equal(removed.data.removedBy, "alice");
    assert.ok(removed.seq > 0, "numbered");
    const files = await alice.request("files", {});
    assert.ok(!files.data.files.some((f) => f.id === up.fileId), "no longer listed");
    const audit = await mia.request("audit", {});
    const last = audit.data.entries.at(-1);
    assert.deepEqual([last.action, last.fileId, last.userId], ["removed", up.fileId, "alice"]);
    // Members reading it now: the room no longer has it.
    const jwt = await mint({ sub: "mia", room, role: "moderator" });
    await assertError(await fetch(`${server.url}/api/rooms/${room}/files/${up.fileId}`, { headers: { authorization: `Bearer ${jwt}` } }), 404, "file_not_found");
    // A file outside any room is deleted as before.
    const plain = await fetch(`${server.url}/api/files/${up.fileId}`, { method: "DELETE", headers: owner });
    assert.equal(plain.status, 410);
  });

  test("a room file that expires leaves its room, as a deleted one does", async () => {
    const alice = await join("alice");
    const mia = await join("mia", "moderator");
    // One second of life from completion: the session's alarm deletes it, and tells
    // the room before its records (the room tie among them) are wiped.
    const up = await roomUpload(server.url, sealer, room, "alice", { expiresIn: 1 });
    const from = mia.frames.length;
    await up.finish();
    await mia.event("file-added", { from });
    const removed = await mia.event("file-removed", { from });
    assert.equal(removed.data.fileId, up.fileId);
    assert.equal(removed.data.removedBy, "alice");
    const files = await alice.request("files", {});
    assert.ok(!files.data.files.some((f) => f.id === up.fileId), "no longer listed");
    const audit = await mia.request("audit", {});
    const last = audit.data.entries.filter((e) => e.fileId === up.fileId).at(-1);
    assert.equal(last.action, "removed");
    const owner = { authorization: `Bearer ${up.ownerToken}` };
    const gone = await fetch(`${server.url}/api/files/${up.fileId}`, { headers: owner });
    assert.equal(gone.status, 410, "the file itself is gone");
  });

  test("a thumbnail is stored by the owner and read by members with the header", async () => {
    await join("bob");
    await join("carol");
    const up = await roomUpload(server.url, sealer, room, "bob");
    const owner = { authorization: `Bearer ${up.ownerToken}` };
    const put = (body, headers = owner) => fetch(`${server.url}/api/uploads/${up.fileId}/thumbnail`, {
      method: "PUT", headers: { "content-type": "application/octet-stream", ...headers }, body,
    });
    await assertError(await put(randomBytes(28)), 400, "invalid_thumbnail");
    await assertError(await put(randomBytes(12 + 65536 + 17)), 413, "body_too_large");
    assert.equal((await put(randomBytes(100), { authorization: `Bearer ${randomBytes(32).toString("base64url")}` })).status, 401, "only the owner");
    // While the upload is open; a second one replaces the first.
    assert.equal((await put(randomBytes(500))).status, 204);
    const sealed = randomBytes(12 + 4000 + 16);
    assert.equal((await put(sealed)).status, 204);
    const get = async (sub) => fetch(`${server.url}/api/rooms/${room}/files/${up.fileId}/thumbnail`, {
      headers: { authorization: `Bearer ${await mint({ sub, room })}` },
    });
    // Not a file of the room until it is completed.
    await assertError(await get("bob"), 404, "file_not_found");
    await up.finish();
    const res = await get("carol");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    const body = Buffer.from(await res.arrayBuffer());
    assert.deepEqual(body.subarray(0, 76), Buffer.from(up.body.header, "base64"), "the file's header first");
    assert.deepEqual(body.subarray(76), sealed, "then the sealed thumbnail, as stored");
    // A file without one; a stranger to the room.
    const other = await roomUpload(server.url, sealer, room, "bob");
    await other.finish();
    await assertError(await fetch(`${server.url}/api/rooms/${room}/files/${other.fileId}/thumbnail`, {
      headers: { authorization: `Bearer ${await mint({ sub: "carol", room })}` },
    }), 404, "thumbnail_not_found");
    await assertError(await fetch(`${server.url}/api/rooms/${room}/files/${up.fileId}/thumbnail`, {
      headers: { authorization: `Bearer ${await mint({ sub: "eve", room: "elsewhere" })}` },
    }), 403, "forbidden");
    // Deleted with the file.
    assert.equal((await fetch(`${server.url}/api/files/${up.fileId}`, { method: "DELETE", headers: owner })).status, 204);
    assert.notEqual((await get("carol")).status, 200);
  });
});
