// The HTTP API of docs/API.md over raw HTTP, against the real worker in `wrangler dev`
// (workerd, with Durable Objects and R2 simulated on disk). Every error case asserts
// the exact status and code. Headers and sealed metadata are built by hand from
// FORMAT.md §3: the server cannot tell them from real ones.
//
// Needs `bash scripts/build.sh` first. Workers run side by side: the main one, one with
// 2-second part URLs and uploads (expiry), one without SIGNING_SECRET, and a pair that
// shares one state folder (a restart).
//
// Races are made deterministic where the API allows: a part PUT is held mid-body with a
// raw HTTP request (headers and the first bytes sent, the rest on command), and the test
// waits until the session shows the write in flight before it acts.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { startServer } from "./support/server.mjs";

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/**
 * A 76-byte header (FORMAT.md §3): magic SDRP, version, suite, reserved, R, salt and a
 * commitment. The server has no key, so it cannot tell a random commitment from a real one.
 */
function makeHeader({ recordSize = 1024, version = 2, suite = 1, magic = "SDRP" } = {}) {
  const h = Buffer.alloc(76);
  h.write(magic, 0, "latin1");
  h[4] = version;
  h[5] = suite;
  h.writeUInt32BE(recordSize, 8);
  randomBytes(64).copy(h, 12);
  return h;
}

/** A create-upload body; `over` replaces or adds fields. */
function createBody(over = {}) {
  return {
    plaintextSize: 1000,
    header: makeHeader().toString("base64"),
    metadata: randomBytes(100).toString("base64"),
    ...over,
  };
}

const json = (body) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** `url` with the first character of its signature changed (never to itself). */
function tamperedSig(url) {
  const sig = new URL(url).searchParams.get("sig");
  const flipped = sig[0] === "A" ? `B${sig.slice(1)}` : `A${sig.slice(1)}`;
  return url.replace(`sig=${sig}`, `sig=${flipped}`);
}

/** Asserts an error answer: status, the exact JSON shape, the code. */
async function assertError(res, status, code) {
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
async function newUpload(base, over = {}) {
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

/**
 * Starts a PUT of `bytes` to `url` with its full Content-Length, sends the first
 * `sent` bytes and holds the rest. `finish()` sends the rest, `breakOff()` drops the
 * connection; `response` settles with `{ status, headers, json }` (or rejects if the
 * connection broke).
 */
function heldPut(url, bytes, sent = 1024 * 1024) {
  const u = new URL(url);
  const req = httpRequest({
    host: u.hostname,
    port: u.port,
    path: u.pathname + u.search,
    method: "PUT",
    headers: { "content-length": String(bytes.length) },
  });
  const response = new Promise((resolve, reject) => {
    req.on("response", (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : null });
      });
    });
    req.on("error", reject);
  });
  req.write(bytes.subarray(0, sent));
  return {
    response,
    finish: () => req.end(bytes.subarray(sent)),
    breakOff: () => req.destroy(),
  };
}

/** Waits (bounded) until `check()` is truthy; `what` names it when it never is. */
async function until(check, what, attempts = 600) {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`never happened: ${what}`);
}

/** Waits until part `n` of `up` has no record: a write of it has begun. */
async function writeInFlight(up, n) {
  await until(async () => {
    const status = await (await up.status()).json();
    return !status.parts.some((p) => p.partNumber === n);
  }, `a write of part ${n} in flight`);
}

/** Asserts a retryable busy answer: 503 upload_busy with a positive Retry-After. */
async function assertBusy(res) {
  const retryAfter = res.headers.get("retry-after");
  await assertError(res, 503, "upload_busy");
  assert.match(retryAfter ?? "", /^[1-9][0-9]*$/, `Retry-After: ${retryAfter}`);
}

/** Completes `up` with all its parts, answers the file record. */
async function uploadAll(up) {
  const parts = [];
  for (let n = 1; n <= up.plan.partCount; n++) parts.push(await up.putOk(n));
  const res = await up.complete(parts);
  const record = await res.json();
  assert.equal(res.status, 200, JSON.stringify(record));
  return { parts, record };
}

// A 3-part plan: 1 KiB records, parts of ~5 MiB (the smallest S3 allows), the last short.
const MULTI = { plaintextSize: 10 * MiB + 300_000, partSize: 5 * MiB };

// ---------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------

let server; // the main worker
let shortTtl; // part URLs and uploads that expire after 2 seconds
let noSecret; // SIGNING_SECRET overridden with an empty value
before(async () => {
  [server, shortTtl, noSecret] = await Promise.all([
    startServer(),
    startServer({ vars: { PART_URL_TTL_SECONDS: "2", UPLOAD_TTL_SECONDS: "2" } }),
    startServer({ vars: { SIGNING_SECRET: "" } }),
  ]);
});
after(async () => {
  await Promise.all([server?.stop(), shortTtl?.stop(), noSecret?.stop()]);
});

// ---------------------------------------------------------------------------------
// The happy path
// ---------------------------------------------------------------------------------

