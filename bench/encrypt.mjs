// The encrypt-only entries: AES-256-GCM over `ctx.encryptSize` bytes in records of
// `ctx.recordSize`, in a page of the bench's origin, no file and no network. The input
// is 8 random records used in turn (AES's speed does not depend on the bytes); the
// nonce and AAD are built per record as the format does (index in bytes 3..11, the
// 76-byte v2 header as AAD). A warm-up of 16 records runs first, untimed.
// Each resolves to { bytes, ms, ... }.
import { measuredInPage } from "./pages.mjs";

async function encryptPage(ctx) {
  const page = await ctx.browser.newPage();
  await page.goto(ctx.origin.url);
  return page;
}

/** `crypto.subtle.encrypt` from JS, `inFlight` records at once: the reference figure. */
export async function webCryptoEncrypt(ctx, { inFlight }) {
  const page = await encryptPage(ctx);
  try {
    return await measuredInPage(ctx, page, () => page.evaluate(async ({ total, recordSize, inFlight }) => {
      const random = (n) => {
        const bytes = new Uint8Array(n);
        for (let o = 0; o < n; o += 65536) crypto.getRandomValues(bytes.subarray(o, o + 65536));
        return bytes;
      };
      const key = await crypto.subtle.importKey("raw", random(32), "AES-GCM", false, ["encrypt"]);
      const aad = random(76);
      const inputs = Array.from({ length: 8 }, () => random(recordSize));
      const seal = (index) => {
        const iv = new Uint8Array(12);
        new DataView(iv.buffer).setBigUint64(3, BigInt(index));
        return crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, inputs[index % inputs.length]);
      };
      const run = async (records) => {
        let next = 0;
        let bytes = 0;
        const worker = async () => {
          while (next < records) {
            const sealed = await seal(next++);
            bytes += sealed.byteLength - 16;
          }
        };
        await Promise.all(Array.from({ length: inFlight }, worker));
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
 * uploader does today.
 */
export async function wasmEncrypt(ctx) {
  const page = await encryptPage(ctx);
  try {
    return await measuredInPage(ctx, page, () => page.evaluate(async ({ total, recordSize }) => {
      const wasm = await import("/seal-wasm/sealdrop_bench_seal.js");
      await wasm.default();
      const random = (n) => {
        const bytes = new Uint8Array(n);
        for (let o = 0; o < n; o += 65536) crypto.getRandomValues(bytes.subarray(o, o + 65536));
        return bytes;
      };
      const sealer = new wasm.Sealer(random(32), random(32), recordSize);
      const inputs = Array.from({ length: 8 }, () => random(recordSize));
      const run = (records) => {
        let bytes = 0;
        for (let i = 0; i < records; i += 1) bytes += sealer.seal(BigInt(i), inputs[i % inputs.length]).byteLength - 16;
        return bytes;
      };
      run(16);
      const t0 = performance.now();
      const bytes = run(total / recordSize);
      const ms = performance.now() - t0;
      sealer.free();
      return { bytes, ms };
    }, { total: ctx.encryptSize, recordSize: ctx.recordSize }));
  } finally {
    await page.close();
  }
}
