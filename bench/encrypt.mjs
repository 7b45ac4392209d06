// The encrypt-only entries: AES-256-GCM over `ctx.encryptSize` bytes in records of
// `ctx.recordSize`, in a page of the bench's origin, no file and no network. The input
// is 8 random records used in turn (AES's speed does not depend on the bytes); the
// nonce and AAD are built per record as the format does (index in bytes 3..11, a
// 76-byte header as AAD). Keys and inputs are made before the measured window opens,
// then 16 records warm up, untimed. Each resolves to { bytes, ms, ... }.
import { measuredInPage } from "./pages.mjs";

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
    return await measuredInPage(ctx, page, () => page.evaluate(async ({ total, recordSize, inFlight }) => {
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
  } finally {
    await page.close();
  }
}

/**
 * The format's own sealing (sealdrop-protocol's `seal_record_into`, software AES from
 * the aes-gcm crate) compiled to wasm by the bench-only crate bench/seal-wasm, served
 * at /seal-wasm/: records copied into wasm memory, sealed, copied out, as the client's
 * uploader does today, synchronously on the main thread.
 */
export async function wasmEncrypt(ctx) {
  const page = await encryptPage(ctx);
  try {
    await page.evaluate(async (recordSize) => {
      const wasm = await import("/seal-wasm/sealdrop_bench_seal.js");
      await wasm.default();
      window.benchSealer = new wasm.Sealer(window.benchRandom(32), window.benchRandom(32), recordSize);
    }, ctx.recordSize);
    return await measuredInPage(ctx, page, () => page.evaluate(async ({ total, recordSize }) => {
      await new Promise((resolve) => setTimeout(resolve)); // see pages.mjs measuredInPage
      const run = (records) => {
        let bytes = 0;
        for (let i = 0; i < records; i += 1) bytes += window.benchSealer.seal(BigInt(i), window.benchInputs[i % 8]).byteLength - 16;
        return bytes;
      };
      run(16);
      const t0 = performance.now();
      const bytes = run(total / recordSize);
      return { bytes, ms: performance.now() - t0 };
    }, { total: ctx.encryptSize, recordSize: ctx.recordSize }));
  } finally {
    await page.close();
  }
}
