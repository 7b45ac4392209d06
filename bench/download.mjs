// The download entries: the object an upload entry left in storage, fetched in ranged
// GETs with the downloader's parts in flight. Each resolves to { bytes, ms, ... }.
import { Agent, request as httpRequest } from "node:http";
import { measured, measuredInPage } from "./pages.mjs";
import { checkPinned, sealdropPage, sealdropStack } from "./upload.mjs";

/** Splits `size` bytes into [start, end) ranges of `rangeSize`. */
function ranges(size, rangeSize) {
  const out = [];
  for (let start = 0; start < size; start += rangeSize) out.push([start, Math.min(size, start + rangeSize)]);
  return out;
}

/**
 * Plain ranged GETs of `key` from the page (presigned GET, unsigned Range header),
 * `rangeSize` bytes each (whole records of a sealed part: what sealdrop's downloader
 * will ask for), `concurrency` in flight, through the fault proxy. Each body is read
 * to its end and dropped, as a sink that writes elsewhere would.
 */
export async function plainRangedGets(ctx, { key }) {
  const url = await ctx.s3.presign("GET", key, { origin: ctx.proxy.url, expires: 3600 });
  const page = await ctx.browser.newPage();
  await page.goto(ctx.origin.url);
  try {
    return await measuredInPage(ctx, page, () => page.evaluate(async ({ url, ranges, concurrency }) => {
      await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
      let next = 0;
      let bytes = 0;
      const getter = async () => {
        while (next < ranges.length) {
          const [start, end] = ranges[next++];
          const res = await fetch(url, { headers: { range: `bytes=${start}-${end - 1}` } });
          if (res.status !== 206) throw new Error(`range ${start}-${end - 1}: HTTP ${res.status}`);
          const reader = res.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            bytes += value.byteLength;
          }
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: concurrency }, getter));
      return { bytes, ms: performance.now() - t0 };
    }, { url, ranges: ranges(ctx.fileSize, ctx.rangeSize), concurrency: ctx.concurrency }));
  } finally {
    await page.close();
  }
}

/** The same ranges fetched by Node straight from `server` (default: nanio; no browser, no proxy): its own ceiling. */
export async function nodeRangedGets(ctx, { key, server = ctx.s3 }) {
  const url = await server.presign("GET", key, { expires: 3600 });
  const agent = new Agent({ keepAlive: true, maxSockets: ctx.concurrency });
  const get = (start, end) => new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers: { range: `bytes=${start}-${end - 1}` } }, (res) => {
      let bytes = 0;
      res.on("data", (chunk) => { bytes += chunk.length; });
      res.on("end", () => (res.statusCode === 206 ? resolve(bytes) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
  try {
    return await measured(ctx, async () => {
      const all = ranges(ctx.fileSize, ctx.rangeSize);
      let next = 0;
      let bytes = 0;
      const getter = async () => {
        while (next < all.length) {
          const [start, end] = all[next++];
          bytes += await get(start, end);
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: ctx.concurrency }, getter));
      return { bytes, ms: performance.now() - t0 };
    });
  } finally {
    agent.destroy();
  }
}

/**
 * sealdrop's downloader on the link the upload entry `linkName` made: fetch, open every
 * record, hand the plaintext over in order: to one Blob (`sink: "blob"`, the client's
 * default sink) or to a `WritableStream` that counts and drops it (`sink: "stream"`, as
 * a service worker's streamed save or a file on disk would take it, without the disk).
 * Uses the client's own range size, `ctx.concurrency` as its ceiling, and (`fixed`, the
 * bench-only build's switch) that many ranges in flight throughout.
 */
export async function sealdropDownload(ctx, { size = ctx.fileSize, sink = "blob", build = "product", fixed = false, linkName = "adaptive" } = {}) {
  if (fixed && build !== "bench") throw new Error("the fixed switch exists in the bench-only build alone");
  const stack = await sealdropStack(ctx);
  const link = ctx.sealdrop.links[linkName];
  if (!link) throw new Error(`no sealdrop upload (${linkName}) ran before: nothing to download`);
  const { page, module } = await sealdropPage(ctx, stack, build);
  try {
    const options = { concurrency: ctx.concurrency };
    if (fixed) options.benchFixedConcurrency = true;
    const run = await measuredInPage(ctx, page, () => page.evaluate(async ({ module, link, options, sink }) => {
      await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
      const sealdrop = await import(module);
      await sealdrop.default();
      let low = Infinity;
      let high = 0;
      const onProgress = (p) => {
        low = Math.min(low, p.concurrency);
        high = Math.max(high, p.concurrency);
      };
      const t0 = performance.now();
      if (sink === "stream") {
        let bytes = 0;
        const writable = new WritableStream({ write(chunk) { bytes += chunk.byteLength; } });
        await sealdrop.download(link, { ...options, onProgress, writable });
        return { bytes, ms: performance.now() - t0, concurrencySeen: [low, high] };
      }
      const { blob } = await sealdrop.download(link, { ...options, onProgress });
      return { bytes: blob.size, ms: performance.now() - t0, concurrencySeen: [low, high] };
    }, { module, link, options, sink }));
    if (run.bytes !== size) throw new Error(`sealdrop downloaded ${run.bytes} bytes, expected ${size}`);
    checkPinned(ctx, run, fixed);
    const how = fixed ? `${ctx.concurrency} in flight throughout` : `adaptive, ${run.concurrencySeen.join("..")} in flight`;
    return { ...run, note: `provider ${ctx.sealdropProvider}, ${build} build, ${how}, to a ${sink}` };
  } finally {
    await page.close();
  }
}
