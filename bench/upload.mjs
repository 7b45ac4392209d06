// The upload entries: the same disk-backed file, part size and parts in flight for all.
// Each resolves to { bytes, partsMs, totalMs, ... }: `partsMs` until the last part is
// stored, `totalMs` with the Complete step too.
import { createReadStream } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { startStack } from "../tests/support/stack.mjs";
import { measured, measuredInPage, pageWithFile } from "./pages.mjs";

/** A multipart upload of `key` on `server` with a presigned URL (1 h) for each part, at `origin`. */
async function presignParts(ctx, server, key, origin) {
  const uploadId = await server.createMultipartUpload(key);
  const partUrls = [];
  for (let n = 1; n <= Math.ceil(ctx.fileSize / ctx.partSize); n += 1) {
    partUrls.push(await server.presign("PUT", key, { query: { partNumber: n, uploadId }, origin, expires: 3600 }));
  }
  return { uploadId, partUrls };
}

/** Throws unless `server` (default: nanio) holds `key` with exactly the file's size. */
export async function checkStored(ctx, key, server = ctx.s3) {
  const res = await server.request("HEAD", key);
  const size = Number(res.headers.get("content-length"));
  if (!res.ok || size !== ctx.fileSize) throw new Error(`${key}: HEAD answered ${res.status}, ${size} bytes, expected ${ctx.fileSize}`);
}

/** Times `sendParts()` (resolving to the ETags), then Complete from the server side, as sealdrop's worker does. */
async function timedParts(ctx, server, key, uploadId, sendParts) {
  const t0 = performance.now();
  const etags = await sendParts();
  const partsMs = performance.now() - t0;
  await server.completeMultipartUpload(key, uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
  const totalMs = performance.now() - t0;
  await checkStored(ctx, key, server);
  return { bytes: ctx.fileSize, partsMs, totalMs };
}

/**
 * Plain `fetch` PUTs of `file.slice()` from the page to presigned part URLs, through
 * the fault proxy (no faults) or straight to nanio. The object stays in the bucket
 * under `key` for the download baseline.
 */
export async function plainFetchUpload(ctx, { key, viaProxy }) {
  const { uploadId, partUrls } = await presignParts(ctx, ctx.s3, key, viaProxy ? ctx.proxy.url : ctx.s3.endpoint);
  const page = await pageWithFile(ctx, ctx.origin.url);
  try {
    return await measuredInPage(ctx, page, () => timedParts(ctx, ctx.s3, key, uploadId, () => page.evaluate(async ({ partUrls, partSize, concurrency }) => {
      await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
      const file = document.getElementById("file").files[0];
      const etags = [];
      let next = 0;
      const sender = async () => {
        while (next < partUrls.length) {
          const i = next++;
          const res = await fetch(partUrls[i], { method: "PUT", body: file.slice(i * partSize, (i + 1) * partSize) });
          if (!res.ok) throw new Error(`part ${i + 1}: HTTP ${res.status}`);
          etags[i] = res.headers.get("etag");
        }
      };
      await Promise.all(Array.from({ length: concurrency }, sender));
      return etags;
    }, { partUrls, partSize: ctx.partSize, concurrency: ctx.concurrency })));
  } finally {
    await page.close();
  }
}

/**
 * Node PUTs the parts, read from the file, straight to `server` (default: nanio): no
 * browser, no proxy, the server's own ceiling here.
 */
export async function nodeUpload(ctx, { key, server = ctx.s3 }) {
  const { uploadId, partUrls } = await presignParts(ctx, server, key, server.endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: ctx.concurrency });
  const put = (url, start, end) => new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "PUT", agent, headers: { "content-length": end - start } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(res.headers.etag) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    createReadStream(ctx.filePath, { start, end: end - 1, highWaterMark: 1024 * 1024 }).pipe(req);
  });
  try {
    return await measured(ctx, () => timedParts(ctx, server, key, uploadId, async () => {
      const etags = [];
      let next = 0;
      const sender = async () => {
        while (next < partUrls.length) {
          const i = next++;
          etags[i] = await put(partUrls[i], i * ctx.partSize, Math.min(ctx.fileSize, (i + 1) * ctx.partSize));
        }
      };
      await Promise.all(Array.from({ length: ctx.concurrency }, sender));
      return etags;
    }));
  } finally {
    agent.destroy();
  }
}

/**
 * An Uppy peer (bench/peers/<peer>/uppy.js, bundled at /peers/<peer>.js) uploading the
 * file to `key` through the signer and the fault proxy.
 */
export async function uppyUpload(ctx, { key, peer }) {
  const page = await pageWithFile(ctx, ctx.origin.url);
  try {
    const run = await measuredInPage(ctx, page, () => page.evaluate(async ({ peer, key, partSize, concurrency }) => {
      await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
      await import(`/peers/${peer}.js`);
      const file = document.getElementById("file").files[0];
      return window.benchUppy({ file, key, partSize, concurrency });
    }, { peer, key, partSize: ctx.partSize, concurrency: ctx.concurrency }));
    await checkStored(ctx, key);
    return { bytes: ctx.fileSize, ...run };
  } finally {
    await page.close();
  }
}

