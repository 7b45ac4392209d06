// The HTTP API as raw HTTP, for the node tests (api.test.mjs, shares.test.mjs):
// hand-built headers and sealed metadata (FORMAT.md §3; the server cannot tell them
// from real ones), uploads driven call by call, and exact error assertions.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

/**
 * A 76-byte header (FORMAT.md §3): magic SDRP, version, suite, reserved, R, salt and a
 * commitment. The server has no key, so it cannot tell a random commitment from a real one.
 */
export function makeHeader({ recordSize = 1024, version = 2, suite = 1, magic = "SDRP" } = {}) {
  const h = Buffer.alloc(76);
  h.write(magic, 0, "latin1");
  h[4] = version;
  h[5] = suite;
  h.writeUInt32BE(recordSize, 8);
  randomBytes(64).copy(h, 12);
  return h;
}

/** A create-upload body; `over` replaces or adds fields. */
export function createBody(over = {}) {
  return {
    plaintextSize: 1000,
    header: makeHeader().toString("base64"),
    metadata: randomBytes(100).toString("base64"),
    ...over,
  };
}

export const json = (body) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

export const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** Asserts an error answer: status, the exact JSON shape, the code. */
export async function assertError(res, status, code) {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, code, text);
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
}

/** One upload against `base`: create, then helpers bound to it. */
export async function newUpload(base, over = {}) {
  const res = await fetch(`${base}/api/uploads`, json(createBody(over)));
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const created = JSON.parse(text);
  const { fileId, ownerToken, plan } = created;
  const auth = bearer(ownerToken);
  const up = {
    ...created,
    auth,
    /** The record section this upload will PUT: random ciphertext of the planned size. */
    data: randomBytes(plan.ciphertextSize),
    partBytes(n) {
      const start = (n - 1) * plan.partSize;
      return this.data.subarray(start, start + (n === plan.partCount ? plan.lastPartSize : plan.partSize));
    },
    async urls(partNumbers) {
      const res = await fetch(`${base}/api/uploads/${fileId}/part-urls`, {
        ...json({ partNumbers }),
        headers: { ...auth, "content-type": "application/json" },
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body.urls;
    },
    async put(n, body = up.partBytes(n)) {
      const [{ url }] = await up.urls([n]);
      return fetch(url, { method: "PUT", body });
    },
    /** PUTs part `n` and answers the `{ partNumber, etag }` complete wants. */
    async putOk(n) {
      const res = await up.put(n);
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(res.headers.get("etag"), body.etag);
      assert.match(body.etag, /^".+"$/);
      return { partNumber: n, etag: body.etag };
    },
    complete(parts) {
      return fetch(`${base}/api/uploads/${fileId}/complete`, {
        ...json({ parts }),
        headers: { ...auth, "content-type": "application/json" },
      });
    },
    status(headers = auth) {
      return fetch(`${base}/api/uploads/${fileId}`, { headers });
    },
    abort() {
      return fetch(`${base}/api/uploads/${fileId}`, { method: "DELETE", headers: auth });
    },
  };
  return up;
}

/** Waits (bounded) until `check()` is truthy; `what` names it when it never is. */
export async function until(check, what, attempts = 600) {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`never happened: ${what}`);
}

/** Completes `up` with all its parts, answers the file record. */
export async function uploadAll(up) {
  const parts = [];
  for (let n = 1; n <= up.plan.partCount; n++) parts.push(await up.putOk(n));
  const res = await up.complete(parts);
  const record = await res.json();
  assert.equal(res.status, 200, JSON.stringify(record));
  return { parts, record };
}

