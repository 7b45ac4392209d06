// The bench's own origin on 127.0.0.1: a blank page with a file input (`/`), static
// files from the folders it is given (`/peers/uppy5.js`, `/seal-wasm/...`), and the
// signer the Uppy peers call (`POST /signer/<action>`, JSON), same-origin with the page.
//
// The signer is what an app's backend does for Uppy: it holds the S3 keys, creates and
// completes multipart uploads (Uppy 5's callbacks) and presigns single requests with
// the tests' SigV4 helper (tests/support/s3.mjs, aws4fetch) for `presignOrigin` (the
// fault proxy), so the browser's S3 requests take the same path as the other entries'.
import { once } from "node:events";
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";

const URL_TTL_SECONDS = 3600;
const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".json": "application/json" };
const BLANK = "<!doctype html><meta charset=utf-8><title>sealdrop bench</title><input type=file id=file>";

/** The S3 query of the request Uppy 6 asks to have presigned ({ method, uploadId, partNumber }). */
export function presignQuery({ method, uploadId, partNumber }) {
  if (method === "POST") return uploadId ? { uploadId } : { uploads: "" }; // Complete / Create
  if (method === "PUT" && partNumber !== undefined) return { partNumber, uploadId }; // UploadPart
  if ((method === "GET" || method === "DELETE") && uploadId) return { uploadId }; // ListParts / Abort
  if (method === "PUT" || method === "DELETE") return {}; // PutObject / DeleteObject
  throw new Error(`no S3 request is ${method} ${JSON.stringify({ uploadId, partNumber })}`);
}

function signerActions(s3, presignOrigin) {
  const presign = (method, key, query) => s3.presign(method, key, { query, origin: presignOrigin, expires: URL_TTL_SECONDS });
  return {
    // Uppy 5's callbacks: the multipart upload itself is made and finished server side.
    create: async ({ key }) => ({ key, uploadId: await s3.createMultipartUpload(key) }),
    "sign-part": async ({ key, uploadId, partNumber }) => ({ method: "PUT", url: await presign("PUT", key, { partNumber, uploadId }) }),
    complete: async ({ key, uploadId, parts }) => {
      await s3.completeMultipartUpload(key, uploadId, parts.map((p) => ({ partNumber: p.PartNumber, etag: p.ETag })));
      return { location: s3.objectUrl(key) };
    },
    "list-parts": async ({ key, uploadId }) => (await s3.listParts(key, uploadId))
      .map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size })),
    abort: async ({ key, uploadId }) => {
      await s3.abortMultipartUpload(key, uploadId);
      return {};
    },
    // Uppy 6's signRequest: one presigned URL per request, which the browser sends.
    presign: async (request) => ({ url: await presign(request.method, request.key, presignQuery(request)) }),
  };
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
}

/**
 * Starts the origin. `files`: { "/prefix": folder } served read-only; `s3` and
 * `presignOrigin` for the signer.
 * @returns {Promise<{ url: string, stop: () => void }>}
 */
export async function startOrigin({ files = {}, s3, presignOrigin }) {
  const actions = signerActions(s3, presignOrigin);
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://origin.invalid").pathname;
    try {
      if (path === "/favicon.ico") {
        res.writeHead(204);
        res.end();
        return;
      }
      if (path === "/") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end(BLANK);
        return;
      }
      if (path.startsWith("/signer/") && req.method === "POST") {
        const action = actions[path.slice("/signer/".length)];
        if (!action) throw Object.assign(new Error(`no signer action ${path}`), { status: 404 });
        const body = JSON.stringify(await action(await readJson(req)));
        res.writeHead(200, { "content-type": "application/json" });
        res.end(body);
        return;
      }
      for (const [prefix, dir] of Object.entries(files)) {
        if (!path.startsWith(`${prefix}/`)) continue;
        const file = normalize(join(dir, path.slice(prefix.length)));
        if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) break;
        res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
        createReadStream(file).pipe(res);
        return;
      }
      throw Object.assign(new Error(`not found: ${path}`), { status: 404 });
    } catch (err) {
      res.writeHead(err.status ?? 500, { "content-type": "text/plain" });
      res.end(String(err.message ?? err));
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
