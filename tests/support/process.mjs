// A background service for the tests (wrangler dev, nanio): its own process group,
// output to a log file under test-results/, and stopped for sure: stop() sends
// SIGTERM to the whole group, SIGKILL after 5 s, and a test process that exits
// without calling stop() kills the group on its way out.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The last `lines` lines of a log file, for error messages. */
export function tail(file, lines = 60) {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// A test file its runner stops (tests/run.mjs's hang guard sends SIGTERM) or a Ctrl-C
// exits through process.exit, so every service's "exit" handler below stops its
// process group instead of leaving wrangler, workerd or nanio running.
for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]]) {
  process.once(signal, () => process.exit(code));
}

/**
 * Spawns `command args` with stderr (and stdout unless `pipeStdout`) in
 * `test-results/<logName>`.
 * @param {{ command: string, args: string[], env?: Record<string, string>,
 *   logName: string, pipeStdout?: boolean }} options
 * @returns {{ child: import("node:child_process").ChildProcess, logFile: string,
 *   running: () => boolean, stop: () => Promise<void> }}
 */
export function spawnService({ command, args, env = {}, logName, pipeStdout = false }) {
  mkdirSync(join(ROOT, "test-results"), { recursive: true });
  const logFile = join(ROOT, "test-results", logName);
  const logFd = openSync(logFile, "w");
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true, // own process group: stop() ends its children too
    stdio: ["ignore", pipeStdout ? "pipe" : logFd, logFd],
    env: { ...process.env, ...env },
  });
  closeSync(logFd);
  const exited = once(child, "exit");
  let running = true;
  exited.then(() => { running = false; });
  const killGroup = () => { try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ } };
  process.on("exit", killGroup);

  const stop = async () => {
    if (running) {
      try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
      const timer = setTimeout(killGroup, 5_000);
      await exited;
      clearTimeout(timer);
    }
    // A grandchild (workerd) may outlive its parent by a moment; end the group.
    killGroup();
    process.off("exit", killGroup);
  };
  return { child, logFile, running: () => running, stop };
}
