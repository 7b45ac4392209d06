// The fault-injecting proxy (tests/support/faultproxy.mjs) on its own, in front of a
// plain Node server that records what reaches it: forwarding is byte-exact and keeps
// Host, each fault does what it says to the client and to the target, rules fire
// as often as asked, the seeded RNG is reproducible, and part PUTs are counted.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, request as httpRequest } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import { partNumberOf, seededRandom, startFaultProxy } from "./support/faultproxy.mjs";

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const BIG = randomBytes(256 * 1024);

/** What the target saw: one entry per request, `complete` once its body ended. */
let seen = [];
let target;
let targetUrl;
let proxy;

before(async () => {
  target = createServer((req, res) => {
    const entry = { method: req.method, url: req.url, host: req.headers.host, custom: req.headers["x-custom"], bytes: 0, complete: false, hash: createHash("sha256") };
    seen.push(entry);
    req.on("data", (chunk) => { entry.bytes += chunk.length; entry.hash.update(chunk); });
    req.on("close", () => { entry.closed = true; });
    req.on("end", () => {
      entry.complete = true;
      entry.sha256 = entry.hash.digest("hex");
      if (req.url === "/big") {
        res.writeHead(200, { "content-length": BIG.length, ETag: '"big"' });
        res.end(BIG);
        return;
      }
      const body = JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, bytes: entry.bytes, sha256: entry.sha256 });
      res.writeHead(201, { "content-type": "application/json", ETag: '"etag-1"', "X-Target": "yes" });
      res.end(body);
    });
  });
  target.listen(0, "127.0.0.1");
  await once(target, "listening");
  targetUrl = `http://127.0.0.1:${target.address().port}`;
  proxy = await startFaultProxy({ target: targetUrl, seed: 7 });
});

after(async () => {
  await proxy?.stop();
  target?.closeAllConnections();
  target?.close();
});

beforeEach(() => {
  proxy.clearFaults();
  proxy.resetLog();
  seen = [];
});

