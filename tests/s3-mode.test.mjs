// The worker in s3 mode against a real S3 server (nanio), beyond the uploads and
// downloads the per-provider suites run: the provider's limits, and the scheduled
// sweep, which lists the multipart uploads in nanio (ListMultipartUploads, signed by
// the worker), asks each old upload's session object, and aborts the ones no session
// owns. `wrangler dev` runs the cron handler on a GET of /cdn-cgi/handler/scheduled
// and answers once it has finished.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, describe, test } from "node:test";
import { checkS3 } from "./support/s3.mjs";
import { startStack } from "./support/stack.mjs";

const DAY_MS = 24 * 60 * 60 * 1000;

/** A key the worker writes: `files/<fileId>`, a fresh 128-bit id. */
const fileKey = () => `files/${randomBytes(16).toString("base64url")}`;

/**
 * Makes storage say the upload began `days` ago, past the 6-day session lifetime,
 * without waiting for it: nanio keeps an upload's start in its init.json.
 */
function backdate(s3, uploadId, days) {
  const file = join(s3.dataDir, ".nanio/multipart", uploadId, "init.json");
  const init = JSON.parse(readFileSync(file, "utf8"));
  init.initiated = new Date(Date.now() - days * DAY_MS).toISOString();
  writeFileSync(file, JSON.stringify(init));
}

/**
 * Creates an upload through the API: a 1-byte file, with the header and sealed
 * metadata of the one_byte test vector (so it follows the format wherever it goes).
 */
async function createUpload(stack, plaintextSize = 1) {
  const res = await postUpload(stack, plaintextSize);
  const created = await res.json();
  assert.equal(res.status, 201, JSON.stringify(created));
  return created;
}

/** `POST /api/uploads` of a file of `plaintextSize` bytes, with the one_byte vector's header. */
function postUpload(stack, plaintextSize) {
  const vector = readFileSync(fileURLToPath(new URL("./vectors/one_byte.txt", import.meta.url)), "utf8");
  const field = (name) => Buffer.from(vector.match(new RegExp(`^${name}: ([0-9a-f]+)$`, "m"))[1], "hex").toString("base64");
  return fetch(`${stack.workerUrl}/api/uploads`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ plaintextSize, header: field("header"), metadata: field("metadata") }),
  });
}

/** Runs the worker's cron handler once, to its end. */
async function sweep(stack) {
  const res = await fetch(`${stack.workerUrl}/cdn-cgi/handler/scheduled?cron=17+*+*+*+*`);
  assert.equal(res.status, 200, await res.text());
}

/** The keys of the uploads storage still has, sorted. */
async function openUploads(s3) {
  return (await s3.listMultipartUploads()).map((u) => u.key).sort();
}

let stack;
before(async () => {
  stack = await startStack({ provider: "s3" });
});
after(async () => {
  await stack?.stop();
});

describe("s3 mode: limits", () => {
  test("GET /api/limits states S3's, and files past what r2-binding allows plan", async () => {
    const res = await fetch(`${stack.workerUrl}/api/limits`);
    const limits = await res.json();
    assert.equal(res.status, 200);
    const { recordSizes, ...sizes } = limits;
    assert.deepEqual(sizes, {
      provider: "s3", minPartSize: 5 * 2 ** 20, maxPartSize: 5 * 2 ** 30, maxParts: 10_000,
      maxObjectSize: 53_687_091_200_000, maxPlaintextSize: 53_676_605_440_000,
    });
    assert.deepEqual(recordSizes, { min: 16, max: 16 * 2 ** 20, default: 2 ** 20 });
    // 2 TiB: twice what r2-binding's 95 MiB parts hold (the vector's records are small,
    // so the parts grow to fit 10,000 of them).
    const { fileId, ownerToken, plan } = await createUpload(stack, 2 * 2 ** 40);
    assert.ok(plan.partSize > 95 * 2 ** 20 && plan.partSize <= limits.maxPartSize, JSON.stringify(plan));
    assert.ok(plan.partCount <= 10_000);
    const deleted = await fetch(`${stack.workerUrl}/api/uploads/${fileId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ownerToken}` },
    });
    assert.equal(deleted.status, 204);
    const tooLarge = await postUpload(stack, 60 * 2 ** 40);
    assert.equal(tooLarge.status, 400);
    assert.equal((await tooLarge.json()).error.code, "file_too_large");
  });
});