describe("a multi-part upload, end to end", () => {
  let up;
  let parts;
  let record;
  let lateUrl;

  test("create answers 201 with ids, the plan and the expiry", async () => {
    up = await newUpload(server.url, MULTI);
    assert.match(up.fileId, /^[A-Za-z0-9_-]{22}$/);
    assert.match(up.ownerToken, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(up.plan.partCount, 3);
    assert.equal(up.plan.recordSize, 1024);
    assert.ok(up.plan.partSize >= 5 * MiB);
    assert.ok(up.plan.lastPartSize < up.plan.partSize);
    // 6 days (UPLOAD_TTL_SECONDS): inside R2's own 7-day abort of unfinished uploads.
    const sixDays = 6 * 24 * 3600 * 1000;
    assert.ok(Math.abs(up.expiresAt - (Date.now() + sixDays)) < 5 * 60 * 1000, `${up.expiresAt}`);
  });

  test("part-urls signs worker URLs in request order", async () => {
    const urls = await up.urls([3, 1]);
    assert.deepEqual(urls.map((u) => u.partNumber), [3, 1]);
    for (const { url, expiresAt, partNumber } of urls) {
      assert.ok(url.startsWith(`${server.url}/blob/${up.fileId}/${partNumber}?`), url);
      assert.ok(expiresAt > Date.now() + 50 * 60 * 1000);
    }
  });

  test("every part PUTs with a quoted ETag; status lists the confirmed parts", async () => {
    parts = await Promise.all([up.putOk(2), up.putOk(1)]); // in parallel
    let res = await up.status();
    let status = await res.json();
    assert.equal(res.status, 200);
    assert.equal(status.state, "open");
    assert.deepEqual(status.plan, up.plan);
    assert.deepEqual(
      status.parts.map((p) => [p.partNumber, `"${p.etag.replace(/^"|"$/g, "")}"`, p.size]),
      [
        [1, parts[1].etag, up.plan.partSize],
        [2, parts[0].etag, up.plan.partSize],
      ],
    );
    parts = [parts[1], parts[0], await up.putOk(3)];
    // Re-sending a part replaces it.
    parts[2] = await up.putOk(3);
    res = await up.status();
    status = await res.json();
    assert.equal(status.parts.length, 3);
    assert.equal(status.parts[2].size, up.plan.lastPartSize);
  });

  test("complete answers the file record, and again for the same parts", async () => {
    [{ url: lateUrl }] = await up.urls([1]); // still signed, used after completion
    const res = await up.complete(parts);
    record = await res.json();
    assert.equal(res.status, 200, JSON.stringify(record));
    assert.equal(record.fileId, up.fileId);
    assert.equal(record.plaintextSize, MULTI.plaintextSize);
    assert.equal(record.ciphertextSize, up.plan.ciphertextSize);
    assert.equal(record.partCount, 3);
    assert.equal(record.partSize, up.plan.partSize);
    assert.ok(record.download.url.startsWith(`${server.url}/blob/${up.fileId}?`));
    // Idempotent: a retry after a lost answer gets the record again.
    const again = await up.complete(parts);
    const second = await again.json();
    assert.equal(again.status, 200);
    assert.deepEqual({ ...second, download: null }, { ...record, download: null });
    // Other parts on a completed upload: not open.
    const other = await up.complete([parts[0], parts[1]]);
    await assertError(other, 409, "upload_not_open");
    const status = await (await up.status()).json();
    assert.equal(status.state, "completed");
  });

  test("GET /api/files/{id} answers the record with a fresh download URL", async () => {
    const res = await fetch(`${server.url}/api/files/${up.fileId}`);
    const file = await res.json();
    assert.equal(res.status, 200);
    assert.deepEqual({ ...file, download: null }, { ...record, download: null });
    assert.ok(file.download.expiresAt > Date.now() + 10 * 60 * 1000);
  });

  test("the download URL serves the record section, whole and by range", async () => {
    const url = record.download.url;
    const size = up.data.length;
    let res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("accept-ranges"), "bytes");
    assert.equal(res.headers.get("content-length"), String(size));
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(up.data));

    const boundary = up.plan.partSize;
    for (const [range, start, end] of [
      ["bytes=0-0", 0, 0],
      ["bytes=10-1033", 10, 1033],
      [`bytes=${boundary - 100}-${boundary + 99}`, boundary - 100, boundary + 99], // across parts
      [`bytes=${2 * boundary - 5}-`, 2 * boundary - 5, size - 1], // into the last part
      ["bytes=-4096", size - 4096, size - 1],
      [`bytes=${size - 1}-${size + 1000}`, size - 1, size - 1], // clamped to the end
    ]) {
      res = await fetch(url, { headers: { range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/${size}`, range);
      assert.equal(res.headers.get("content-length"), String(end - start + 1), range);
      const got = Buffer.from(await res.arrayBuffer());
      assert.ok(got.equals(up.data.subarray(start, end + 1)), range);
    }

    res = await fetch(url, { method: "HEAD", headers: { range: "bytes=5-9" } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-length"), "5");
    res = await fetch(url, { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), String(size));

    res = await fetch(url, { headers: { range: `bytes=${size}-` } });
    assert.equal(res.headers.get("content-range"), `bytes */${size}`);
    await assertError(res, 416, "range_not_satisfiable");
    await assertError(await fetch(url, { headers: { range: "bytes=-0" } }), 416, "range_not_satisfiable");
    // A tampered or bent download URL.
    await assertError(await fetch(tamperedSig(url)), 403, "token_invalid");
  });

  test("DELETE after complete answers 409 upload_not_open, and so does a late PUT", async () => {
    await assertError(await up.abort(), 409, "upload_not_open");
    await assertError(await fetch(lateUrl, { method: "PUT", body: up.partBytes(1) }), 409, "upload_not_open");
    assert.equal((await (await up.status()).json()).state, "completed");
  });
});

// ---------------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------------

test("a worker restart keeps the session and its parts", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sealdrop-restart-"));
  try {
    let first = await startServer({ persistDir: dir });
    let up;
    let part1;
    try {
      up = await newUpload(first.url, { plaintextSize: 6 * MiB, partSize: 5 * MiB });
      assert.equal(up.plan.partCount, 2);
      part1 = await up.putOk(1);
    } finally {
      await first.stop();
    }
    const second = await startServer({ persistDir: dir });
    try {
      const base = second.url;
      const res = await fetch(`${base}/api/uploads/${up.fileId}`, { headers: up.auth });
      const status = await res.json();
      assert.equal(res.status, 200, JSON.stringify(status));
      assert.equal(status.state, "open");
      assert.deepEqual(status.parts.map((p) => p.partNumber), [1]);
      assert.equal(`"${status.parts[0].etag.replace(/^"|"$/g, "")}"`, part1.etag);
      // Resume on the new worker: part 2, complete, and every byte is there.
      const rebound = newUploadOn(base, up);
      const part2 = await rebound.putOk(2);
      const done = await rebound.complete([part1, part2]);
      const record = await done.json();
      assert.equal(done.status, 200, JSON.stringify(record));
      const body = Buffer.from(await (await fetch(record.download.url)).arrayBuffer());
      assert.ok(body.equals(up.data));
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `up`'s helpers pointed at another server (same file id, token and bytes). */
function newUploadOn(base, up) {
  const auth = up.auth;
  return {
    ...up,
    async putOk(n) {
      const res = await fetch(`${base}/api/uploads/${up.fileId}/part-urls`, {
        ...json({ partNumbers: [n] }),
        headers: { ...auth, "content-type": "application/json" },
      });
      const { urls } = await res.json();
      const put = await fetch(urls[0].url, { method: "PUT", body: up.partBytes(n) });
      const body = await put.json();
      assert.equal(put.status, 200, JSON.stringify(body));
      return { partNumber: n, etag: body.etag };
    },
    complete(parts) {
      return fetch(`${base}/api/uploads/${up.fileId}/complete`, {
        ...json({ parts }),
        headers: { ...auth, "content-type": "application/json" },
      });
    },
  };
}

// ---------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------

describe("create refuses bad requests", () => {
  const post = (body) => fetch(`${server.url}/api/uploads`, json(body));

  test("invalid JSON and unknown fields: 400 invalid_json", async () => {
    await assertError(await post("{not json"), 400, "invalid_json");
    await assertError(await post(""), 400, "invalid_json");
    await assertError(await post(createBody({ partsize: 5 })), 400, "invalid_json");
    await assertError(await post(createBody({ plaintextSize: -1 })), 400, "invalid_json");
    await assertError(await post({ header: "", metadata: "" }), 400, "invalid_json");
  });

  test("a header that is not v2: invalid_header / unsupported_version", async () => {
    const header = (h) => createBody({ header: h.toString("base64") });
    await assertError(await post(header(makeHeader({ magic: "SDRQ" }))), 400, "invalid_header");
    await assertError(await post(header(makeHeader({ version: 1 }))), 400, "unsupported_version");
    await assertError(await post(header(makeHeader({ version: 3 }))), 400, "unsupported_version");
    await assertError(await post(header(makeHeader({ suite: 2 }))), 400, "unsupported_version");
    await assertError(await post(header(makeHeader({ recordSize: 15 }))), 400, "invalid_header");
    await assertError(await post(header(makeHeader({ recordSize: 16 * MiB + 1 }))), 400, "invalid_header");
    await assertError(await post(header(makeHeader().subarray(0, 75))), 400, "invalid_header");
    // A version 1 header is 44 bytes: the length is checked first.
    await assertError(await post(header(makeHeader({ version: 1 }).subarray(0, 44))), 400, "invalid_header");
    await assertError(await post(createBody({ header: "%%%" })), 400, "invalid_header");
  });

  test("sealed metadata of an impossible size: 400 invalid_metadata", async () => {
    const meta = (n) => createBody({ metadata: randomBytes(n).toString("base64") });
    await assertError(await post(meta(27)), 400, "invalid_metadata");
    await assertError(await post(meta(2077)), 400, "invalid_metadata");
    // The limits themselves are fine.
    assert.equal((await post(meta(28))).status, 201);
    assert.equal((await post(meta(2076))).status, 201);
  });

  test("over the provider's largest file: 400 file_too_large", async () => {
    await assertError(await post(createBody({ plaintextSize: 6 * 2 ** 40 })), 400, "file_too_large");
  });

  test("a body over 64 KiB: 413 body_too_large", async () => {
    const big = JSON.stringify(createBody({ metadata: "A".repeat(70 * 1024) }));
    await assertError(await post(big), 413, "body_too_large");
  });
});

describe("owner calls", () => {
  let up;
  before(async () => {
    up = await newUpload(server.url, MULTI);
  });

  test("a missing or wrong owner token: 401 unauthorized", async () => {
    const other = await newUpload(server.url);
    for (const headers of [
      {},
      bearer(other.ownerToken),
      { authorization: up.ownerToken },
      { authorization: "Bearer " },
      { authorization: `Basic ${up.ownerToken}` },
      { authorization: `Bearer ${"x".repeat(5000)}` },
    ]) {
      await assertError(await up.status(headers), 401, "unauthorized");
      const res = await fetch(`${server.url}/api/uploads/${up.fileId}/part-urls`, {
        ...json({ partNumbers: [1] }),
        headers: { ...headers, "content-type": "application/json" },
      });
      await assertError(res, 401, "unauthorized");
    }
    await assertError(
      await fetch(`${server.url}/api/uploads/${up.fileId}`, { method: "DELETE" }),
      401,
      "unauthorized",
    );
    await assertError(
      await fetch(`${server.url}/api/uploads/${up.fileId}/complete`, json({ parts: [] })),
      401,
      "unauthorized",
    );
  });

  test("part numbers: 0, too high, 101 numbers, duplicates, none: 400 invalid_part_number", async () => {
    const ask = (partNumbers) =>
      fetch(`${server.url}/api/uploads/${up.fileId}/part-urls`, {
        ...json({ partNumbers }),
        headers: { ...up.auth, "content-type": "application/json" },
      });
    for (const numbers of [[0], [4], [1, 2, 1], [], Array.from({ length: 101 }, (_, i) => i + 1)]) {
      await assertError(await ask(numbers), 400, "invalid_part_number");
    }
    await assertError(await ask([-1]), 400, "invalid_json");
    await assertError(
      await fetch(`${server.url}/api/uploads/${up.fileId}/part-urls`, {
        ...json({ partNumbers: [1], extra: true }),
        headers: up.auth,
      }),
      400,
      "invalid_json",
    );
  });

  test("blob URLs: tampered, bent to another part or size: 403 token_invalid", async () => {
    const [{ url }] = await up.urls([1]);
    const body = up.partBytes(1);
    for (const bad of [
      tamperedSig(url),
      url.replace(`/${up.fileId}/1?`, `/${up.fileId}/2?`),
      url.replace(/size=\d+/, "size=5"),
      url.replace(/exp=\d+/, (m) => `exp=${Number(m.slice(4)) + 1000}`),
      url.split("?")[0],
    ]) {
      await assertError(await fetch(bad, { method: "PUT", body }), 403, "token_invalid");
    }
    // Malformed ids and part numbers never get as far as the signature.
    await assertError(await fetch(`${server.url}/blob/nope/1?${url.split("?")[1]}`, { method: "PUT", body }), 404, "file_not_found");
    await assertError(await fetch(url.replace(`/${up.fileId}/1?`, `/${up.fileId}/x?`), { method: "PUT", body }), 404, "not_found");
  });

  test("a part of the wrong size: 400 part_size_mismatch", async () => {
    const [{ url }] = await up.urls([1]);
    const right = up.partBytes(1);
    await assertError(await fetch(url, { method: "PUT", body: right.subarray(1) }), 400, "part_size_mismatch");
    await assertError(await fetch(url, { method: "PUT", body: Buffer.concat([right, Buffer.alloc(1)]) }), 400, "part_size_mismatch");
    await assertError(await fetch(url, { method: "PUT" }), 400, "part_size_mismatch");
    // A part must declare its length (as S3 requires): chunked bodies are refused.
    const chunked = (bytes) =>
      fetch(url, { method: "PUT", body: Readable.toWeb(Readable.from([bytes])), duplex: "half" });
    await assertError(await chunked(right), 400, "part_size_mismatch");
    await assertError(await chunked(right.subarray(1)), 400, "part_size_mismatch");
    // Nothing was recorded.
    const status = await (await up.status()).json();
    assert.deepEqual(status.parts, []);
  });

  test("complete: a missing part, a wrong ETag, a part out of the plan", async () => {
    const p1 = await up.putOk(1);
    await assertError(await up.complete([]), 409, "parts_missing");
    await assertError(await up.complete([p1]), 409, "parts_missing");
    await assertError(
      await up.complete([p1, { partNumber: 2, etag: '"x"' }, { partNumber: 3, etag: '"y"' }]),
      409,
      "parts_missing",
    );
    // The claim's shape is checked first, then each part against what storage holds.
    await assertError(await up.complete([{ partNumber: 1, etag: '"wrong"' }]), 409, "parts_missing");
    await assertError(
      await up.complete([{ partNumber: 1, etag: '"wrong"' }, { partNumber: 2, etag: '"x"' }, { partNumber: 3, etag: '"y"' }]),
      409,
      "etag_mismatch",
    );
    await assertError(await up.complete([{ partNumber: 9, etag: '"x"' }]), 400, "invalid_part_number");
    await assertError(await up.complete([{ partNumber: 1 }]), 400, "invalid_json");
    const big = JSON.stringify({ parts: [{ partNumber: 1, etag: "x".repeat(2 * MiB) }] });
    await assertError(
      await fetch(`${server.url}/api/uploads/${up.fileId}/complete`, { method: "POST", headers: up.auth, body: big }),
      413,
      "body_too_large",
    );
    const status = await (await up.status()).json();
    assert.equal(status.state, "open");
  });

  test("abort: 204 (twice), then PUT and complete answer 409 upload_not_open", async () => {
    const [{ url }] = await up.urls([2]);
    let res = await up.abort();
    assert.equal(res.status, 204);
    res = await up.abort();
    assert.equal(res.status, 204);
    const status = await (await up.status()).json();
    assert.equal(status.state, "aborted");
    assert.deepEqual(status.parts, []);
    await assertError(await fetch(url, { method: "PUT", body: up.partBytes(2) }), 409, "upload_not_open");
    await assertError(await up.complete([]), 409, "upload_not_open");
    await assertError(
      await fetch(`${server.url}/api/uploads/${up.fileId}/part-urls`, {
        ...json({ partNumbers: [1] }),
        headers: { ...up.auth, "content-type": "application/json" },
      }),
      409,
      "upload_not_open",
    );
    await assertError(await fetch(`${server.url}/api/files/${up.fileId}`), 404, "file_not_found");
  });

  test("complete racing DELETE and a second complete: one outcome, and the session agrees with storage", async () => {
    // Whatever the interleaving, the upload ends completed or aborted, never both. While
    // completing, DELETE and another complete are told to wait (503 upload_busy, with
    // Retry-After), never a final 409; once aborting, complete is final (409). The
    // file is downloadable iff completed. (protocol/tests/session_harness explores every
    // order of these deterministically; this checks the live worker agrees.)
    for (let round = 0; round < 5; round++) {
      const race = await newUpload(server.url, MULTI);
      const parts = [];
      for (let n = 1; n <= race.plan.partCount; n++) parts.push(await race.putOk(n));
      const [done, again, aborted] = await Promise.all([race.complete(parts), race.complete(parts), race.abort()]);
      const status = await (await race.status()).json();
      const file = await fetch(`${server.url}/api/files/${race.fileId}`);
      if (status.state === "completed") {
        for (const res of [done, again]) {
          if (res.status !== 200) await assertBusy(res);
        }
        assert.ok(done.status === 200 || again.status === 200, "one complete got the record");
        if (aborted.status === 503) await assertBusy(aborted);
        else await assertError(aborted, 409, "upload_not_open");
        assert.equal(file.status, 200);
        const record = await file.json();
        const blob = await fetch(record.download.url);
        assert.equal(blob.status, 200);
        assert.equal((await blob.arrayBuffer()).byteLength, race.plan.ciphertextSize);
        // A DELETE now is final.
        await assertError(await race.abort(), 409, "upload_not_open");
      } else {
        assert.equal(status.state, "aborted", JSON.stringify(status));
        assert.equal(aborted.status, 204);
        await assertError(done, 409, "upload_not_open");
        await assertError(again, 409, "upload_not_open");
        await assertError(file, 404, "file_not_found");
      }
    }
  });
});

// ---------------------------------------------------------------------------------
// Part writes: fenced, one at a time, never a final-looking answer for a retryable one
// ---------------------------------------------------------------------------------

describe("part writes in flight", () => {
  test("complete and a retry of the same part wait for a write in flight (503 + Retry-After), then go through", async () => {
    const up = await newUpload(server.url, MULTI);
    const parts = [];
    for (let n = 1; n <= up.plan.partCount; n++) parts.push(await up.putOk(n));
    const [{ url }] = await up.urls([2]);
    const held = heldPut(url, up.partBytes(2));
    await writeInFlight(up, 2);
    await assertBusy(await up.complete(parts));
    await assertBusy(await up.put(2));
    held.finish();
    const { status, headers, json: body } = await held.response;
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(headers.etag, body.etag);
    // Part 2 was written again: the old claim is stale, the new one completes.
    await assertError(await up.complete(parts), 409, "etag_mismatch");
    parts[1] = { partNumber: 2, etag: body.etag };
    const done = await up.complete(parts);
    assert.equal(done.status, 200, await done.clone().text());
  });

  test("a part whose body is mid-flight when the upload is aborted answers 409 upload_not_open, not 500", async () => {
    const up = await newUpload(server.url, MULTI);
    await up.putOk(1);
    const [{ url }] = await up.urls([1]);
    const held = heldPut(url, up.partBytes(1));
    await writeInFlight(up, 1);
    assert.equal((await up.abort()).status, 204);
    held.finish();
    const { status, json: body } = await held.response;
    assert.equal(status, 409, JSON.stringify(body));
    assert.equal(body.error.code, "upload_not_open");
    assert.equal((await (await up.status()).json()).state, "aborted");
  });

  test("a client that breaks off mid-part frees the part for its retry", async () => {
    const up = await newUpload(server.url, MULTI);
    await up.putOk(1);
    const [{ url }] = await up.urls([1]);
    const held = heldPut(url, up.partBytes(1));
    await writeInFlight(up, 1);
    held.breakOff();
    await held.response.catch(() => {}); // the connection is gone
    // The worker sees the body break, the session frees the part: the retry lands (a
    // 503 on the way is the write still being noticed, and says when to retry).
    let res;
    await until(async () => {
      res = await up.put(1);
      if (res.status !== 503) return true;
      await assertBusy(res);
      return false;
    }, "the part's retry accepted", 120);
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const status = await (await up.status()).json();
    assert.deepEqual(status.parts.map((p) => p.partNumber), [1]);
  });
});

test("a part write that outlasts its lease keeps it by renewing, and lands", async () => {
  // A worker whose part writes hold 6-second leases (renewed every 2 s): a body held for
  // longer than that must still land, with nothing else able to take the part meanwhile.
  const leased = await startServer({ vars: { PART_LEASE_SECONDS: "6" } });
  try {
    const up = await newUpload(leased.url, MULTI);
    // Part 1 recorded first, so that its record going away shows the held write began.
    await up.putOk(1);
    const [{ url }] = await up.urls([1]);
    const held = heldPut(url, up.partBytes(1));
    await writeInFlight(up, 1);
    // Wait well past the first lease; throughout, the part stays taken.
    const until = Date.now() + 9_000;
    while (Date.now() < until) {
      await assertBusy(await up.put(1));
      await new Promise((r) => setTimeout(r, 1_000));
    }
    held.finish();
    const { status, json: body } = await held.response;
    assert.equal(status, 200, JSON.stringify(body));
    const listed = (await (await up.status()).json()).parts;
    assert.deepEqual(listed.map((p) => [p.partNumber, `"${p.etag.replace(/^"|"$/g, "")}"`]), [[1, body.etag]]);
  } finally {
    await leased.stop();
  }
});

// ---------------------------------------------------------------------------------
// Idempotent create
// ---------------------------------------------------------------------------------

describe("idempotent create", () => {
  const key = () => randomBytes(16).toString("base64url");
  const post = (body) => fetch(`${server.url}/api/uploads`, json(body));

  test("the same key and body answer the same 201, even after completion", async () => {
    const body = createBody({ plaintextSize: 5000, idempotencyKey: key() });
    const first = await post(body);
    const created = await first.json();
    assert.equal(first.status, 201, JSON.stringify(created));
    const again = await post(body);
    assert.equal(again.status, 201);
    assert.deepEqual(await again.json(), created);
    // Still the same upload once it is completed.
    const data = randomBytes(created.plan.ciphertextSize);
    const rebound = newUploadOn(server.url, { ...created, auth: bearer(created.ownerToken), partBytes: () => data });
    const part = await rebound.putOk(1);
    assert.equal((await rebound.complete([part])).status, 200);
    const late = await post(body);
    assert.equal(late.status, 201);
    assert.deepEqual(await late.json(), created);
  });

  test("the same key with another body: 409 idempotency_conflict; a malformed key: 400", async () => {
    const k = key();
    const body = createBody({ idempotencyKey: k });
    assert.equal((await post(body)).status, 201);
    await assertError(await post({ ...body, plaintextSize: body.plaintextSize + 1 }), 409, "idempotency_conflict");
    await assertError(await post({ ...body, metadata: randomBytes(100).toString("base64") }), 409, "idempotency_conflict");
    for (const bad of ["", "short", k + "A", "AAAAAAAAAAAAAAAAAAAAAB", 5]) {
      await assertError(await post(createBody({ idempotencyKey: bad })), 400, "invalid_json");
    }
  });

  test("concurrent creates with one key make one upload", async () => {
    const body = createBody({ idempotencyKey: key() });
    const answers = await Promise.all(Array.from({ length: 4 }, () => post(body)));
    const created = [];
    for (const res of answers) {
      if (res.status === 503) {
        await assertBusy(res);
        const retry = await post(body);
        assert.equal(retry.status, 201);
        created.push(await retry.json());
      } else {
        assert.equal(res.status, 201);
        created.push(await res.json());
      }
    }
    for (const c of created) assert.deepEqual(c, created[0]);
    // Without a key, each create is a new upload.
    const [a, b] = await Promise.all([post(createBody()), post(createBody())]);
    assert.notEqual((await a.json()).fileId, (await b.json()).fileId);
  });
});

// ---------------------------------------------------------------------------------
// The API fixes of issue 10 §3
// ---------------------------------------------------------------------------------

describe("API details", () => {
  test("the Bearer scheme is case-insensitive", async () => {
    const up = await newUpload(server.url);
    for (const scheme of ["bearer", "BEARER", "Bearer", "bEaReR"]) {
      const res = await up.status({ authorization: `${scheme} ${up.ownerToken}` });
      assert.equal(res.status, 200, scheme);
      await res.body?.cancel();
    }
  });

  test("HEAD answers wherever GET does, without a body", async () => {
    const up = await newUpload(server.url, { plaintextSize: 5000 });
    const { record } = await uploadAll(up);
    for (const [path, headers] of [
      ["/api/health", {}],
      ["/api/limits", {}],
      [`/api/files/${up.fileId}`, {}],
      [`/api/uploads/${up.fileId}`, up.auth],
    ]) {
      const get = await fetch(`${server.url}${path}`, { headers });
      const text = await get.text();
      const head = await fetch(`${server.url}${path}`, { method: "HEAD", headers });
      assert.equal(head.status, get.status, path);
      assert.equal(head.headers.get("content-type"), get.headers.get("content-type"), path);
      assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(text)), path);
      assert.equal((await head.arrayBuffer()).byteLength, 0, path);
    }
    const head = await fetch(record.download.url, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(up.plan.ciphertextSize));
    // Errors answer HEAD too (status and headers).
    const missing = await fetch(`${server.url}/api/files/AAAAAAAAAAAAAAAAAAAAAA`, { method: "HEAD" });
    assert.equal(missing.status, 404);
  });

  test("GET /api/limits states what the provider accepts, and create applies exactly that", async () => {
    const res = await fetch(`${server.url}/api/limits`);
    const limits = await res.json();
    assert.equal(res.status, 200);
    assert.equal(limits.provider, "r2-binding");
    assert.equal(limits.maxParts, 10_000);
    assert.equal(limits.minPartSize, 5 * MiB);
    assert.deepEqual(limits.recordSizes, { min: 16, max: 16 * MiB, default: MiB });
    // r2-binding: a part is one Worker request body (R2_MAX_PART_BYTES, 95 MiB).
    assert.equal(limits.maxPartSize, 95 * MiB);
    // maxPlaintextSize is the largest file with the default record size: it plans
    // within every limit, and one byte more does not.
    const header = makeHeader({ recordSize: MiB }).toString("base64");
    const post = (plaintextSize) => fetch(`${server.url}/api/uploads`, json(createBody({ plaintextSize, header })));
    const largest = await post(limits.maxPlaintextSize);
    const created = await largest.json();
    assert.equal(largest.status, 201, JSON.stringify(created));
    const { plan } = created;
    assert.ok(plan.ciphertextSize <= limits.maxObjectSize);
    assert.ok(plan.partCount <= limits.maxParts && plan.partSize <= limits.maxPartSize);
    // Tight: the object is full, or every part is as large as a part of whole records
    // can be.
    const objectFull = plan.ciphertextSize > limits.maxObjectSize - 16 - MiB;
    const partsFull = plan.partCount === limits.maxParts && plan.lastPartSize === plan.partSize
      && plan.partSize + MiB + 16 > limits.maxPartSize;
    assert.ok(objectFull || partsFull, JSON.stringify(plan));
    const tooLarge = await post(limits.maxPlaintextSize + 1);
    assert.match((await tooLarge.clone().json()).error.message, /10000 parts of at most 99614720 bytes/);
    await assertError(tooLarge, 400, "file_too_large");
  });

  test("an oversized chunked JSON body gets a readable 413", async () => {
    // No Content-Length: the worker only learns the size while reading, and must still
    // drain the body so the client reads the answer instead of a reset connection.
    const big = Buffer.alloc(8 * MiB, " ");
    for (const path of ["/api/uploads", "/api/uploads/AAAAAAAAAAAAAAAAAAAAAA/complete"]) {
      const res = await fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: Readable.toWeb(Readable.from([big.subarray(0, MiB), big.subarray(MiB)])),
        duplex: "half",
      });
      await assertError(res, 413, "body_too_large");
    }
  });

  test("URLs come from PUBLIC_URL, never from the request's Host", async () => {
    const up = await newUpload(server.url);
    const body = JSON.stringify({ partNumbers: [1] });
    const u = new URL(server.url);
    const answer = await new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: u.hostname,
          port: u.port,
          path: `/api/uploads/${up.fileId}/part-urls`,
          method: "POST",
          headers: {
            host: "attacker.example",
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            ...up.auth,
          },
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks)) }));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.ok(answer.json.urls[0].url.startsWith(`${server.url}/blob/`), answer.json.urls[0].url);
  });
});

describe("routes", () => {
  const unknownId = "AAAAAAAAAAAAAAAAAAAAAA";

  test("unknown and malformed file ids: 404", async () => {
    const u = server.url;
    await assertError(await fetch(`${u}/api/files/${unknownId}`), 404, "file_not_found");
    await assertError(await fetch(`${u}/api/uploads/${unknownId}`, { headers: bearer(unknownId) }), 404, "upload_not_found");
    await assertError(await fetch(`${u}/api/files/not-an-id`), 404, "file_not_found");
    await assertError(await fetch(`${u}/api/files/${unknownId}A`), 404, "file_not_found");
    await assertError(await fetch(`${u}/api/uploads/AAAAAAAAAAAAAAAAAAAAAB`), 404, "upload_not_found");
    await assertError(await fetch(`${u}/api/uploads/%2e%2e`, json({ partNumbers: [1] })), 404, "not_found");
    await assertError(await fetch(`${u}/blob/${unknownId.slice(1)}?exp=1&sig=x`), 404, "file_not_found");
  });

  test("an in-progress upload has no file record", async () => {
    const up = await newUpload(server.url);
    await assertError(await fetch(`${server.url}/api/files/${up.fileId}`), 404, "file_not_found");
  });

  test("unknown routes: 404 not_found; wrong methods: 405 with Allow", async () => {
    const u = server.url;
    await assertError(await fetch(`${u}/api/nope`), 404, "not_found");
    await assertError(await fetch(`${u}/api/uploads/${unknownId}/nope`, { method: "POST" }), 404, "not_found");
    await assertError(await fetch(`${u}/blob/${unknownId}/1/2`), 404, "not_found");
    let res = await fetch(`${u}/api/uploads`);
    assert.equal(res.headers.get("allow"), "POST");
    await assertError(res, 405, "method_not_allowed");
    res = await fetch(`${u}/api/uploads/${unknownId}`, { method: "PUT" });
    assert.equal(res.headers.get("allow"), "GET, HEAD, DELETE");
    await assertError(res, 405, "method_not_allowed");
    await assertError(await fetch(`${u}/api/uploads/${unknownId}/complete`), 405, "method_not_allowed");
    await assertError(await fetch(`${u}/blob/${unknownId}/1`), 405, "method_not_allowed");
    await assertError(await fetch(`${u}/blob/${unknownId}`, { method: "POST" }), 405, "method_not_allowed");
  });

  test("CORS: preflight 204, and every answer allows any origin", async () => {
    const res = await fetch(`${server.url}/api/uploads`, {
      method: "OPTIONS",
      headers: {
        origin: "https://elsewhere.example",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "authorization, content-type, range",
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    for (const m of ["GET", "HEAD", "POST", "PUT", "DELETE"]) {
      assert.match(res.headers.get("access-control-allow-methods"), new RegExp(`\\b${m}\\b`));
    }
    for (const h of ["Authorization", "Content-Type", "Range"]) {
      assert.match(res.headers.get("access-control-allow-headers"), new RegExp(h));
    }
    const blob = await fetch(`${server.url}/blob/${unknownId}/1`, { method: "OPTIONS" });
    assert.equal(blob.status, 204);
    const err = await fetch(`${server.url}/api/nope`, { headers: { origin: "https://elsewhere.example" } });
    assert.equal(err.headers.get("access-control-allow-origin"), "*");
    assert.match(err.headers.get("access-control-expose-headers"), /ETag/);
    assert.match(err.headers.get("access-control-expose-headers"), /Content-Range/);
    assert.match(err.headers.get("access-control-expose-headers"), /Content-Length/);
  });
});

// ---------------------------------------------------------------------------------
// Expiry (a worker with 2-second part URLs and uploads)
// ---------------------------------------------------------------------------------

describe("expiry", () => {
  test("an expired part URL: 403 token_expired; the expired upload is aborted by its alarm", async () => {
    const up = await newUpload(shortTtl.url);
    const [{ url, expiresAt }] = await up.urls([1]);
    assert.ok(expiresAt <= Date.now() + 2_000);
    assert.ok(up.expiresAt <= Date.now() + 2_000);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 300));
    await assertError(await fetch(url, { method: "PUT", body: up.partBytes(1) }), 403, "token_expired");
    // A tampered URL stays token_invalid after its expiry (the signature is checked first).
    await assertError(await fetch(tamperedSig(url), { method: "PUT", body: up.partBytes(1) }), 403, "token_invalid");
    // Past the upload's expiry nothing is accepted, and the alarm aborts it.
    await assertError(
      await fetch(`${shortTtl.url}/api/uploads/${up.fileId}/part-urls`, {
        ...json({ partNumbers: [1] }),
        headers: { ...up.auth, "content-type": "application/json" },
      }),
      409,
      "upload_not_open",
    );
    let state;
    for (let i = 0; i < 50 && state !== "aborted"; i++) {
      state = (await (await up.status()).json()).state;
      if (state !== "aborted") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(state, "aborted");
  });
});

// ---------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------

test("without SIGNING_SECRET every upload and blob call answers 500 internal", async () => {
  const u = noSecret.url;
  const id = "AAAAAAAAAAAAAAAAAAAAAA";
  for (const [path, init] of [
    ["/api/uploads", json(createBody())],
    [`/api/uploads/${id}`, { headers: bearer(id) }],
    [`/api/files/${id}`, {}],
    [`/blob/${id}?exp=1&sig=x`, {}],
  ]) {
    const res = await fetch(`${u}${path}`, init);
    const body = await res.json();
    assert.equal(res.status, 500, path);
    assert.deepEqual(body, { error: { code: "internal", message: "internal error" } });
  }
  assert.equal((await fetch(`${u}/api/health`)).status, 200);
});

// ---------------------------------------------------------------------------------
// Still healthy
// ---------------------------------------------------------------------------------

test("after all the bad input, a fresh upload still works", async () => {
  const up = await newUpload(server.url, { plaintextSize: 5000 });
  assert.equal(up.plan.partCount, 1);
  const { record } = await uploadAll(up);
  const res = await fetch(record.download.url, { headers: { range: "bytes=100-199" } });
  assert.equal(res.status, 206);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(up.data.subarray(100, 200)));
});