/**
 * The sealdrop stack the sealdrop entries share (started by the first that needs it,
 * stopped by main): `ctx.sealdropProvider` ("s3" reuses the bench's nanio behind the
 * stack's own proxy).
 */
export async function sealdropStack(ctx) {
  ctx.sealdrop ??= { stack: await startStack({ provider: ctx.sealdropProvider, s3: ctx.s3 }), links: {} };
  return ctx.sealdrop.stack;
}

/**
 * The page and module a sealdrop entry runs: the product (`build: "product"`, the
 * published package at the worker's origin, as the tests load it) or the bench-only
 * build (`"bench"`, bench/seal-wasm at the bench's origin, its workers same-origin with
 * it; it calls the worker's API across origins, which the API allows).
 */
export async function sealdropPage(ctx, stack, build, filePath) {
  if (build === "product") {
    const page = filePath ? await pageWithFile(ctx, `${stack.url}/test/blank.html`, filePath) : await ctx.browser.newPage();
    if (!filePath) await page.goto(`${stack.url}/test/blank.html`);
    return { page, module: "/pkg/sealdrop_client.js" };
  }
  const page = filePath ? await pageWithFile(ctx, ctx.origin.url, filePath) : await ctx.browser.newPage();
  if (!filePath) await page.goto(ctx.origin.url);
  return { page, module: "/seal-wasm/sealdrop_client.js" };
}

/** Throws unless a run pinned to `ctx.concurrency` reported that many in flight throughout. */
export function checkPinned(ctx, run, fixed) {
  const [low, high] = run.concurrencySeen ?? [];
  if (fixed && (low !== ctx.concurrency || high !== ctx.concurrency)) {
    throw new Error(`pinned to ${ctx.concurrency} in flight, the progress events said ${low}..${high}`);
  }
}

/** Throws unless the file `link` names was stored unsealed: its first record does not open. */
async function checkUnsealed(page, module, link) {
  const code = await page.evaluate(async ({ module, link }) => {
    const sealdrop = await import(module);
    try {
      await sealdrop.download(link, { writable: new WritableStream() });
      return "opened";
    } catch (err) {
      return err.code;
    }
  }, { module, link });
  if (code !== "record_auth_failed") throw new Error(`the plaintext-mode upload's records were sealed after all (a download gave ${code})`);
}

/**
 * sealdrop's own uploader (1 MiB records, parts of the same plaintext size as the
 * others, `ctx.concurrency` as its ceiling) from a page of `build` (sealdropPage).
 * "Parts" ends at the progress event that reaches partsTotal; the total includes the
 * worker's Complete. `fixed` pins the parts in flight at `ctx.concurrency` (instead of
 * adapting from 2 up to it) and `plain` sends the records unsealed: the bench-only
 * build's switches (client-wasm/src/bench.rs). Keeps the link in
 * `ctx.sealdrop.links[linkName]` for a download entry (none for a plain upload: its
 * records would not open). `filePath` / `size` default to the bench file.
 */
export async function sealdropUpload(ctx, { filePath = ctx.filePath, size = ctx.fileSize, build = "product", fixed = false, plain = false, linkName = "adaptive" } = {}) {
  if ((fixed || plain) && build !== "bench") throw new Error("the fixed and plain switches exist in the bench-only build alone");
  const stack = await sealdropStack(ctx);
  const { page, module } = await sealdropPage(ctx, stack, build, filePath);
  try {
    const options = { partSize: ctx.sealedPartSize, concurrency: ctx.concurrency, endpoint: stack.url };
    if (fixed) options.benchFixedConcurrency = true;
    if (plain) options.benchPlain = true;
    const run = await measuredInPage(ctx, page, () => page.evaluate(async ({ module, options }) => {
      await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
      const sealdrop = await import(module);
      await sealdrop.default();
      const file = document.getElementById("file").files[0];
      let partsMs = null;
      let low = Infinity;
      let high = 0;
      let workers = null;
      const t0 = performance.now();
      const result = await new sealdrop.Uploader(options).upload(file, {
        onProgress: (p) => {
          low = Math.min(low, p.concurrency);
          high = Math.max(high, p.concurrency);
          workers = p.cipherWorkers;
          if (partsMs === null && p.partsTotal > 0 && p.partsDone === p.partsTotal) partsMs = performance.now() - t0;
        },
      });
      const totalMs = performance.now() - t0;
      return { partsMs: partsMs ?? totalMs, totalMs, storedSize: result.size, link: result.link, concurrencySeen: [low, high], workers };
    }, { module, options }));
    const { storedSize, link, ...figures } = run;
    if (storedSize !== size) throw new Error(`sealdrop reported ${storedSize} bytes, expected ${size}`);
    checkPinned(ctx, run, fixed);
    if (plain) await checkUnsealed(page, module, link);
    else ctx.sealdrop.links[linkName] = link; // holds the file key: kept in memory only, never reported
    const how = fixed ? `${ctx.concurrency} in flight throughout` : `adaptive, ${run.concurrencySeen.join("..")} in flight`;
    return { bytes: size, ...figures, note: `provider ${ctx.sealdropProvider}, ${build} build, ${how}, ${run.workers} cipher workers` };
  } finally {
    await page.close();
  }
}
