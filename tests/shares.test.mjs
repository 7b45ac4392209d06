// File lifetime, quota and rate limits, and share links (docs/API.md, "Files" and
// "Shares"), against the real worker in `wrangler dev` over raw HTTP: every route and
// error, the counting rule of one-time shares with parallel attempts, lease lapse,
// passwords, and what storage holds afterwards (nothing of a deleted file; nothing
// secret in a share object).
//
// Workers: the main one; one with 2-second download URLs (leases lapse); one with a
// small quota and create rate; one that allows files that never expire. Each keeps
// its state in its own folder, which the scans read.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertError, bearer, createBody, json, newUpload, until, uploadAll } from "./support/api.mjs";
import { mint } from "./rooms/support.mjs";
import { startServer } from "./support/server.mjs";
import { leakscan, objectData, objectFiles, storageDirs } from "./support/storage.mjs";

const SECOND = 1000;

let server; // defaults
let brief; // download URLs (and so leases) of 2 seconds
let small; // a quota of 3 small files, 3 creates a minute
let lenient; // ALLOW_NO_EXPIRY
let work;
before(async () => {
  work = mkdtempSync(join(tmpdir(), "sealdrop-shares-"));
  [server, brief, small, lenient] = await Promise.all([
    startServer(),
    startServer({ vars: { DOWNLOAD_URL_TTL_SECONDS: "2" } }),
    startServer({ vars: { QUOTA_BYTES: "3100", CREATE_RATE_PER_MINUTE: "3" } }),
    startServer({ vars: { ALLOW_NO_EXPIRY: "true" } }),
  ]);
});
after(async () => {
  await Promise.all([server?.stop(), brief?.stop(), small?.stop(), lenient?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/** A completed one-part upload (1,000 bytes of plaintext) on `base`. */
async function completedFile(base, over = {}) {
  const up = await newUpload(base, over);
  const { record } = await uploadAll(up);
  return { ...up, record };
}

/** The owner's share calls on `up`. */
function owner(base, up) {
  const files = `${base}/api/files/${up.fileId}`;
  const headers = { ...up.auth, "content-type": "application/json" };
  return {
    create: (body = {}) => fetch(`${files}/shares`, { method: "POST", headers, body: JSON.stringify(body) }),
    async share(body = {}) {
      const res = await this.create(body);
      const view = await res.json();
      assert.equal(res.status, 201, JSON.stringify(view));
      return view;
    },
    list: () => fetch(`${files}/shares`, { headers: up.auth }),
    async views() {
      const res = await this.list();
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body.shares;
    },
    patch: (token, body) => fetch(`${files}/shares/${token}`, { method: "PATCH", headers, body: JSON.stringify(body) }),
    revoke: (token) => fetch(`${files}/shares/${token}`, { method: "DELETE", headers: up.auth }),
    remove: () => fetch(files, { method: "DELETE", headers: up.auth }),
    record: () => fetch(files, { headers: up.auth }),
  };
}

/** A downloader's calls on share `token`. */
function link(base, token, headers = {}) {
  const shares = `${base}/api/shares/${token}`;
  return {
    info: () => fetch(shares, { headers }),
    open: (body) => fetch(`${shares}/downloads`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
    url: (id) => fetch(`${shares}/downloads/${id}/url`, { method: "POST", headers }),
    complete: (id) => fetch(`${shares}/downloads/${id}/complete`, { method: "POST", headers }),
    abandon: (id) => fetch(`${shares}/downloads/${id}`, { method: "DELETE", headers }),
  };
}

/** Opens a download and answers its body (asserting 201). */
async function opened(res) {
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

const randomId = () => randomBytes(16).toString("base64url");
const randomSigned = () => randomBytes(24).toString("base64url");

// ---------------------------------------------------------------------------------
// Signed ids
// ---------------------------------------------------------------------------------

describe("signed ids", () => {
  test("probing ids this server did not sign answers 404 and creates no object or storage", async () => {
    const u = server.url;
    // Make sure some objects exist, so the count is not trivially zero.
    const up = await completedFile(u);
    await owner(u, up).share();
    const objects = objectFiles(server.persistDir);
    assert.ok(objects.length >= 3, `an upload, an account and a share: ${objects.length}`);
    for (let i = 0; i < 25; i++) {
      const id = randomSigned();
      const token = randomSigned();
      await assertError(await fetch(`${u}/api/files/${id}`, { headers: up.auth }), 404, "file_not_found");
      await assertError(await fetch(`${u}/api/files/${id}`, { method: "DELETE", headers: up.auth }), 404, "file_not_found");
      await assertError(await fetch(`${u}/api/files/${id}/shares`, { headers: up.auth }), 404, "file_not_found");
      await assertError(await fetch(`${u}/api/uploads/${id}`, { headers: up.auth }), 404, "upload_not_found");
      await assertError(await fetch(`${u}/blob/${id}?exp=1&sig=x`), 404, "file_not_found");
      await assertError(await link(u, token).info(), 404, "share_not_found");
      await assertError(await link(u, token).open({}), 404, "share_not_found");
      await assertError(await link(u, token).complete(randomId()), 404, "share_not_found");
      // A real file with a forged share token: the token is refused.
      await assertError(await owner(u, up).revoke(token), 404, "share_not_found");
    }
    // No object was made: the same databases as before.
    assert.deepEqual(objectFiles(server.persistDir), objects);
  });
});

// ---------------------------------------------------------------------------------
// File lifetime
// ---------------------------------------------------------------------------------

describe("file lifetime", () => {
  test("GET /api/files/{id} is the owner's: 401 for anyone else", async () => {
    const up = await completedFile(server.url);
    await assertError(await fetch(`${server.url}/api/files/${up.fileId}`), 401, "unauthorized");
    await assertError(await fetch(`${server.url}/api/files/${up.fileId}`, { headers: bearer(randomId()) }), 401, "unauthorized");
    const res = await owner(server.url, up).record();
    const record = await res.json();
    assert.equal(res.status, 200);
    // The default lifetime: 7 days from completion.
    const week = 7 * 24 * 3600 * SECOND;
    assert.ok(Math.abs(record.expiresAt - (record.createdAt + week)) < 60 * SECOND, JSON.stringify(record));
  });

  test("expiresIn: seconds up to the maximum; \"never\" only where allowed", async () => {
    const u = server.url;
    await assertError(await fetch(`${u}/api/uploads`, json(createBody({ expiresIn: 0 }))), 400, "invalid_expiry");
    await assertError(await fetch(`${u}/api/uploads`, json(createBody({ expiresIn: 30 * 24 * 3600 + 1 }))), 400, "invalid_expiry");
    await assertError(await fetch(`${u}/api/uploads`, json(createBody({ expiresIn: "never" }))), 400, "invalid_expiry");
    await assertError(await fetch(`${u}/api/uploads`, json(createBody({ expiresIn: "soon" }))), 400, "invalid_json");
    const month = await completedFile(u, { expiresIn: 30 * 24 * 3600 });
    assert.ok(month.record.expiresAt > Date.now() + 29 * 24 * 3600 * SECOND);
    const forever = await completedFile(lenient.url, { expiresIn: "never" });
    assert.equal(forever.record.expiresAt, null);
    // A share of a file that never expires may never expire either.
    const share = await owner(lenient.url, forever).share();
    assert.equal(share.expiresAt, null);
  });

  test("the owner deletes a file: 204, then 410 gone everywhere, and nothing of it is left", async () => {
    const u = server.url;
    const up = await completedFile(u, { plaintextSize: 70_000 });
    const o = owner(u, up);
    const share = await o.share();
    const dl = await opened(await link(u, share.token).open({}));
    const headerHex = Buffer.from(up.record.header, "base64").toString("hex");
    const metadataHex = Buffer.from(up.record.metadata, "base64").toString("hex");
    const data = join(work, `${up.fileId}.bin`);
    writeFileSync(data, up.data);
    const content = { plaintext: [data], hex: [headerHex, metadataHex] };
    // The scan finds the file while it exists (so it can fail).
    const present = leakscan(storageDirs(server.persistDir), content);
    assert.equal(present.status, 1, JSON.stringify(present.report));
    assert.equal(leakscan(objectData(server.persistDir), { secrets: [up.fileId] }).status, 1, "an object holds the id");

    const res = await o.remove();
    assert.equal(res.status, 204, await res.text());
    await assertError(await o.record(), 410, "gone");
    await assertError(await o.remove(), 410, "gone");
    await assertError(await o.list(), 410, "gone");
    await assertError(await o.create({}), 410, "gone");
    await assertError(await up.status(), 410, "gone");
    await assertError(await up.complete([]), 410, "gone");
    await assertError(await fetch(dl.file.download.url), 410, "gone");
    await assertError(await link(u, share.token).info(), 410, "gone");
    await assertError(await link(u, share.token).url(dl.downloadId), 410, "gone");
    // Storage holds nothing of it: not the ciphertext (R2), not its header or sealed
    // metadata (the session and share objects were wiped), and no object's own data
    // names it any more (the account keeps keyed hashes, never file ids). What is
    // left is the id as a name in the platform's own indexes (miniflare's list of
    // object names, R2's key index): 410 needs no more than that.
    const gone = leakscan(storageDirs(server.persistDir), content);
    assert.equal(gone.status, 0, JSON.stringify(gone.report));
    const named = leakscan(objectData(server.persistDir), { secrets: [up.fileId] });
    assert.equal(named.status, 0, JSON.stringify(named.report));
    // Answering 410 makes nothing: no object appears.
    const after = objectFiles(server.persistDir);
    for (let i = 0; i < 5; i++) await assertError(await o.record(), 410, "gone");
    assert.deepEqual(objectFiles(server.persistDir), after);
  });

  test("a file expires: its alarm deletes the object, its shares and its records", async () => {
    const u = server.url;
    const up = await completedFile(u, { expiresIn: 10 });
    assert.ok(up.record.expiresAt <= Date.now() + 10 * SECOND);
    const o = owner(u, up);
    const share = await o.share();
    assert.equal(share.expiresAt, up.record.expiresAt, "a share expires with its file by default");
    await assertError(await o.create({ expiresIn: 11 }), 400, "invalid_expiry");
    const data = join(work, `${up.fileId}.bin`);
    writeFileSync(data, up.data);
    await until(async () => (await o.record()).status === 410, "the file expired", 600);
    await assertError(await o.record(), 410, "gone");
    // The alarm purges the share after deleting the object.
    await until(async () => {
      const res = await link(u, share.token).info();
      return res.status === 410 && (await res.json()).error.code === "gone";
    }, "the share was purged", 600);
    await assertError(await fetch(up.record.download.url), 410, "gone");
    // The alarm wiped everything (poll: the record answers 410 from the expiry on,
    // the wipe follows in the same alarm).
    await until(() => leakscan(storageDirs(server.persistDir), { plaintext: [data] }).status === 0, "nothing left", 100);
    const named = leakscan(objectData(server.persistDir), { secrets: [up.fileId] });
    assert.equal(named.status, 0, JSON.stringify(named.report));
  });
});

// ---------------------------------------------------------------------------------
// JWT users
// ---------------------------------------------------------------------------------

describe("JWT users", () => {
  test("a file created with a JWT is its user's: the user's later tokens, and the owner token, prove it", async () => {
    const u = server.url;
    const alice = await mint({ sub: `alice-${randomId()}` });
    const res = await fetch(`${u}/api/uploads`, {
      ...json(createBody()),
      headers: { "content-type": "application/json", authorization: `Bearer ${alice}` },
    });
    const created = await res.json();
    assert.equal(res.status, 201, JSON.stringify(created));
    // The upload runs on its owner token as any other.
    const up = await newUpload(u); // another, anonymous upload: not Alice's
    const file = `${u}/api/files/${created.fileId}`;
    const parts = await fetch(`${u}/api/uploads/${created.fileId}/part-urls`, {
      ...json({ partNumbers: [1] }),
      headers: { "content-type": "application/json", ...bearer(created.ownerToken) },
    });
    const [{ url }] = (await parts.json()).urls;
    const put = await fetch(url, { method: "PUT", body: randomBytes(created.plan.ciphertextSize) });
    const { etag } = await put.json();
    const done = await fetch(`${u}/api/uploads/${created.fileId}/complete`, {
      ...json({ parts: [{ partNumber: 1, etag }] }),
      headers: { "content-type": "application/json", ...bearer(created.ownerToken) },
    });
    assert.equal(done.status, 200);
    // Alice, with a fresh token: owner. Bob, with a valid token: not. A forged or
    // expired token: 401, never anonymous.
    const again = await mint({ sub: JSON.parse(Buffer.from(alice.split(".")[1], "base64url")).sub });
    assert.equal((await fetch(file, { headers: bearer(again) })).status, 200);
    assert.equal((await fetch(file, { headers: bearer(created.ownerToken) })).status, 200);
    await assertError(await fetch(file, { headers: bearer(await mint({ sub: "bob" })) }), 401, "unauthorized");
    await assertError(await fetch(file, { headers: bearer(await mint({ secret: new TextEncoder().encode(randomBytes(32).toString("hex")) })) }), 401, "unauthorized");
    await assertError(await fetch(file, { headers: bearer(await mint({ exp: 1 })) }), 401, "unauthorized");
    const share = await fetch(`${file}/shares`, { ...json({ downloadLimit: 1 }), headers: { "content-type": "application/json", ...bearer(again) } });
    assert.equal(share.status, 201);
    // An anonymous file is not any JWT user's.
    await assertError(await fetch(`${u}/api/files/${up.fileId}`, { headers: bearer(again) }), 401, "unauthorized");
    // A forged JWT on create is refused rather than made anonymous.
    const forged = await fetch(`${u}/api/uploads`, {
      ...json(createBody()),
      headers: { "content-type": "application/json", authorization: `Bearer ${alice.slice(0, -2)}xx` },
    });
    await assertError(forged, 401, "unauthorized");
  });
});

// ---------------------------------------------------------------------------------
// Quota and rate limits
// ---------------------------------------------------------------------------------

describe("quota and create rate", () => {
  // One client (127.0.0.1, one /24), one account: 3,100 bytes, 3 creates a minute.
  // A 1,000-byte plaintext in 1 KiB records is 1,016 bytes of ciphertext.
  test("quota_exceeded past QUOTA_BYTES; aborting and deleting give the bytes back", async () => {
    const u = small.url;
    const a = await newUpload(u, { plaintextSize: 1000 });
    const b = await completedFile(u, { plaintextSize: 1000 });
    const c = await newUpload(u, { plaintextSize: 1000 });
    const refused = await fetch(`${u}/api/uploads`, json(createBody({ plaintextSize: 1000 })));
    const text = await refused.text();
    assert.equal(refused.status, 403, text);
    assert.equal(JSON.parse(text).error.code, "quota_exceeded");
    assert.match(JSON.parse(text).error.message, /3100/);
    assert.equal((await a.abort()).status, 204);
    assert.equal((await owner(u, b).remove()).status, 204);
    // The bucket is empty now (3 creates): the bytes are back, the rate is not.
    const limited = await fetch(`${u}/api/uploads`, json(createBody({ plaintextSize: 1000 })));
    const retryAfter = Number(limited.headers.get("retry-after"));
    await assertError(limited, 429, "rate_limited");
    assert.ok(retryAfter >= 1 && retryAfter <= 20, `Retry-After: ${retryAfter}`);
    // A retried create of an upload that exists costs nothing (idempotency key).
    const key = randomId();
    await new Promise((r) => setTimeout(r, retryAfter * SECOND));
    const body = createBody({ plaintextSize: 1000, idempotencyKey: key });
    const first = await fetch(`${u}/api/uploads`, json(body));
    assert.equal(first.status, 201, await first.text());
    const again = await fetch(`${u}/api/uploads`, json(body));
    assert.equal(again.status, 201, "a retried create is not rate limited");
    assert.equal((await c.abort()).status, 204);
  });
});

// ---------------------------------------------------------------------------------
// Shares: the owner's calls
// ---------------------------------------------------------------------------------

describe("shares: create, list, change, revoke", () => {
  let up;
  let o;
  before(async () => {
    up = await completedFile(server.url);
    o = owner(server.url, up);
  });

  test("create: defaults, and every field checked", async () => {
    const share = await o.share();
    assert.match(share.token, /^[A-Za-z0-9_-]{32}$/);
    assert.deepEqual(
      { ...share, token: null, createdAt: null },
      {
        token: null, createdAt: null, expiresAt: up.record.expiresAt, downloadLimit: null, password: false,
        state: "active", revokedAt: null, downloads: 0, openDownloads: 0, failedAttempts: 0, access: [],
      },
    );
    const limited = await o.share({ expiresIn: 3600, downloadLimit: 2 });
    assert.equal(limited.downloadLimit, 2);
    assert.ok(Math.abs(limited.expiresAt - (Date.now() + 3600 * SECOND)) < 60 * SECOND);
    await assertError(await o.create({ downloadLimit: 0 }), 400, "invalid_limit");
    await assertError(await o.create({ downloadLimit: -1 }), 400, "invalid_json");
    await assertError(await o.create({ expiresIn: 0 }), 400, "invalid_expiry");
    await assertError(await o.create({ expiresIn: 8 * 24 * 3600 }), 400, "invalid_expiry");
    await assertError(await o.create({ verifier: "short" }), 400, "invalid_verifier");
    await assertError(await o.create({ password: "hunter2" }), 400, "invalid_json");
    const stranger = await fetch(`${server.url}/api/files/${up.fileId}/shares`, json({}));
    await assertError(stranger, 401, "unauthorized");
    await assertError(await fetch(`${server.url}/api/files/${up.fileId}/shares`), 401, "unauthorized");
    const inProgress = await newUpload(server.url);
    await assertError(await owner(server.url, inProgress).create({}), 404, "file_not_found");
  });

  test("list: every share with its access records; PATCH; DELETE revokes at once", async () => {
    const share = await o.share({ downloadLimit: 1 });
    const l = link(server.url, share.token, { "user-agent": "Mozilla/5.0 Firefox/128.0" });
    assert.equal((await l.info()).status, 200);
    const views = await o.views();
    const listed = views.find((v) => v.token === share.token);
    assert.ok(listed, "the new share is listed");
    assert.ok(views.length >= 3);
    assert.deepEqual(listed.access.map((a) => [a.outcome, a.agent]), [["viewed", "firefox"]]);
    // PATCH: a limit, then unlimited; an expiry within the file's.
    let res = await o.patch(share.token, { downloadLimit: 5 });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).downloadLimit, 5);
    res = await o.patch(share.token, { downloadLimit: null, expiresIn: 60 });
    const patched = await res.json();
    assert.equal(patched.downloadLimit, null);
    assert.ok(patched.expiresAt <= Date.now() + 61 * SECOND);
    await assertError(await o.patch(share.token, { downloadLimit: 0 }), 400, "invalid_limit");
    await assertError(await o.patch(share.token, { expiresIn: 8 * 24 * 3600 }), 400, "invalid_expiry");
    await assertError(await o.patch(share.token, { limit: 1 }), 400, "invalid_json");
    // Another file's share is not this file's.
    const other = await completedFile(server.url);
    const foreign = await owner(server.url, other).share();
    await assertError(await o.patch(foreign.token, { downloadLimit: 1 }), 404, "share_not_found");
    await assertError(await o.revoke(foreign.token), 404, "share_not_found");
    // Revoke: at once, for good; a download in progress gets no new URL.
    const dl = await opened(await l.open({}));
    res = await o.revoke(share.token);
    const revoked = await res.json();
    assert.equal(res.status, 200);
    assert.equal(revoked.state, "revoked");
    assert.ok(revoked.revokedAt > 0);
    await assertError(await l.info(), 410, "share_revoked");
    await assertError(await l.open({}), 410, "share_revoked");
    await assertError(await l.url(dl.downloadId), 410, "share_revoked");
    await assertError(await o.patch(share.token, { downloadLimit: 3 }), 410, "share_revoked");
    assert.equal((await o.revoke(share.token)).status, 200, "revoking twice is fine");
  });
});

describe("shares: idempotent create", () => {
  test("a retried create with its key answers the same share; another body with the key is 409 idempotency_conflict", async () => {
    const u = server.url;
    const up = await completedFile(u);
    const o = owner(u, up);
    const verifier = randomBytes(32).toString("base64url");
    const idempotencyKey = randomId();
    const body = { downloadLimit: 1, expiresIn: 3600, verifier, idempotencyKey };
    const first = await o.share(body);
    // The retry of a create whose answer was lost, a little later: the same share,
    // as it was made (its expiry counted from the first create).
    const again = await o.share(body);
    assert.deepEqual(again, first);
    for (const other of [
      { ...body, downloadLimit: 2 },
      { ...body, expiresIn: 3601 },
      { ...body, verifier: randomBytes(32).toString("base64url") },
      { idempotencyKey },
    ]) {
      await assertError(await o.create(other), 409, "idempotency_conflict");
    }
    await assertError(await o.create({ ...body, idempotencyKey: "short" }), 400, "invalid_json");
    // One share of the file, its settings untouched by the conflicts.
    let views = await o.views();
    assert.deepEqual(views.map((v) => [v.token, v.downloadLimit, v.password]), [[first.token, 1, true]]);

    // Two creates with one new key at once make one share, and both answer it.
    const twinBody = { downloadLimit: 3, idempotencyKey: randomId() };
    const [a, b] = await Promise.all([o.share(twinBody), o.share(twinBody)]);
    assert.equal(a.token, b.token);
    views = await o.views();
    assert.equal(views.length, 2);
    assert.ok(views.some((v) => v.token === a.token));

    // The same key on another file is another share; without a key, every create is new.
    const elsewhere = await owner(u, await completedFile(u)).share(body);
    assert.notEqual(elsewhere.token, first.token);
    const plain = [await o.share({ downloadLimit: 1 }), await o.share({ downloadLimit: 1 })];
    assert.notEqual(plain[0].token, plain[1].token);
    assert.equal((await o.views()).length, 4);

    // Revoked since: the retry answers the revoked share and makes none.
    assert.equal((await o.revoke(first.token)).status, 200);
    const late = await o.share(body);
    assert.equal(late.token, first.token);
    assert.equal(late.state, "revoked");
    assert.equal((await o.views()).length, 4);

    // The key is not stored anywhere (the token is derived from it one way).
    const scan = leakscan(storageDirs(server.persistDir), {
      secrets: [idempotencyKey, twinBody.idempotencyKey],
      hex: [idempotencyKey, twinBody.idempotencyKey].map((k) => Buffer.from(k, "base64url").toString("hex")),
    });
    assert.equal(scan.status, 0, JSON.stringify(scan.report));
  });
});

// ---------------------------------------------------------------------------------
// Shares: downloads and their counting
// ---------------------------------------------------------------------------------

describe("downloads", () => {
  test("GET /api/shares/{token}: what the receive page needs", async () => {
    const up = await completedFile(server.url);
    const share = await owner(server.url, up).share({ downloadLimit: 3 });
    const res = await link(server.url, share.token).info();
    assert.deepEqual(await res.json(), { password: false, expiresAt: up.record.expiresAt, downloadsLeft: 3 });
    const head = await fetch(`${server.url}/api/shares/${share.token}`, { method: "HEAD" });
    assert.equal(head.status, 200);
  });

  test("open answers the record and a URL that serves the file; URLs are re-issued; complete counts once", async () => {
    const up = await completedFile(server.url, { plaintextSize: 70_000 });
    const share = await owner(server.url, up).share({ downloadLimit: 2 });
    const l = link(server.url, share.token);
    const id = randomId();
    const dl = await opened(await l.open({ downloadId: id }));
    assert.equal(dl.downloadId, id);
    assert.equal(dl.leaseUntil, dl.file.download.expiresAt);
    assert.deepEqual({ ...dl.file, download: null }, { ...up.record, download: null });
    let blob = await fetch(dl.file.download.url, { headers: { range: "bytes=0-99" } });
    assert.equal(blob.status, 206);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(up.data.subarray(0, 100)));
    // A retried open with the same id is the same download (no second slot).
    const again = await opened(await l.open({ downloadId: id }));
    assert.equal(again.downloadId, id);
    let res = await l.url(id);
    const fresh = await res.json();
    assert.equal(res.status, 200);
    assert.ok(fresh.expiresAt >= dl.file.download.expiresAt);
    blob = await fetch(fresh.url);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(up.data));
    assert.equal((await l.complete(id)).status, 204);
    assert.equal((await l.complete(id)).status, 204, "complete is idempotent");
    await assertError(await l.url(id), 409, "download_closed");
    await assertError(await l.abandon(id), 409, "download_closed");
    await assertError(await l.open({ downloadId: id }), 409, "download_closed");
    await assertError(await l.url(randomId()), 404, "download_not_found");
    await assertError(await l.complete("not-an-id"), 404, "download_not_found");
    await assertError(await l.open({ downloadId: "short" }), 400, "invalid_json");
    const views = await owner(server.url, up).views();
    assert.equal(views[0].downloads, 1);
  });

  test("a one-time share: two parallel attempts get one download and one share_busy; then it is used up", async () => {
    const up = await completedFile(server.url);
    const share = await owner(server.url, up).share({ downloadLimit: 1 });
    const l = link(server.url, share.token);
    const answers = await Promise.all([l.open({}), l.open({})]);
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 409]);
    const winner = await opened(answers.find((r) => r.status === 201));
    const loser = answers.find((r) => r.status === 409);
    const retryAfter = Number(loser.headers.get("retry-after"));
    await assertError(loser, 409, "share_busy");
    assert.ok(retryAfter > 0 && retryAfter <= 900, `Retry-After: ${retryAfter}`);
    // Abandoning frees the slot; the next one completes and uses the share up.
    assert.equal((await l.abandon(winner.downloadId)).status, 204);
    assert.equal((await l.abandon(winner.downloadId)).status, 204, "abandon is idempotent");
    const second = await opened(await l.open({}));
    assert.equal((await l.complete(second.downloadId)).status, 204);
    await assertError(await l.open({}), 410, "share_exhausted");
    await assertError(await l.info(), 410, "share_exhausted");
    const [view] = await owner(server.url, up).views();
    assert.equal(view.state, "exhausted");
    assert.equal(view.downloads, 1);
    // The second abandon changed nothing, so it is not a new record.
    assert.deepEqual(
      view.access.map((a) => a.outcome).reverse(),
      ["opened", "share_busy", "abandoned", "opened", "completed", "share_exhausted", "share_exhausted"],
    );
    // Refusals, the limit's too, are visits: only admitted downloads fill that list.
    assert.deepEqual(
      view.access.map((a) => a.kind).reverse(),
      ["download", "visit", "download", "download", "download", "visit", "visit"],
    );
  });

  test("a download never completed counts when its lease lapses, and may still resume", async () => {
    const u = brief.url; // 2-second URLs: 2-second leases
    const up = await completedFile(u);
    const share = await owner(u, up).share({ downloadLimit: 1 });
    const l = link(u, share.token);
    const dl = await opened(await l.open({}));
    await assertError(await l.open({}), 409, "share_busy");
    await until(async () => (await l.open({})).status === 410, "the lease lapsed and counted", 100);
    await assertError(await l.open({}), 410, "share_exhausted");
    // The lapsed download counted already: it may still fetch a fresh URL.
    const res = await l.url(dl.downloadId);
    assert.equal(res.status, 200, await res.text());
    const [view] = await owner(u, up).views();
    assert.equal(view.downloads, 1);
    assert.ok(view.access.some((a) => a.outcome === "lapsed" && a.agent === null));
  });

  test("an expired share: 410 share_expired, also for a download in progress", async () => {
    const up = await completedFile(server.url);
    const share = await owner(server.url, up).share({ expiresIn: 1 });
    const l = link(server.url, share.token);
    const dl = await opened(await l.open({}));
    await until(async () => (await l.info()).status === 410, "the share expired", 100);
    await assertError(await l.info(), 410, "share_expired");
    await assertError(await l.open({}), 410, "share_expired");
    await assertError(await l.url(dl.downloadId), 410, "share_expired");
  });
});

