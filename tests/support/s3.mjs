// A real S3-compatible server for the tests and the benchmark: nanio (PyPI, installed
// by scripts/setup.sh into .tools/nanio) behind a CORS wrapper (s3_server.py), on a
// free 127.0.0.1 port, with a fresh data folder, one bucket and random keys.
//
//   const s3 = await startS3();
//   const uploadId = await s3.createMultipartUpload("files/a");
//   const url = s3.presign("PUT", "files/a", { query: { partNumber: 1, uploadId } });
//   await s3.listParts("files/a", uploadId);     // [{ partNumber, etag, size }]
//   await s3.stop();
//
// Requests from Node are signed with aws4fetch (SigV4, header or query form): a
// second implementation beside the worker's rusty-s3, so a signing mistake on
// either side shows up as a 403 instead of agreeing with itself. Path-style URLs.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AwsClient } from "aws4fetch";
import { ROOT, spawnService, tail } from "./process.mjs";

const PYTHON = join(ROOT, ".tools/nanio/bin/python");
const SERVER = join(ROOT, "tests/support/s3_server.py");
const STARTUP_TIMEOUT_MS = 30_000;

/** An S3 error answer: `code` is S3's (`NoSuchUpload`, `SignatureDoesNotMatch`...). */
export class S3Error extends Error {
  constructor(status, code, message) {
    super(`S3 ${status} ${code}: ${message}`);
    this.name = "S3Error";
    this.status = status;
    this.code = code;
  }
}

// ---- XML: the few flat shapes S3 answers with --------------------------------

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const unescapeXml = (s) => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e) => ENTITIES[e]);

/** The inner text of every `<tag>` element in `xml`, in order. */
export function xmlElements(xml, tag) {
  return [...xml.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]);
}

/** The unescaped text of the first `<tag>` in `xml`, or undefined. */
export function xmlText(xml, tag) {
  const [inner] = xmlElements(xml, tag);
  return inner === undefined ? undefined : unescapeXml(inner);
}

/** Throws an S3Error for a non-2xx answer (reading S3's XML error body). */
export async function checkS3(res) {
  if (res.ok) return res;
  const body = await res.text();
  throw new S3Error(res.status, xmlText(body, "Code") ?? `http_${res.status}`, xmlText(body, "Message") ?? body);
}

/**
 * Starts nanio behind CORS and creates the bucket.
 * @param {{ dataDir?: string, bucket?: string, region?: string }} [options]
 *   `dataDir`: where nanio keeps buckets and multipart uploads (kept after stop(),
 *   e.g. for a privacy scan); by default a fresh temporary folder removed by stop().
 */
export async function startS3({ dataDir, bucket = "sealdrop-test", region = "us-east-1" } = {}) {
  if (!existsSync(PYTHON)) {
    throw new Error(".tools/nanio is missing: run `bash scripts/setup.sh` first");
  }
  const ownDir = !dataDir;
  dataDir ??= mkdtempSync(join(tmpdir(), "sealdrop-s3-"));
  const accessKeyId = randomBytes(10).toString("hex").toUpperCase();
  const secretAccessKey = randomBytes(30).toString("base64url");
  const service = spawnService({
    command: PYTHON,
    args: [SERVER],
    env: {
      NANIO_DATA_DIR: dataDir,
      NANIO_ACCESS_KEY: accessKeyId,
      NANIO_SECRET_KEY: secretAccessKey,
      NANIO_REGION: region,
      PYTHONUNBUFFERED: "1",
    },
    logName: `nanio-${randomBytes(4).toString("hex")}.log`,
    pipeStdout: true,
  });
  const stop = async () => {
    await service.stop();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };

  let port;
  try {
    port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nanio did not start within ${STARTUP_TIMEOUT_MS} ms`)), STARTUP_TIMEOUT_MS);
      service.child.once("exit", (code) => reject(new Error(`nanio exited (${code}) before listening`)));
      createInterface({ input: service.child.stdout }).once("line", (line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line).port);
        } catch {
          reject(new Error(`nanio printed ${JSON.stringify(line)} instead of its port`));
        }
      });
    });
  } catch (err) {
    await stop();
    throw new Error(`${err.message} (log ${service.logFile}):\n${tail(service.logFile)}`);
  }
  service.child.stdout.resume(); // nothing more is printed there; never let it block

  const s3 = {
    ...s3Client({ endpoint: `http://127.0.0.1:${port}`, region, bucket, accessKeyId, secretAccessKey }),
    dataDir, logFile: service.logFile,
    pid: service.child.pid,
    stop,
  };

  try {
    await checkS3(await s3.request("PUT", ""));
  } catch (err) {
    await stop();
    throw new Error(`nanio refused to create bucket ${bucket}: ${err.message} (log ${service.logFile}):\n${tail(service.logFile)}`);
  }
  return s3;
}

