// End to end, in a real Chromium against the real worker in workerd, once per storage
// provider: files are uploaded encrypted (several at once), downloaded, decrypted and
// compared by SHA-256; then the stack is stopped and everything storage wrote to disk
// (the local R2 bucket, or nanio's bucket in s3 mode) and the Durable Objects' storage
// is scanned for plaintext, file names, MIME types and keys.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./support/server.mjs";
import { launchBrowser, openClientPage } from "./support/browser.mjs";
import { stubSavePicker } from "./support/page-helpers.mjs";
import { PROVIDERS, startStack } from "./support/stack.mjs";

const MiB = 1024 * 1024;
const RECORD = MiB; // the client's default record size (FORMAT.md §3)
const TAG = 16;

const work = mkdtempSync(join(tmpdir(), "sealdrop-transfer-"));
// A marker unique to this run, in every file name, so the scan looks for names that
// cannot be in storage by coincidence.
const marker = randomBytes(6).toString("hex");

/** The files of the issue: 0 B, 1 B, 1 MiB + 1 B and 64 MiB, random content. */
const FILES = [
  { label: "empty", size: 0, name: `sealdrop-${marker}-empty.bin`, type: "application/octet-stream" },
  { label: "one byte", size: 1, name: `Ünïcødé ${marker} one byte.txt`, type: "text/plain" },
  // A MIME type of its own, given to upload(), so the scan can look for the type too.
  { label: "1 MiB + 1 B", size: MiB + 1, name: `sealdrop-${marker}-record-plus-one.bin`, type: `application/x-sealdrop-${marker}`, typeOverride: true },
  { label: "64 MiB", size: 64 * MiB, name: `sealdrop-${marker}-large.bin`, type: "application/octet-stream" },
];

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const sealedSize = (size) => size + TAG * Math.max(1, Math.ceil(size / RECORD));

let browser;

