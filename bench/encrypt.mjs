// The encrypt-only entries: AES-256-GCM over `ctx.encryptSize` bytes in records of
// `ctx.recordSize`, in a page of the bench's origin, no file and no network. The input
// is 8 random records used in turn (AES's speed does not depend on the bytes); the
// nonce and AAD are built per record as the format does (index in bytes 3..11, a
// 76-byte header as AAD). Keys and inputs are made before the measured window opens,
// then 16 records warm up, untimed. The pipeline entry instead reads its
// `ctx.encryptSize` bytes from the bench's disk-backed file, as an upload does. Each
// resolves to { bytes, ms, ... }.
import { measuredInPage, pageWithFile } from "./pages.mjs";

/** A page whose window.benchInputs holds 8 random records and window.benchRandom(n) makes more. */
async function encryptPage(ctx) {
  const page = await ctx.browser.newPage();
  await page.goto(ctx.origin.url);
  await page.evaluate((recordSize) => {
    window.benchRandom = (n) => {
      const bytes = new Uint8Array(n);
      for (let o = 0; o < n; o += 65536) crypto.getRandomValues(bytes.subarray(o, o + 65536));
      return bytes;
    };
    window.benchInputs = Array.from({ length: 8 }, () => window.benchRandom(recordSize));
  }, ctx.recordSize);
  return page;
}

/**
 * Times `window.benchSeal(index)` (resolving to a sealed record) over `ctx.encryptSize`
 * bytes, `inFlight` records at once, after 16 untimed records of warm-up.
 */
function measuredSeals(ctx, page, inFlight) {
  return measuredInPage(ctx, page, () => page.evaluate(async ({ total, recordSize, inFlight }) => {
    await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
    const run = async (records) => {
      let next = 0;
      let bytes = 0;
      const sealer = async () => {
        while (next < records) {
          const sealed = await window.benchSeal(next++);
          bytes += sealed.byteLength - 16;
        }
      };
      await Promise.all(Array.from({ length: inFlight }, sealer));
      return bytes;
    };
    await run(16);
    const t0 = performance.now();
    const bytes = await run(total / recordSize);
    return { bytes, ms: performance.now() - t0 };
  }, { total: ctx.encryptSize, recordSize: ctx.recordSize, inFlight }));
}

/** `crypto.subtle.encrypt` from JS, `inFlight` records at once: the reference figure. */
export async function webCryptoEncrypt(ctx, { inFlight }) {
  const page = await encryptPage(ctx);
  try {
    await page.evaluate(async () => {
      const key = await crypto.subtle.importKey("raw", window.benchRandom(32), "AES-GCM", false, ["encrypt"]);
      const aad = window.benchRandom(76);
      window.benchSeal = (index) => {
        const iv = new Uint8Array(12);
        new DataView(iv.buffer).setBigUint64(3, BigInt(index));
        return crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, window.benchInputs[index % 8]);
      };
    });
    return await measuredSeals(ctx, page, inFlight);
  } finally {
    await page.close();
  }
}

/**
 * The client's own record cipher (client-wasm/src/cipher.rs) on `backend`
 * ("webcrypto" or "aes-gcm"), driven from Rust through its async seam: the bench-only
 * build bench/seal-wasm (the client with its `bench` feature) served at /seal-wasm/.
 * Each record is a JS Uint8Array handed to `BenchCipher.seal`, which checks its shape,
 * builds nonce and AAD, and seals it (WebCrypto: straight from the JS buffer; aes-gcm:
 * copied into wasm memory, sealed, copied out), `inFlight` records at once.
 */
export async function rustEncrypt(ctx, { backend, inFlight }) {
  const page = await encryptPage(ctx);
  try {
    const made = await page.evaluate(async ([recordSize, backend]) => {
      const wasm = await import("/seal-wasm/sealdrop_client.js");
      await wasm.default();
      const cipher = await wasm.BenchCipher.create(window.benchRandom(32), window.benchRandom(32), recordSize, backend);
      window.benchSeal = (index) => cipher.seal(BigInt(index), window.benchInputs[index % 8]);
      return cipher.backend;
    }, [ctx.recordSize, backend]);
    if (made !== backend) throw new Error(`BenchCipher runs on ${made}, not ${backend}`);
    return await measuredSeals(ctx, page, inFlight);
  } finally {
    await page.close();
  }
}

/**
 * The whole upload pipeline without the network (client-wasm/src/bench.rs
 * `benchPipeline`): the bench file read, sealed in the client's cipher workers part by
 * part (the uploader's plan, scheduler and loop, `ctx.concurrency` parts in flight
 * throughout) and each sealed part dropped where an upload would send it. Timed like
 * the uploads, over the first `ctx.encryptSize` bytes of the file (a slice of a
 * disk-backed File is read from disk as the File is), from a page of the bench-only
 * build.
 */
export async function pipelineEncrypt(ctx) {
  const size = Math.min(ctx.encryptSize, ctx.fileSize);
  const page = await pageWithFile(ctx, ctx.origin.url);
  try {
    const run = await measuredInPage(ctx, page, () => page.evaluate(async ({ size, partSize, concurrency }) => {
      await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
      const wasm = await import("/seal-wasm/sealdrop_client.js");
      await wasm.default();
      const file = document.getElementById("file").files[0].slice(0, size);
      const t0 = performance.now();
      const done = await wasm.benchPipeline(file, partSize, concurrency, 2);
      return { bytes: file.size, ms: performance.now() - t0, ...done };
    }, { size, partSize: ctx.sealedPartSize, concurrency: ctx.concurrency }));
    if (run.bytes !== size) throw new Error(`the pipeline read ${run.bytes} bytes, expected ${size}`);
    if (run.backend !== "webcrypto" || run.workers !== 2) throw new Error(`the pipeline ran on ${run.backend} with ${run.workers} workers, not WebCrypto in 2`);
    return { ...run, note: `${run.parts} parts, ${run.workers} cipher workers, ${ctx.concurrency} in flight` };
  } finally {
    await page.close();
  }
}