describe("s3 mode: the sweep", () => {
  test("aborts old uploads under files/ that have no session, and nothing else", async () => {
    const { s3 } = stack;
    const orphan = fileKey();
    const young = fileKey();
    const foreign = `other/${randomBytes(16).toString("base64url")}`;
    const notAFile = "files/not-a-file-id";
    const ids = {};
    for (const key of [orphan, young, foreign, notAFile]) ids[key] = await s3.createMultipartUpload(key);
    const part = await s3.request("PUT", orphan, { query: { partNumber: 1, uploadId: ids[orphan] }, body: "parts go too" });
    await checkS3(part);
    for (const key of [orphan, foreign, notAFile]) backdate(s3, ids[key], 7);
    // Just inside the lifetime: still young.
    backdate(s3, ids[young], 5.9);

    await sweep(stack);
    const kept = [young, foreign, notAFile].sort();
    assert.deepEqual(await openUploads(s3), kept);
    await assert.rejects(s3.listParts(orphan, ids[orphan]), { code: "NoSuchUpload" });

    // Again: nothing left to do, nothing else touched.
    await sweep(stack);
    assert.deepEqual(await openUploads(s3), kept);
  });

  test("keeps an old upload its session still uses, aborts a leftover of the same file", async () => {
    const { s3 } = stack;
    const { fileId, ownerToken } = await createUpload(stack);
    const key = `files/${fileId}`;
    const [used] = (await s3.listMultipartUploads()).filter((u) => u.key === key).map((u) => u.uploadId);
    assert.ok(used, "the create made a multipart upload");
    // As if an earlier create of the same file had made one and lost its answer.
    const leftover = await s3.createMultipartUpload(key);
    backdate(s3, used, 7);
    backdate(s3, leftover, 7);

    await sweep(stack);
    const left = (await s3.listMultipartUploads()).filter((u) => u.key === key).map((u) => u.uploadId);
    assert.deepEqual(left, [used]);

    // The owner aborts: the session's own upload goes too.
    const res = await fetch(`${stack.workerUrl}/api/uploads/${fileId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ownerToken}` },
    });
    assert.equal(res.status, 204);
    assert.ok(!(await openUploads(s3)).includes(key));
  });

  test("a worker whose S3 secret is wrong aborts nothing (storage checks every signature)", async () => {
    const { s3 } = stack;
    const orphan = fileKey();
    const id = await s3.createMultipartUpload(orphan);
    backdate(s3, id, 7);
    const wrong = await startStack({ provider: "s3", s3, secrets: { S3_SECRET_ACCESS_KEY: "not-the-secret" } });
    try {
      await sweep(wrong);
    } finally {
      await wrong.stop();
    }
    assert.ok((await openUploads(s3)).includes(orphan));
    await sweep(stack);
    assert.ok(!(await openUploads(s3)).includes(orphan));
  });
});

// ---------------------------------------------------------------------------------
// Completion's error paths against real storage (nanio, behind the fault proxy that
// also carries the worker's own calls). A worker whose failed steps are retried after
// 1 s, so the completion's checks of the object run in seconds rather than minutes.
// ---------------------------------------------------------------------------------