before(async () => {
  const dir = join(work, "files");
  mkdirSync(dir);
  for (const f of FILES) {
    f.path = join(dir, f.name);
    f.bytes = randomBytes(f.size);
    f.sha256 = sha256(f.bytes);
    writeFileSync(f.path, f.bytes);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  rmSync(work, { recursive: true, force: true });
});

for (const provider of PROVIDERS) describe(`encrypted transfer, end to end (${provider})`, () => {
  // Where the worker's Durable Objects (and, in r2-binding mode, R2) and nanio (in s3
  // mode) keep their data: kept after the stack stops, for the scan.
  const persistDir = join(work, provider, "state");
  const s3DataDir = join(work, provider, "s3");
  /** Per file: the link and id the upload gave, filled in by the first test. */
  const uploaded = new Map();
  let stack;
  let page;

  before(async () => {
    mkdirSync(s3DataDir, { recursive: true });
    stack = await startStack({ provider, persistDir, s3DataDir: provider === "s3" ? s3DataDir : undefined });
    page = await openClientPage(browser, stack.url);
    await page.evaluate(() => {
      const input = document.createElement("input");
      input.type = "file";
      input.multiple = true;
      input.id = "files";
      document.body.append(input);
    });
  });

  after(async () => {
    await page?.close();
    await stack?.stop();
  });

  test("uploads 0 B, 1 B, 1 MiB + 1 B and 64 MiB at once, with progress", async () => {
    // Real disk-backed File objects, as a person picking files would give.
    await page.setInputFiles("#files", FILES.map((f) => f.path));
    const overrides = Object.fromEntries(FILES.filter((f) => f.typeOverride).map((f) => [f.name, f.type]));
    const results = await page.evaluate(async (overrides) => {
      const files = [...document.getElementById("files").files];
      return Promise.all(files.map(async (file) => {
        const events = [];
        const result = await new window.sealdrop.Uploader().upload(file, {
          onProgress: (p) => events.push({ ...p }),
          ...(overrides[file.name] ? { type: overrides[file.name] } : {}),
        });
        return { name: file.name, result, events };
      }));
    }, overrides);
    assert.equal(results.length, FILES.length);
    for (const { name, result, events } of results) {
      const f = FILES.find((x) => x.name === name);
      assert.ok(f, `unexpected file ${name}`);
      assert.match(result.fileId, /^[A-Za-z0-9_-]{32}$/);
      // The link names the file's default share; the key travels only in the
      // fragment: 43 base64url characters after "k1.".
      const link = new URL(result.link);
      assert.equal(link.origin, stack.url);
      assert.match(link.pathname, /^\/s\/[A-Za-z0-9_-]{32}$/);
      assert.match(link.hash, /^#k1\.[A-Za-z0-9_-]{43}$/);
      assert.equal(link.search, "");

      assert.ok(events.length >= 2, `${f.label}: at least a first and a last progress event`);
      for (const [i, e] of events.entries()) {
        assert.equal(e.bytesTotal, f.size, `${f.label}: bytesTotal`);
        assert.ok(e.bytesDone >= 0 && e.bytesDone <= f.size, `${f.label}: bytesDone in range`);
        if (i > 0) assert.ok(e.bytesDone >= events[i - 1].bytesDone, `${f.label}: progress never goes back`);
        assert.ok(Number.isFinite(e.speed) && e.speed >= 0, `${f.label}: speed is a rate`);
        assert.ok(e.eta === null || (Number.isFinite(e.eta) && e.eta >= 0), `${f.label}: eta`);
      }
      assert.equal(events.at(-1).bytesDone, f.size, `${f.label}: ends at 100%`);
      uploaded.set(f.name, result);
    }
  });

  test("the server holds exactly the sealed size, reached through the link's share", async () => {
    for (const f of FILES) {
      const { fileId, link } = uploaded.get(f.name);
      // Only the owner reads the file record directly; everyone else opens a download.
      assert.equal((await fetch(`${stack.url}/api/files/${fileId}`)).status, 401);
      const shares = `${stack.url}/api/shares/${new URL(link).pathname.slice(3)}/downloads`;
      const res = await fetch(shares, { method: "POST" });
      assert.equal(res.status, 201);
      const { downloadId, file: record } = await res.json();
      assert.equal((await fetch(`${shares}/${downloadId}`, { method: "DELETE" })).status, 204);
      assert.equal(record.fileId, fileId);
      assert.equal(record.plaintextSize, f.size);
      assert.equal(record.recordSize, RECORD);
      assert.equal(record.ciphertextSize, sealedSize(f.size), `${f.label}: L + 16 per record`);
      // The stored object's size, from a one-byte range (a presigned S3 URL is signed
      // for GET only, so no HEAD).
      const first = await fetch(record.download.url, { headers: { range: "bytes=0-0" } });
      assert.equal(first.status, 206);
      assert.equal(first.headers.get("content-range"), `bytes 0-0/${record.ciphertextSize}`);
      await first.arrayBuffer();
    }
  });

  test("downloads and decrypts every file byte-identical, with its name and type", async () => {
    const links = FILES.map((f) => uploaded.get(f.name).link);
    const downloads = await page.evaluate(async (links) => Promise.all(links.map(async (link) => {
      const { name, type, size, blob } = await window.sealdrop.download(link);
      const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
      return { name, type, size, blobSize: blob.size, sha256: hex };
    })), links);
    for (const [i, f] of FILES.entries()) {
      const d = downloads[i];
      assert.equal(d.name, f.name, `${f.label}: name`);
      assert.equal(d.type, f.type, `${f.label}: type`);
      assert.equal(d.size, f.size, `${f.label}: size`);
      assert.equal(d.blobSize, f.size, `${f.label}: blob size`);
      assert.equal(d.sha256, f.sha256, `${f.label}: content`);
    }
  });

  test("a link with another key is refused and yields no data", async () => {
    const { link } = uploaded.get(FILES[2].name);
    const wrongKey = `${link.split("#")[0]}#k1.${randomBytes(32).toString("base64url")}`;
    const outcome = await page.evaluate(async (link) => {
      try {
        const got = await window.sealdrop.download(link);
        return { ok: true, size: got.blob.size };
      } catch (err) {
        return { ok: false, code: err.code, message: String(err.message) };
      }
    }, wrongKey);
    assert.equal(outcome.ok, false, "a wrong key must not decrypt");
    assert.equal(outcome.code, "key_commitment_failed");
  });

  test("the demo app: pick a file, get a link, open it, save the original", async () => {
    const f = FILES[2];
    const app = await browser.newPage();
    await app.goto(`${stack.url}/`);
    // The page listens for picked files only once its wasm client has loaded: a file
    // picked before that (a slow, loaded machine) would go unnoticed.
    await app.locator("#version[data-state=ready]").waitFor({ timeout: 60_000 });
    await app.setInputFiles("#file-input", f.path);
    const linkLocator = app.locator(`a[href*="/s/"], input[value*="/s/"]`).first();
    await linkLocator.waitFor({ timeout: 120_000 }).catch(async (err) => {
      // Say what the page says (a stalled, paused or failed upload) rather than only "timeout".
      throw new Error(`no link appeared; the page says:\n${await app.locator("main").innerText()}`, { cause: err });
    });
    const link = (await linkLocator.getAttribute("href")) ?? (await linkLocator.inputValue());
    assert.match(link, /\/s\/[A-Za-z0-9_-]{32}#k1\./);

    // The receive page says what the file is and saves it when asked ("Save to disk");
    // without File System Access (as here) a file this small is gathered in the page and
    // handed to the browser's downloads.
    const receiver = await browser.newPage();
    await stubSavePicker(receiver, { picker: false });
    await receiver.goto(link);
    await receiver.locator("#incoming[data-state=ready]").waitFor({ timeout: 60_000 });
    const downloadEvent = receiver.waitForEvent("download", { timeout: 60_000 });
    await receiver.click("#incoming-start");
    const download = await downloadEvent;
    assert.equal(download.suggestedFilename(), f.name);
    const saved = join(work, provider, "saved.bin");
    await download.saveAs(saved);
    assert.equal(sha256(readFileSync(saved)), f.sha256);
    await receiver.close();
    await app.close();
    uploaded.set("demo app", { link });
  });

  test("storage holds no 32-byte window of any plaintext, no file name, type or key", async () => {
    await stack.stop();
    stack = undefined;
    const scanner = leakscanBinary();
    const keys = [...uploaded.values()].map(({ link }) => Buffer.from(link.split("#k1.")[1], "base64url"));
    assert.equal(keys.length, FILES.length + 1);
    const secretArgs = [];
    for (const f of FILES) secretArgs.push("--secret", f.name);
    for (const f of FILES.filter((x) => x.typeOverride)) secretArgs.push("--secret", f.type);
    for (const key of keys) {
      assert.equal(key.length, 32);
      secretArgs.push(
        "--secret-hex", key.toString("hex"),
        "--secret", key.toString("hex"),
        "--secret", key.toString("base64"),
        "--secret", key.toString("base64url"),
      );
    }
    const plaintextArgs = FILES.filter((f) => f.size >= 32).flatMap((f) => ["--plaintext", f.path]);

    // The scan must be able to fail: a planted copy of 40 plaintext bytes and a name
    // in a separate folder are found.
    const planted = join(work, provider, "planted");
    mkdirSync(planted);
    const big = FILES[3];
    writeFileSync(join(planted, "copy"), Buffer.concat([randomBytes(7), big.bytes.subarray(5000, 5040), Buffer.from(big.name)]));
    const control = spawnSync(scanner, [...plaintextArgs, ...secretArgs, planted], { encoding: "utf8" });
    assert.equal(control.status, 1, `control scan must find the planted leak: ${control.stderr}`);
    assert.equal(JSON.parse(control.stdout).leaks.length, 2);

    // The real scan: everything wrangler's Durable Objects (and local R2) and, in s3
    // mode, nanio wrote.
    const stored = listFiles(persistDir);
    const sealedTotal = FILES.reduce((n, f) => n + sealedSize(f.size), 0);
    assert.ok(stored.some((p) => /UploadSession/.test(p)), `Durable Object data is under ${persistDir}`);
    if (provider === "s3") {
      const objects = listFiles(s3DataDir).filter((p) => p.includes(`${join("files", "")}`));
      assert.ok(objects.length >= FILES.length, `nanio holds the objects under ${s3DataDir}`);
    } else {
      assert.ok(stored.some((p) => /r2/i.test(p)), `R2 data is under ${persistDir}`);
    }
    const scan = spawnSync(scanner, [...plaintextArgs, ...secretArgs, persistDir, s3DataDir], {
      encoding: "utf8",
      maxBuffer: 64 * MiB,
    });
    assert.ok(scan.status === 0 || scan.status === 1, `leakscan ran: ${scan.stderr}`);
    const report = JSON.parse(scan.stdout);
    assert.ok(report.bytesScanned >= sealedTotal, `the scan covered the stored ciphertext (${report.bytesScanned} >= ${sealedTotal})`);
    assert.deepEqual(report.leaks, [], "nothing secret in storage");
    assert.equal(scan.status, 0);
  });
});

/** Builds (if needed) and returns the leak scanner's path. */
function leakscanBinary() {
  execFileSync("cargo", ["build", "--release", "--quiet", "-p", "leakscan"], { cwd: ROOT, stdio: "inherit" });
  const targetDir = JSON.parse(
    execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { cwd: ROOT, encoding: "utf8" }),
  ).target_directory;
  return join(targetDir, "release", "leakscan");
}

function listFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .map((p) => join(dir, p))
    .filter((p) => statSync(p).isFile());
}