// ---------------------------------------------------------------------------------
// Passwords, and what share objects store
// ---------------------------------------------------------------------------------

describe("access records", () => {
  test("a flood of views and wrong passwords past the cap never pushes a completed download out", async () => {
    const u = server.url;
    const up = await completedFile(u);
    const verifier = randomBytes(32).toString("base64url");
    const share = await owner(u, up).share({ verifier, downloadLimit: 1 });
    const l = link(u, share.token);
    const dl = await opened(await l.open({ verifier }));
    assert.equal((await l.complete(dl.downloadId)).status, 204);
    // A stranger with the link probes the used-up share: views (refused
    // share_exhausted), opens without a password, wrong passwords (then rate limited):
    // more visits than the 200 kept.
    const wrong = randomBytes(32).toString("base64url");
    for (let i = 0; i < 5; i++) await assertError(await l.open({ verifier: wrong }), 403, "wrong_password");
    for (let i = 0; i < 110; i++) {
      await assertError(await l.info(), 410, "share_exhausted");
      await assertError(await l.open({}), 403, "password_required");
    }
    const [view] = await owner(u, up).views();
    const visits = view.access.filter((a) => a.kind === "visit");
    const downloads = view.access.filter((a) => a.kind === "download");
    assert.equal(visits.length, 200, "the newest 200 visits are kept");
    assert.deepEqual(downloads.map((a) => a.outcome), ["completed", "opened"]);
    assert.equal(view.access.length, 202);
    // Merged newest first: the download's records are the oldest.
    assert.deepEqual(view.access.slice(-2).map((a) => a.outcome), ["completed", "opened"]);
    assert.ok(view.access.every((a, i) => i === 0 || view.access[i - 1].at >= a.at), "newest first");
    // The oldest visits went: the first wrong passwords are no longer listed.
    assert.ok(!visits.some((a) => a.outcome === "wrong_password"));
    assert.equal(view.failedAttempts, 5);
  });
});

