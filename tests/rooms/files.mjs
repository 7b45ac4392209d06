// Node-side helpers of the room file tests: sealing a room file's fields as the
// uploader's browser does (the independent WebCrypto implementation), and uploads
// into a room through the HTTP API with the room JWT (docs/API.md, Uploads into a
// room). The bytes are random ciphertext of the planned size: the server cannot tell.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mint } from "./support.mjs";
import { roomCipher } from "./webcrypto-room.mjs";

/**
 * Seals under `roomKey` (the tests' fixed key by default) and remembers every plaintext
 * in `said`, for the privacy scans.
 */
export function roomSealer(roomKey = new Uint8Array(32).fill(7)) {
  const said = new Set();
  const seal = async (room, ctx, plaintext) => (await roomCipher(roomKey, room)).seal(ctx, plaintext);
  return {
    said,
    /** A field of a room file (context event `file`): `name`, `type`, `path`. */
    file(room, sender, field, text) {
      said.add(text);
      return seal(room, { event: "file", sender, field }, text);
    },
    /** A file key, 32 random bytes sealed as bytes (field `key`); remembered as base64url. */
    key(room, sender, key = randomBytes(32)) {
      said.add(key.toString("base64url"));
      return seal(room, { event: "file", sender, field: "key" }, key);
    },
    /** A chat field (`text`, `link`) of `new-message`. */
    message(room, sender, text, field = "text") {
      said.add(text);
      return seal(room, { event: "new-message", sender, field }, text);
    },
    /** Opens a room file's field as text. */
    async open(room, sender, field, sealed) {
      const opened = await (await roomCipher(roomKey, room)).open({ event: "file", sender, field }, sealed);
      return new TextDecoder().decode(opened);
    },
  };
}

/** A 76-byte v2 header (FORMAT.md §3); the server cannot tell a random commitment. */
export function makeHeader(recordSize = 1024) {
  const h = Buffer.alloc(76);
  h.write("SDRP", 0, "latin1");
  h[4] = 2;
  h[5] = 1;
  h.writeUInt32BE(recordSize, 8);
  randomBytes(64).copy(h, 12);
  return h;
}

export const postJson = (url, body, headers = {}) => fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/** Asserts an error answer's status and code. */
export async function assertError(res, status, code) {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  assert.equal(JSON.parse(text).error.code, code, text);
}

/** The create body of an upload into `room` by `sub`, its sealed fields included. */
export async function roomCreateBody(sealer, room, sub, { size = 1000, name = "holiday.mp4", type = "video/mp4", path, parentId, expiresIn } = {}) {
  const roomPart = {
    roomId: room,
    sealedName: await sealer.file(room, sub, "name", name),
    sealedType: await sealer.file(room, sub, "type", type),
    sealedKey: await sealer.key(room, sub),
  };
  if (path !== undefined) roomPart.sealedPath = await sealer.file(room, sub, "path", path);
  if (parentId !== undefined) roomPart.parentId = parentId;
  return {
    plaintextSize: size,
    header: makeHeader().toString("base64"),
    metadata: randomBytes(100).toString("base64"),
    room: roomPart,
    ...(expiresIn === undefined ? {} : { expiresIn }),
  };
}

/**
 * Creates an upload into `room` on the worker at `url` as `sub` (with the room JWT);
 * `finish()` PUTs every planned part and completes, `abort()` cancels.
 */
export async function roomUpload(url, sealer, room, sub, { role = "member", ...opts } = {}) {
  const body = await roomCreateBody(sealer, room, sub, opts);
  const jwt = await mint({ sub, room, role });
  const res = await postJson(`${url}/api/uploads`, body, { authorization: `Bearer ${jwt}` });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const created = JSON.parse(text);
  const auth = { authorization: `Bearer ${created.ownerToken}` };
  const base = `${url}/api/uploads/${created.fileId}`;
  return {
    ...created,
    body,
    async finish() {
      const parts = [];
      const data = randomBytes(created.plan.ciphertextSize);
      for (let n = 1; n <= created.plan.partCount; n++) {
        const urls = await (await postJson(`${base}/part-urls`, { partNumbers: [n] }, auth)).json();
        const start = (n - 1) * created.plan.partSize;
        const size = n === created.plan.partCount ? created.plan.lastPartSize : created.plan.partSize;
        const put = await fetch(urls.urls[0].url, { method: "PUT", body: data.subarray(start, start + size) });
        const answer = await put.text();
        assert.equal(put.status, 200, answer);
        // The ETag header: the worker's /blob/ answer and S3's alike.
        parts.push({ partNumber: n, etag: put.headers.get("etag") });
      }
      const res = await postJson(`${base}/complete`, { parts }, auth);
      const record = await res.json();
      assert.equal(res.status, 200, JSON.stringify(record));
      return record;
    },
    abort: () => fetch(base, { method: "DELETE", headers: auth }),
  };
}