/**
 * A client for one bucket of any S3 endpoint (path-style), signing with aws4fetch:
 * the requests startS3's answer makes, for other servers too (the benchmark's).
 * @param {{ endpoint: string, region: string, bucket: string, accessKeyId: string, secretAccessKey: string }} options
 */
export function s3Client({ endpoint, region, bucket, accessKeyId, secretAccessKey }) {
  const aws = new AwsClient({ accessKeyId, secretAccessKey, region, service: "s3" });

  /** Path-style URL of `key` in the bucket (the bucket itself for ""), at `origin`. */
  const objectUrl = (key, { query = {}, origin = endpoint } = {}) => {
    const path = key === "" ? "" : `/${key.split("/").map(encodeURIComponent).join("/")}`;
    const url = new URL(`${origin}/${bucket}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
    return url.toString().replace(/=(?=&|$)/g, ""); // `?uploads`, not `?uploads=`
  };

  const s3 = {
    endpoint, region, bucket, accessKeyId, secretAccessKey,
    objectUrl,

    /**
     * A presigned URL (SigV4 query form) for `method` on `key`. `origin` signs for
     * another address (the fault proxy's: its Host is what nanio checks);
     * `datetime` ("YYYYMMDDTHHMMSSZ") backdates it, e.g. to make an expired URL.
     */
    async presign(method, key, { query = {}, expires = 900, origin, datetime } = {}) {
      const url = objectUrl(key, { query: { ...query, "X-Amz-Expires": expires }, origin });
      const signed = await aws.sign(url, { method, aws: { signQuery: true, datetime } });
      return signed.url;
    },

    /** A header-signed request; the answer is returned as is (not checked). */
    request(method, key, { query, headers, body, origin } = {}) {
      return aws.fetch(objectUrl(key, { query, origin }), { method, headers, body });
    },

    async createMultipartUpload(key) {
      const res = await checkS3(await s3.request("POST", key, { query: { uploads: "" } }));
      return xmlText(await res.text(), "UploadId");
    },

    /** Completes with `parts` = [{ partNumber, etag }], in order. */
    async completeMultipartUpload(key, uploadId, parts) {
      const body = `<CompleteMultipartUpload>${parts.map((p) =>
        `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${p.etag}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
      const res = await checkS3(await s3.request("POST", key, { query: { uploadId }, body }));
      return { etag: xmlText(await res.text(), "ETag") };
    },

    async abortMultipartUpload(key, uploadId) {
      await checkS3(await s3.request("DELETE", key, { query: { uploadId } }));
    },

    /** Every unfinished multipart upload in the bucket: [{ key, uploadId, initiated }]. */
    async listMultipartUploads() {
      const res = await checkS3(await s3.request("GET", "", { query: { uploads: "" } }));
      return xmlElements(await res.text(), "Upload").map((u) => ({
        key: xmlText(u, "Key"), uploadId: xmlText(u, "UploadId"), initiated: xmlText(u, "Initiated"),
      }));
    },

    /** The parts storage holds: [{ partNumber, etag, size }]; S3Error NoSuchUpload if none. */
    async listParts(key, uploadId) {
      const res = await checkS3(await s3.request("GET", key, { query: { uploadId } }));
      return xmlElements(await res.text(), "Part").map((p) => ({
        partNumber: Number(xmlText(p, "PartNumber")), etag: xmlText(p, "ETag"), size: Number(xmlText(p, "Size")),
      }));
    },

    /** Every key in the bucket under `prefix` (one page: the tests stay far below 1,000). */
    async listObjects(prefix = "") {
      const res = await checkS3(await s3.request("GET", "", { query: { "list-type": 2, prefix } }));
      return xmlElements(await res.text(), "Contents").map((c) => ({ key: xmlText(c, "Key"), size: Number(xmlText(c, "Size")) }));
    },

    /** The stored bytes of `key`; S3Error NoSuchKey if there is no such object. */
    async objectBytes(key) {
      const res = await checkS3(await s3.request("GET", key));
      return Buffer.from(await res.arrayBuffer());
    },
  };
  return s3;
}
