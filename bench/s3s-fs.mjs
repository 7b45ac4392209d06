// s3s-fs (Rust; TOOLCHAIN.md's faster S3 server) as a second server for one question
// only: is nanio what limits the figures? Node PUTs and GETs the same parts to both in
// the same run, so the machine's load weighs on both alike. Optional and bench-only:
// used when installed in .tools/s3s-fs (S3S_FS_INSTALL, about 3 minutes of cargo),
// never by the e2e tests (it has no CORS and no ListMultipartUploads, which the sweep
// needs). Node only: without CORS no page can reach it.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, spawnService, tail } from "../tests/support/process.mjs";
import { checkS3, s3Client } from "../tests/support/s3.mjs";
import { freePort } from "../tests/support/server.mjs";

export const S3S_FS_BIN = join(ROOT, ".tools/s3s-fs/bin/s3s-fs");
export const S3S_FS_INSTALL = "cargo install s3s-fs@0.14.1 --features binary --locked --root .tools/s3s-fs";
const STARTUP_TIMEOUT_MS = 30_000;

export const s3sFsInstalled = () => existsSync(S3S_FS_BIN);

/** Starts s3s-fs on a free port with a fresh folder and one bucket; the client of s3.mjs plus `pid` and `stop`. */
export async function startS3sFs({ bucket = "sealdrop-bench", region = "us-east-1" } = {}) {
  if (!s3sFsInstalled()) throw new Error(`s3s-fs is not installed: ${S3S_FS_INSTALL}`);
  const dataDir = mkdtempSync(join(tmpdir(), "sealdrop-s3s-fs-"));
  const accessKeyId = randomBytes(10).toString("hex").toUpperCase();
  const secretAccessKey = randomBytes(30).toString("base64url");
  const port = await freePort();
  const service = spawnService({
    command: S3S_FS_BIN,
    args: ["--host", "127.0.0.1", "--port", String(port), "--access-key", accessKeyId, "--secret-key", secretAccessKey, dataDir],
    logName: `s3s-fs-${port}.log`,
  });
  const stop = async () => {
    await service.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const server = {
    ...s3Client({ endpoint: `http://127.0.0.1:${port}`, region, bucket, accessKeyId, secretAccessKey }),
    pid: service.child.pid,
    stop,
  };
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    try {
      await checkS3(await server.request("PUT", ""));
      return server;
    } catch (err) {
      if (!service.running() || Date.now() > deadline) {
        await stop();
        throw new Error(`s3s-fs did not create its bucket (${err.message}; log ${service.logFile}):\n${tail(service.logFile)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