describe("s3 mode: completion against storage that refuses, loses or delays", () => {
  let fast;
  before(async () => {
    fast = await startStack({ provider: "s3", s3: stack.s3, vars: { STEP_RETRY_SECONDS: "1" } });
  });
  after(async () => {
    await fast?.stop();
  });
  afterEach(() => fast.proxy.clearFaults());

  /** A new 1-byte upload on `fast`, with its one part sent: { fileId, auth, parts }. */
  async function uploadOnePart() {
    const { fileId, ownerToken, plan } = await createUpload(fast);
    const auth = { authorization: `Bearer ${ownerToken}` };
    const res = await fetch(`${fast.workerUrl}/api/uploads/${fileId}/part-urls`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ partNumbers: [1] }),
    });
    const { urls } = await res.json();
    assert.equal(res.status, 200);
    const put = await fetch(urls[0].url, { method: "PUT", body: randomBytes(plan.lastPartSize) });
    assert.equal(put.status, 200, await put.text());
    return { fileId, auth, url: urls[0].url, plan, parts: [{ partNumber: 1, etag: put.headers.get("etag") }] };
  }

  const api = (up, path = "", init = {}) =>
    fetch(`${fast.workerUrl}/api/uploads/${up.fileId}${path}`, { ...init, headers: { ...up.auth, ...init.headers } });
  const complete = (up, parts = up.parts) =>
    api(up, "/complete", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ parts }) });
  const state = async (up) => (await (await api(up)).json()).state;
  /** CompleteMultipartUpload, as the worker sends it (the POST with `uploadId`). */
  const completeCall = { method: "POST", query: { uploadId: true } };

  test("a part of another size than its URL signs is refused by storage", async () => {
    const up = await uploadOnePart();
    for (const size of [up.plan.lastPartSize - 1, up.plan.lastPartSize + 1]) {
      const res = await fetch(up.url, { method: "PUT", body: randomBytes(size) });
      assert.equal(res.status, 403, `${size} bytes: ${await res.text()}`);
    }
    // The part sent with its size is still the one storage holds.
    const { parts } = await (await api(up)).json();
    assert.deepEqual(parts.map((p) => [p.partNumber, p.etag, p.size]), [[1, up.parts[0].etag, up.plan.lastPartSize]]);
  });

  test("a claimed ETag that ListParts does not back: 409 etag_mismatch, and the upload stays open", async () => {
    const up = await uploadOnePart();
    const wrong = [{ partNumber: 1, etag: '"00000000000000000000000000000000"' }];
    const res = await complete(up, wrong);
    const body = await res.json();
    assert.equal(res.status, 409, JSON.stringify(body));
    assert.equal(body.error.code, "etag_mismatch");
    assert.equal(await state(up), "open");
    assert.equal((await complete(up)).status, 200);
  });

  test("a completion storage refuses: 409 parts_missing, open again, and the next one completes", async () => {
    const up = await uploadOnePart();
    fast.proxy.inject({
      ...completeCall,
      fault: "status",
      status: 400,
      body: "<Error><Code>InvalidPart</Code><Message>refused</Message></Error>",
    });
    const res = await complete(up);
    const body = await res.json();
    assert.equal(res.status, 409, JSON.stringify(body));
    assert.equal(body.error.code, "parts_missing");
    assert.equal(await state(up), "open");
    const done = await complete(up);
    assert.equal(done.status, 200, await done.clone().text());
    assert.equal(await state(up), "completed");
  });

  test("a completion whose answer is lost is found by checking the object", async () => {
    const up = await uploadOnePart();
    // Storage completes; the answer never reaches the worker.
    fast.proxy.inject({ ...completeCall, fault: "reset", at: "response-body", afterBytes: 0 });
    const res = await complete(up);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(await state(up), "completed");
  });

  test("a completion that lands after the session gave up on it is found when storage says the upload is gone", async () => {
    const up = await uploadOnePart();
    const key = `files/${up.fileId}`;
    const [uploadId] = (await fast.s3.listMultipartUploads()).filter((u) => u.key === key).map((u) => u.uploadId);
    // The worker's CompleteMultipartUpload fails without an answer storage acted on...
    fast.proxy.inject({ ...completeCall, fault: "status", status: 500, body: "" });
    const res = await complete(up);
    // ...so it checks for the object, which is not there (yet): retry later.
    assert.equal(res.status, 503, await res.clone().text());
    assert.match(res.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/);
    // The checks go on with backoff (the alarm's, and a look's), then it gives up.
    for (let i = 0; (await state(up)) !== "open"; i++) {
      assert.ok(i < 600, "the completion's checks never gave up");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(await state(up), "open");
    // Storage carries that completion out after all, late.
    const parts = await fast.s3.listParts(key, uploadId);
    await fast.s3.completeMultipartUpload(key, uploadId, parts);
    // The next look at the upload finds it gone and the object there: completed.
    const status = await (await api(up)).json();
    assert.equal(status.state, "completed", JSON.stringify(status));
    const file = await fetch(`${fast.workerUrl}/api/files/${up.fileId}`);
    assert.equal(file.status, 200);
  });
});
