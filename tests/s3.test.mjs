// The local S3 server the s3-mode tests and the benchmark run on (nanio behind CORS,
// tests/support/s3.mjs): it must be strict where real S3 is, or the tests would pass
// against a server kinder than production. Signatures and expiry are verified, a
// browser on another origin can PUT parts and read ETag / Content-Range (directly
// and through the fault proxy, which keeps Host so URLs signed for it verify), and
// every call the s3 provider makes works.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { launchBrowser } from "./support/browser.mjs";
import { startFaultProxy } from "./support/faultproxy.mjs";
import { checkS3, S3Error, startS3, xmlText } from "./support/s3.mjs";

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

let s3;
let proxy;

before(async () => {
  s3 = await startS3();
  proxy = await startFaultProxy({ target: s3.endpoint });
});

after(async () => {
  await proxy?.stop();
  await s3?.stop();
});

/** A raw request with full control of the Host header (fetch cannot set it). */
function rawRequest(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("every call the s3 provider makes", () => {
  test("create, presigned part PUTs, ListParts, ListMultipartUploads, complete, ranged GET, HEAD", async () => {
    const key = `files/${randomBytes(8).toString("hex")}`;
    const uploadId = await s3.createMultipartUpload(key);
    assert.ok(uploadId, "an upload id");
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1_000)];
    const etags = [];
    for (const [i, body] of parts.entries()) {
      const url = await s3.presign("PUT", key, { query: { partNumber: i + 1, uploadId } });
      const res = await fetch(url, { method: "PUT", body });
      assert.equal(res.status, 200);
      etags.push(res.headers.get("etag"));
    }
    assert.deepEqual(await s3.listParts(key, uploadId), parts.map((p, i) => ({ partNumber: i + 1, etag: etags[i], size: p.length })));
    assert.ok((await s3.listMultipartUploads()).some((u) => u.key === key && u.uploadId === uploadId));

    await s3.completeMultipartUpload(key, uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
    const whole = Buffer.concat(parts);
    assert.equal(sha256(await s3.objectBytes(key)), sha256(whole));
    assert.ok(!(await s3.listMultipartUploads()).some((u) => u.uploadId === uploadId), "no longer unfinished");

    const at = 5 * 1024 * 1024 - 10; // across the part boundary
    const get = await fetch(await s3.presign("GET", key), { headers: { range: `bytes=${at}-${at + 19}` } });
    assert.equal(get.status, 206);
    assert.equal(get.headers.get("content-range"), `bytes ${at}-${at + 19}/${whole.length}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), whole.subarray(at, at + 20));
    const head = await fetch(await s3.presign("HEAD", key), { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(whole.length));
  });

  test("abort: the parts are gone (ListParts answers NoSuchUpload) and the upload is no longer listed", async () => {
    const key = "files/aborted";
    const uploadId = await s3.createMultipartUpload(key);
    const url = await s3.presign("PUT", key, { query: { partNumber: 1, uploadId } });
    assert.equal((await fetch(url, { method: "PUT", body: "part" })).status, 200);
    await s3.abortMultipartUpload(key, uploadId);
    await assert.rejects(s3.listParts(key, uploadId), (err) => err instanceof S3Error && err.code === "NoSuchUpload" && err.status === 404);
    assert.ok(!(await s3.listMultipartUploads()).some((u) => u.uploadId === uploadId));
    const late = await fetch(url, { method: "PUT", body: "late part" });
    assert.equal(late.status, 404, "a part PUT after the abort is refused");
    assert.equal(xmlText(await late.text(), "Code"), "NoSuchUpload");
  });

  test("complete refuses an ETag that is not the stored part's", async () => {
    const key = "files/wrong-etag";
    const uploadId = await s3.createMultipartUpload(key);
    const url = await s3.presign("PUT", key, { query: { partNumber: 1, uploadId } });
    assert.equal((await fetch(url, { method: "PUT", body: "part" })).status, 200);
    await assert.rejects(
      s3.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: '"00000000000000000000000000000000"' }]),
      (err) => err instanceof S3Error && err.code === "InvalidPart",
    );
    await s3.abortMultipartUpload(key, uploadId);
  });

  test("two PUTs of one part at once: storage keeps one whole body with its own ETag, as S3 does", async () => {
    const md5 = (buf) => `"${createHash("md5").update(buf).digest("hex")}"`;
    for (let round = 0; round < 3; round += 1) {
      const key = `files/race-${round}`;
      const uploadId = await s3.createMultipartUpload(key);
      const url = await s3.presign("PUT", key, { query: { partNumber: 1, uploadId } });
      const bodies = [randomBytes(4 * 1024 * 1024), randomBytes(4 * 1024 * 1024)];
      const answers = await Promise.all(bodies.map((body) => fetch(url, { method: "PUT", body })));
      assert.deepEqual(answers.map((r) => r.status), [200, 200]);
      assert.deepEqual(answers.map((r) => r.headers.get("etag")), bodies.map(md5), "each PUT answers its own body's ETag");
      const [part] = await s3.listParts(key, uploadId);
      const winner = bodies.find((b) => md5(b) === part.etag);
      assert.ok(winner, "the listed ETag is one of the two bodies'");
      await s3.completeMultipartUpload(key, uploadId, [part]);
      assert.ok((await s3.objectBytes(key)).equals(winner), "and the stored bytes are that body, whole");
    }
  });

  test("complete refuses the part sizes S3 or R2 refuse: a short part but the last, unequal parts, a longer last part", async () => {
    const MiB5 = 5 * 1024 * 1024;
    const cases = [
      { sizes: [MiB5 - 1, 10], code: "EntityTooSmall" },
      { sizes: [MiB5, MiB5 + 1, 10], code: "InvalidPart" },
      { sizes: [MiB5, MiB5 + 1], code: "InvalidPart" },
      { sizes: [MiB5, MiB5, 1], code: null },
      { sizes: [10], code: null },
    ];
    for (const [i, { sizes, code }] of cases.entries()) {
      const key = `files/sizes-${i}`;
      const uploadId = await s3.createMultipartUpload(key);
      const parts = [];
      for (const [n, size] of sizes.entries()) {
        const url = await s3.presign("PUT", key, { query: { partNumber: n + 1, uploadId } });
        const res = await fetch(url, { method: "PUT", body: Buffer.alloc(size, n) });
        parts.push({ partNumber: n + 1, etag: res.headers.get("etag") });
      }
      const done = s3.completeMultipartUpload(key, uploadId, parts);
      if (code) {
        await assert.rejects(done, (err) => err.code === code && err.status === 400, `sizes ${sizes}: ${code}`);
        await s3.abortMultipartUpload(key, uploadId);
      } else {
        await done;
        assert.equal((await s3.objectBytes(key)).length, sizes.reduce((a, b) => a + b), `sizes ${sizes} complete`);
      }
    }
  });

  test("objectBytes of a missing key: NoSuchKey", async () => {
    await assert.rejects(s3.objectBytes("files/none"), (err) => err.code === "NoSuchKey" && err.status === 404);
  });
});

describe("signatures and expiry are verified", () => {
  test("an unsigned request is refused", async () => {
    const res = await fetch(s3.objectUrl("", { query: { uploads: "" } }));
    assert.equal(res.status, 403);
  });

  test("a tampered presigned URL is refused: SignatureDoesNotMatch", async () => {
    const url = new URL(await s3.presign("GET", "files/x"));
    const sig = url.searchParams.get("X-Amz-Signature");
    url.searchParams.set("X-Amz-Signature", (sig[0] === "0" ? "1" : "0") + sig.slice(1));
    const res = await fetch(url);
    assert.equal(res.status, 403);
    assert.equal(xmlText(await res.text(), "Code"), "SignatureDoesNotMatch");
  });

  test("a presigned URL for another part than the one requested is refused", async () => {
    const url = new URL(await s3.presign("PUT", "files/x", { query: { partNumber: 1, uploadId: "u" } }));
    url.searchParams.set("partNumber", "2");
    assert.equal((await fetch(url, { method: "PUT", body: "x" })).status, 403);
  });

  test("an expired presigned URL is refused", async () => {
    // Signed 2 minutes ago, valid for 60 s.
    const then = new Date(Date.now() - 120_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
    const res = await fetch(await s3.presign("GET", "files/x", { expires: 60, datetime: then }));
    assert.equal(res.status, 403);
    // nanio says RequestTimeTooSkewed where AWS says AccessDenied; both are 403.
    assert.match(xmlText(await res.text(), "Code"), /^(RequestTimeTooSkewed|AccessDenied)$/);
  });

  test("a header-signed request with the wrong secret is refused", async () => {
    const { AwsClient } = await import("aws4fetch");
    const wrong = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: "not-the-secret", region: s3.region, service: "s3" });
    const res = await wrong.fetch(s3.objectUrl("", { query: { uploads: "" } }));
    assert.equal(res.status, 403);
    assert.equal(xmlText(await res.text(), "Code"), "SignatureDoesNotMatch");
    await checkS3(await s3.request("GET", "", { query: { uploads: "" } })); // the right one passes
  });

  test("the signature covers Host: a URL signed for one address is refused at another", async () => {
    const url = await s3.presign("GET", "files/x", { origin: proxy.url });
    const direct = new URL(url);
    direct.host = new URL(s3.endpoint).host;
    assert.equal((await rawRequest(direct)).status, 403, "sent straight to nanio, Host differs from the signed one");
    const viaHost = await rawRequest(direct, { headers: { host: new URL(proxy.url).host } });
    assert.equal(viaHost.status, 404, "with the signed Host it verifies (and the key is missing)");
  });
});

describe("CORS, for a browser on another origin", () => {
  test("a preflight for a part PUT is answered and allows the method and headers", async () => {
    const res = await rawRequest(`${s3.endpoint}/${s3.bucket}/files/x?partNumber=1&uploadId=u`, {
      method: "OPTIONS",
      headers: { origin: "http://app.example", "access-control-request-method": "PUT", "access-control-request-headers": "content-type" },
    });
    assert.equal(res.status, 200);
    assert.ok(["*", "http://app.example"].includes(res.headers["access-control-allow-origin"]));
    assert.match(res.headers["access-control-allow-methods"], /\bPUT\b/);
    assert.match(res.headers["access-control-allow-headers"], /content-type/i);
  });

  test("in Chromium: part PUTs (direct and through the proxy) expose ETag, ranged GETs Content-Range, errors their status", async () => {
    const page = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>another origin</title>");
    });
    page.listen(0, "127.0.0.1");
    await once(page, "listening");
    const browser = await launchBrowser();
    try {
      const tab = await browser.newPage();
      await tab.goto(`http://127.0.0.1:${page.address().port}/`);

      const key = "files/browser";
      const uploadId = await s3.createMultipartUpload(key);
      proxy.resetLog();
      const urls = {
        direct: await s3.presign("PUT", key, { query: { partNumber: 1, uploadId } }),
        proxied: await s3.presign("PUT", key, { query: { partNumber: 2, uploadId }, origin: proxy.url }),
      };
      const tampered = new URL(urls.direct);
      tampered.searchParams.set("X-Amz-Signature", "0".repeat(64));
      const got = await tab.evaluate(async ({ urls, tampered }) => {
        // A typed Blob makes Content-Type non-safelisted: the PUT needs a preflight.
        const body = new Blob([new Uint8Array(5 * 1024 * 1024).fill(7)], { type: "application/x-sealdrop-part" });
        const put = async (url) => {
          const res = await fetch(url, { method: "PUT", body });
          return { status: res.status, etag: res.headers.get("etag") };
        };
        return {
          direct: await put(urls.direct),
          proxied: await put(urls.proxied),
          tampered: await put(tampered),
        };
      }, { urls, tampered: tampered.toString() });
      assert.equal(got.direct.status, 200);
      assert.match(got.direct.etag, /^"[0-9a-f]{32}"$/, "ETag is exposed to the page");
      assert.equal(got.proxied.status, 200);
      assert.equal(got.proxied.etag, got.direct.etag, "same bytes, same ETag");
      assert.deepEqual({ status: got.tampered.status, etag: got.tampered.etag }, { status: 403, etag: null },
        "a refused signature reaches the page as a readable 403");
      assert.deepEqual(proxy.requests({ method: "OPTIONS" }).map((e) => e.status), [200], "the preflight went through the proxy");
      assert.deepEqual(proxy.partPuts({ ok: true }), [2]);

      const parts = await s3.listParts(key, uploadId);
      await s3.completeMultipartUpload(key, uploadId, parts);
      const getUrl = await s3.presign("GET", key, { origin: proxy.url });
      const range = await tab.evaluate(async (url) => {
        const res = await fetch(url, { headers: { range: "bytes=5242870-5242879" } });
        return { status: res.status, contentRange: res.headers.get("content-range"), bytes: [...new Uint8Array(await res.arrayBuffer())] };
      }, getUrl);
      assert.deepEqual(range, { status: 206, contentRange: "bytes 5242870-5242879/10485760", bytes: Array(10).fill(7) });
    } finally {
      await browser.close();
      page.closeAllConnections();
      page.close();
    }
  });
});