/** A request through node:http (no connection reuse), resolving to what happened. */
function send(method, path, { body, headers = {} } = {}) {
  return new Promise((resolve) => {
    const req = httpRequest(`${proxy.url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", (err) => resolve({ status: res.statusCode, error: err.code ?? err.message, partial: Buffer.concat(chunks) }));
      res.on("aborted", () => resolve({ status: res.statusCode, error: "aborted", partial: Buffer.concat(chunks) }));
    });
    req.on("error", (err) => resolve({ error: err.code ?? err.message }));
    req.end(body);
  });
}

describe("forwarding", () => {
  test("method, path, query, headers and body reach the target unchanged, with the browser's Host", async () => {
    const body = randomBytes(100_000);
    const res = await send("PUT", "/bucket/files/a%2Fb?partNumber=3&uploadId=x&X-Amz-Signature=abc", {
      body, headers: { host: "browser.example:1234", "x-custom": "kept" },
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.etag, '"etag-1"');
    assert.equal(res.headers["x-target"], "yes");
    const echoed = JSON.parse(res.body);
    assert.deepEqual(echoed, {
      method: "PUT", url: "/bucket/files/a%2Fb?partNumber=3&uploadId=x&X-Amz-Signature=abc",
      host: "browser.example:1234", bytes: body.length, sha256: sha256(body),
    });
    assert.equal(seen[0].custom, "kept");
    assert.deepEqual(proxy.log.map(({ method, path, partNumber, fault, status }) => ({ method, path, partNumber, fault, status })),
      [{ method: "PUT", path: "/bucket/files/a%2Fb", partNumber: 3, fault: null, status: 201 }]);
  });

  test("a large response body arrives whole", async () => {
    const res = await send("GET", "/big");
    assert.equal(res.status, 200);
    assert.equal(sha256(res.body), sha256(BIG));
  });

  test("an unreachable target answers 502 from the proxy", async () => {
    const dead = await startFaultProxy({ target: "http://127.0.0.1:1" });
    try {
      const res = await new Promise((resolve) => {
        httpRequest(`${dead.url}/x`, { agent: false }, (r) => { r.resume(); resolve(r.statusCode); }).end();
      });
      assert.equal(res, 502);
      assert.equal(dead.log[0].status, 502);
    } finally {
      await dead.stop();
    }
  });
});

describe("faults", () => {
  test("status: 503 with Retry-After for the next 2 matching requests, then forwarding again", async () => {
    const rule = proxy.inject({ method: "PUT", path: "/bucket/", fault: "status", status: 503, retryAfter: 3, times: 2 });
    const results = [];
    for (let i = 0; i < 3; i += 1) results.push(await send("PUT", "/bucket/k?partNumber=1", { body: "x".repeat(1000) }));
    assert.deepEqual(results.map((r) => r.status), [503, 503, 201]);
    assert.equal(results[0].headers["retry-after"], "3");
    assert.equal(rule.hits, 2);
    assert.equal(seen.length, 1, "the faulted requests never reached the target");
    assert.deepEqual(proxy.log.map((e) => e.fault), ["status", "status", null]);
  });

  test("status: only the matching method, path and query; CORS preflights pass by default", async () => {
    proxy.inject({ method: ["PUT", "POST"], path: /^\/bucket\//, query: { uploadId: true, partNumber: "2" }, fault: "status", times: 10 });
    proxy.inject({ path: "/api/", fault: "status", status: 500, times: 10 });
    const got = {
      otherPart: (await send("PUT", "/bucket/k?partNumber=1&uploadId=u", { body: "a" })).status,
      part2: (await send("PUT", "/bucket/k?partNumber=2&uploadId=u", { body: "a" })).status,
      noUpload: (await send("PUT", "/bucket/k?partNumber=2", { body: "a" })).status,
      get: (await send("GET", "/bucket/k?partNumber=2&uploadId=u")).status,
      preflight: (await send("OPTIONS", "/api/uploads")).status,
      api: (await send("GET", "/api/uploads")).status,
    };
    assert.deepEqual(got, { otherPart: 201, part2: 500, noUpload: 201, get: 201, preflight: 201, api: 500 });
  });

  test("an injected answer to a cross-origin request carries CORS headers, so the page can read it", async () => {
    proxy.inject({ fault: "status", status: 503, retryAfter: 1 });
    const res = await send("PUT", "/bucket/k", { body: "a", headers: { origin: "http://page.example" } });
    assert.equal(res.status, 503);
    assert.equal(res.headers["access-control-allow-origin"], "*");
    assert.match(res.headers["access-control-expose-headers"], /Retry-After/);
  });

  test("refuse: the connection is reset on the request head; the target never sees it", async () => {
    proxy.inject({ method: "PUT", fault: "refuse" });
    const res = await send("PUT", "/bucket/k", { body: randomBytes(1000) });
    assert.equal(res.status, undefined);
    assert.match(res.error, /ECONNRESET|EPIPE|socket hang up/);
    assert.equal(seen.length, 0);
    assert.equal(proxy.log[0].fault, "refuse");
  });

  test("down/up: connections are refused at the TCP level, then accepted again", async () => {
    await proxy.down();
    const refused = await send("GET", "/x");
    assert.equal(refused.error, "ECONNREFUSED");
    await proxy.up();
    assert.equal((await send("GET", "/x")).status, 201);
  });

  test("reset mid request body: the client gets no answer, the target a cut-off body", async () => {
    const body = randomBytes(200_000);
    proxy.inject({ method: "PUT", fault: "reset", afterBytes: 50_000 });
    const res = await send("PUT", "/bucket/k?partNumber=4", { body });
    assert.equal(res.status, undefined, "no answer");
    assert.match(res.error, /ECONNRESET|EPIPE|socket hang up/);
    await waitFor(() => seen.length === 1 && seen[0].closed, "the target's request to close");
    assert.equal(seen[0].complete, false, "the target's request never completed");
    assert.ok(seen[0].bytes <= 50_000, `the target got at most 50,000 bytes, got ${seen[0].bytes}`);
  });

  test("reset mid response body (a download): headers and part of the body, then a reset", async () => {
    proxy.inject({ method: "GET", path: "/big", fault: "reset", at: "response-body" });
    const res = await send("GET", "/big");
    assert.equal(res.status, 200);
    assert.ok(res.error, "the body did not end normally");
    assert.ok(res.partial.length < BIG.length, "cut short");
    assert.deepEqual(res.partial, BIG.subarray(0, res.partial.length), "what arrived is the start of the body");
  });

  test("flip: the response body arrives whole but for one bit of the byte at atByte; the log keeps the Range", async () => {
    const at = 100_000; // past the first chunk of the body
    proxy.inject({ method: "GET", path: "/big", fault: "flip", atByte: at });
    const res = await send("GET", "/big", { headers: { range: "bytes=0-" } });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, BIG.length);
    const expected = Buffer.from(BIG);
    expected[at] ^= 0x01;
    assert.ok(res.body.equals(expected), "exactly that bit differs");
    assert.deepEqual(proxy.log.map(({ fault, range }) => ({ fault, range })), [{ fault: "flip", range: "bytes=0-" }]);
  });

  test("stall: the request is never answered nor forwarded; the client gives up on its own", async () => {
    for (const afterBytes of [0, 10_000, undefined]) {
      proxy.clearFaults();
      const rule = proxy.inject({ method: "PUT", fault: "stall", afterBytes });
      const controller = new AbortController();
      const stalled = once(proxy.events, "fault");
      const res = fetch(`${proxy.url}/bucket/k?partNumber=1`, { method: "PUT", body: randomBytes(50_000), signal: controller.signal });
      const [entry] = await stalled;
      assert.equal(entry.fault, "stall");
      controller.abort(); // as a client's stall detection would
      await assert.rejects(res, { name: "AbortError" });
      assert.equal(entry.status, null, "never answered");
      assert.equal(rule.hits, 1);
    }
    assert.equal(seen.length, 0, "nothing reached the target");
    assert.equal((await send("PUT", "/bucket/k", { body: "after" })).status, 201, "later requests pass");
  });

  test("delay: the request reaches the target only after the delay, then is answered normally", async () => {
    proxy.inject({ method: "PUT", fault: "delay", delayMs: 300 });
    const faulted = once(proxy.events, "fault");
    const body = randomBytes(200_000);
    const res = send("PUT", "/bucket/k", { body });
    await faulted;
    assert.equal(seen.length, 0, "held at the proxy");
    const got = await res;
    assert.equal(got.status, 201);
    assert.equal(JSON.parse(got.body).sha256, sha256(body), "the whole body, unchanged");
  });

  test("probability: a seeded RNG, so the same seed picks the same requests", async () => {
    const runs = [];
    for (let run = 0; run < 2; run += 1) {
      const p = await startFaultProxy({ target: targetUrl, seed: 42 });
      try {
        const rule = p.inject({ method: "PUT", fault: "status", status: 500, probability: 0.25 });
        const statuses = [];
        for (let i = 0; i < 40; i += 1) {
          statuses.push(await new Promise((resolve) => {
            httpRequest(`${p.url}/b/k?partNumber=${i + 1}`, { method: "PUT", agent: false }, (r) => { r.resume(); resolve(r.statusCode); }).end("x");
          }));
        }
        runs.push({ statuses, hits: rule.hits });
      } finally {
        await p.stop();
      }
    }
    assert.deepEqual(runs[0], runs[1], "same seed, same faults");
    assert.equal(runs[0].statuses.filter((s) => s === 500).length, runs[0].hits);
    assert.ok(runs[0].hits > 0 && runs[0].hits < 40, `some but not all fail (${runs[0].hits} of 40)`);
  });

  test("rules fire in the order they were added, and remove() retires one", async () => {
    const first = proxy.inject({ method: "GET", fault: "status", status: 500, times: 1 });
    const second = proxy.inject({ method: "GET", fault: "status", status: 503, times: 5 });
    assert.equal((await send("GET", "/a")).status, 500);
    assert.equal((await send("GET", "/a")).status, 503);
    second.remove();
    assert.equal((await send("GET", "/a")).status, 201);
    assert.deepEqual([first.hits, second.hits], [1, 1]);
  });

  test("unknown faults and bad probabilities are refused", () => {
    assert.throws(() => proxy.inject({ fault: "explode" }), /unknown fault/);
    assert.throws(() => proxy.inject({ fault: "status", probability: 1.5 }), /probability/);
  });
});

describe("counting", () => {
  test("part PUTs by part number, from S3 query strings and /blob/<id>/<n> paths", async () => {
    proxy.inject({ method: "PUT", partNumber: 2, fault: "status", status: 500 });
    for (const path of ["/b/k?uploadId=u&partNumber=1", "/b/k?uploadId=u&partNumber=2", "/b/k?uploadId=u&partNumber=2", "/blob/FILEID/3?sig=x", "/b/k", "/api/uploads/x/part-urls"]) {
      await send("PUT", path, { body: "p" });
    }
    assert.deepEqual(proxy.partPuts(), [1, 2, 2, 3]);
    assert.deepEqual(proxy.partPuts({ ok: true }), [1, 2, 3], "the first part-2 PUT failed");
    assert.equal(proxy.requests({ method: "PUT", path: "/blob/" }).length, 1);
  });

  test("partNumberOf reads only whole numbers", () => {
    const q = (s) => new URLSearchParams(s);
    assert.equal(partNumberOf("/b/k", q("partNumber=12&uploadId=u")), 12);
    assert.equal(partNumberOf("/b/k", q("partNumber=1x")), null);
    assert.equal(partNumberOf("/blob/abc/7", q("")), 7);
    assert.equal(partNumberOf("/blob/abc/7/x", q("")), null);
    assert.equal(partNumberOf("/b/k", q("")), null);
  });

  test("seededRandom is deterministic and within [0, 1)", () => {
    const [a, b] = [seededRandom(3), seededRandom(3)];
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, seededRandom(4)));
  });
});

/** Waits (bounded) until `check()` holds: the target learns of a reset asynchronously. */
async function waitFor(check, what = "condition") {
  for (let i = 0; i < 200; i += 1) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