describe("password shares", () => {
  test("the verifier gates downloads; wrong ones are counted, then rate limited; storage keeps no secret", async () => {
    const u = server.url;
    const up = await completedFile(u);
    // The browser derives the verifier from the password (Argon2id, FORMAT.md); here
    // any 32 bytes stand in for it.
    const password = `correct horse ${randomId()}`;
    const verifier = randomBytes(32).toString("base64url");
    const wrong = randomBytes(32).toString("base64url");
    const key = randomBytes(32).toString("base64url"); // never sent: the scan proves it
    const marker = `sealdrop-test-agent/${randomId()}`;
    const share = await owner(u, up).share({ verifier });
    assert.equal(share.password, true);
    const l = link(u, share.token, { "user-agent": marker });
    assert.equal((await (await l.info()).json()).password, true);
    await assertError(await l.open({}), 403, "password_required");
    await assertError(await l.open({ verifier: "x" }), 400, "invalid_verifier");
    const ok = await opened(await l.open({ verifier }));
    assert.equal((await l.complete(ok.downloadId)).status, 204);
    for (let i = 0; i < 5; i++) await assertError(await l.open({ verifier: wrong }), 403, "wrong_password");
    const limited = await l.open({ verifier });
    const retryAfter = Number(limited.headers.get("retry-after"));
    await assertError(limited, 429, "too_many_attempts");
    assert.ok(retryAfter > 0 && retryAfter <= 180, `Retry-After: ${retryAfter}`);
    const [view] = await owner(u, up).views();
    assert.equal(view.failedAttempts, 5);
    const outcomes = view.access.map((a) => a.outcome).reverse();
    // A malformed verifier is refused before the share is asked: no record.
    assert.deepEqual(outcomes, [
      "viewed", "password_required", "opened", "completed",
      "wrong_password", "wrong_password", "wrong_password", "wrong_password", "wrong_password",
      "too_many_attempts",
    ]);

    // The privacy scan of everything the worker stored: no password, no verifier (in
    // any encoding), no key, no client address, no user-agent string.
    const secrets = [password, verifier, wrong, key, marker, "127.0.0.1"];
    const hex = [verifier, wrong, key].map((b) => Buffer.from(b, "base64url").toString("hex"));
    const control = join(work, "planted.bin");
    writeFileSync(control, `noise ${verifier} noise`);
    assert.equal(leakscan(control, { secrets }).status, 1, "the scan finds a planted verifier");
    const scan = leakscan(storageDirs(server.persistDir), { secrets, hex });
    assert.equal(scan.status, 0, JSON.stringify(scan.report));
    assert.ok(scan.report.filesScanned > 0);
  });
});
