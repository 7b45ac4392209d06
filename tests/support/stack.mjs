// Everything one storage provider needs for an end-to-end test, started together:
//
//   for (const provider of PROVIDERS) {
//     const stack = await startStack({ provider });
//     // the browser opens `${stack.url}/test/blank.html`; faults go to stack.proxy
//     await stack.stop();
//   }
//
// - "r2-binding": the worker (local R2) behind the fault proxy. The browser talks
//   to the proxy for everything, so the page, the API and the worker's /blob/ part
//   URLs share one origin, and PUBLIC_URL (where the worker points part URLs) is
//   the proxy's address.
// - "s3": nanio behind the fault proxy, and the worker in s3 mode pointed at the
//   proxy (S3_ENDPOINT), so the URLs it presigns carry the proxy's address and every
//   storage request, the browser's part PUTs and the worker's own calls alike, can
//   be counted and faulted there. The browser opens the worker directly
//   (PUBLIC_URL), which is where the pages live.
import { startFaultProxy } from "./faultproxy.mjs";
import { startS3 } from "./s3.mjs";
import { freePort, startServer } from "./server.mjs";

/** The providers the end-to-end suites run against, each with its own stack. */
export const PROVIDERS = ["r2-binding", "s3"];

/**
 * Starts the stack for `provider`.
 * @param {{ provider?: "r2-binding" | "s3", vars?: Record<string, string>,
 *   secrets?: Record<string, string>, persistDir?: string, s3DataDir?: string,
 *   s3?: Awaited<ReturnType<typeof startS3>>, seed?: number, keepAlive?: boolean }}
 *   [options] `vars` /
 *   `secrets` override the worker's (after the provider's own); `persistDir` /
 *   `s3DataDir` keep the worker's / nanio's state in a folder the caller owns (e.g.
 *   for a privacy scan or a restart); `s3`: an S3 server already running (the
 *   benchmark's), which stop() leaves running; `seed` and `keepAlive` go to the
 *   fault proxy (see faultproxy.mjs: `keepAlive: false` makes every injected
 *   network failure reach the page).
 * @returns {Promise<{ provider: string, url: string, workerUrl: string,
 *   proxy: Awaited<ReturnType<typeof startFaultProxy>>,
 *   s3: Awaited<ReturnType<typeof startS3>> | null,
 *   server: Awaited<ReturnType<typeof startServer>>, stop: () => Promise<void> }>}
 *   `url`: where the browser opens pages and calls the API; `workerUrl`: the
 *   worker itself, past the proxy.
 */
export async function startStack({ provider = "r2-binding", vars = {}, secrets = {}, persistDir, s3DataDir, s3: runningS3, seed, keepAlive } = {}) {
  const started = [];
  const stop = async () => {
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const port = await freePort();
    const workerUrl = `http://127.0.0.1:${port}`;
    if (provider === "r2-binding") {
      const proxy = await startFaultProxy({ target: workerUrl, seed, keepAlive });
      started.push(proxy);
      const server = await startServer({
        port, persistDir, secrets,
        vars: { STORAGE_MODE: "r2-binding", PUBLIC_URL: proxy.url, ...vars },
      });
      started.push(server);
      return { provider, url: proxy.url, workerUrl, proxy, s3: null, server, stop };
    }
    if (provider === "s3") {
      const s3 = runningS3 ?? await startS3({ dataDir: s3DataDir });
      if (!runningS3) started.push(s3);
      const proxy = await startFaultProxy({ target: s3.endpoint, seed, keepAlive });
      started.push(proxy);
      const server = await startServer({
        port, persistDir,
        vars: {
          STORAGE_MODE: "s3", PUBLIC_URL: workerUrl, S3_ENDPOINT: proxy.url, S3_BUCKET: s3.bucket,
          S3_REGION: s3.region, S3_PATH_STYLE: "true", ...vars,
        },
        secrets: { S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: s3.secretAccessKey, ...secrets },
      });
      started.push(server);
      return { provider, url: workerUrl, workerUrl, proxy, s3, server, stop };
    }
    throw new Error(`unknown provider ${JSON.stringify(provider)}: one of r2-binding, s3`);
  } catch (err) {
    await stop();
    throw err;
  }
}
