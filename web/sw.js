// sealdrop service worker (a module worker: register it with { type: "module" }).
// Two jobs, both on this origin only, and both without the server ever seeing a key:
//
// - Streamed saves, where the page has no File System Access: the page posts
//   { type: "save", id, name, size, readable } (the readable side of a TransformStream
//   whose writable side `download(link, { writable })` fills, verified record by record),
//   then navigates to /save/<id>; the worker answers that navigation with the stream
//   as an attachment, so the browser writes it to disk as it arrives and nothing holds
//   the whole file. A stream is answered once, then forgotten. If the download fails,
//   the stream is aborted and the browser's download fails: no short file is complete.
// - Previews: the page posts { type: "preview", id, link } (the link carries the key in
//   its fragment; it goes from the page to this worker, never to a server); GET
//   /preview/<id> then answers the file decrypted on demand, with Range support: a
//   range fetches and opens only the records that hold it. Only types a browser renders
//   without running the file's content are answered (images but SVG, PDF, audio, video:
//   `previewable`), each under a sandboxing Content-Security-Policy; anything else is
//   415. { type: "forget", id } closes a preview (its download on the share is
//   abandoned, not counted).
//
// Every message is answered on the MessageChannel port it carries ({ ok } or
// { ok: false, code, message }), so the page navigates only once the worker holds the
// stream. The browser may stop an idle worker: what it held is then gone (/preview/<id>
// and /save/<id> answer 404), and the page posts again.
import init, { openFile, previewable } from "/pkg/sealdrop_client.js";

const ready = init();
/** id → Promise<SealedFile> */
const previews = new Map();
/** id → { name, size, readable } */
const saves = new Map();
const ID = /^[A-Za-z0-9_-]{1,64}$/;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("message", (event) => {
  const port = event.ports[0];
  event.waitUntil(handle(event.data ?? {}).then(
    () => port?.postMessage({ ok: true }),
    (err) => port?.postMessage({ ok: false, code: err?.code ?? "invalid_message", message: String(err?.message ?? err) }),
  ));
});

async function handle({ type, id, link, name, size, readable }) {
  if (typeof id !== "string" || !ID.test(id)) throw new Error("id must be 1 to 64 base64url characters");
  if (type === "save") {
    if (!(readable instanceof ReadableStream)) throw new Error("save: readable must be a ReadableStream");
    saves.set(id, { name: String(name ?? ""), size: Number.isSafeInteger(size) ? size : null, readable });
  } else if (type === "preview") {
    await ready;
    const opening = openFile(String(link));
    previews.set(id, opening);
    try {
      await opening;
    } catch (err) {
      previews.delete(id);
      throw err;
    }
  } else if (type === "forget") {
    const opening = previews.get(id);
    previews.delete(id);
    saves.delete(id);
    if (opening) await (await opening).close();
  } else {
    throw new Error(`unknown message type ${JSON.stringify(type)}`);
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || event.request.method !== "GET") return;
  const [, route, id] = url.pathname.match(/^\/(preview|save)\/([^/]+)$/) ?? [];
  if (route === "save") event.respondWith(save(id));
  else if (route === "preview") event.respondWith(preview(id, event.request.headers.get("Range")));
});

function save(id) {
  const held = saves.get(id);
  if (!held) return problem(404, "save_not_found", "this save is not held by the service worker");
  saves.delete(id);
  const headers = {
    "Content-Type": "application/octet-stream",
    // RFC 6266 / 8187: the (decrypted, client-side) name, percent-encoded.
    "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(held.name || "download")}`,
    "X-Content-Type-Options": "nosniff",
  };
  if (held.size !== null) headers["Content-Length"] = String(held.size);
  return new Response(held.readable, { headers });
}

/** The largest piece one `read` answers (SealedFile.read clips to it). */
const PIECE = 8 * 1024 * 1024;

async function preview(id, range) {
  const opening = previews.get(id);
  if (!opening) return problem(404, "preview_not_found", "this preview is not held by the service worker");
  let file;
  try {
    file = await opening;
  } catch (err) {
    return problem(502, err?.code ?? "preview_failed", String(err?.message ?? err));
  }
  if (!previewable(file.type)) return problem(415, "not_previewable", "files of this type are not previewed");
  const headers = {
    "Content-Type": file.type,
    "Accept-Ranges": "bytes",
    "X-Content-Type-Options": "nosniff",
    // Even a viewer gets nothing to run, and nothing to reach. The sandbox keeps the
    // origin (allow-same-origin; no scripts, forms or popups): an opaque origin would
    // make the media document's own ranged requests cross-origin, and refused.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox allow-same-origin",
    "Cache-Control": "no-store",
  };
  const size = file.size;
  if (range === null) {
    // The whole file, read piece by piece as the viewer takes it.
    let at = 0;
    const body = new ReadableStream({
      async pull(controller) {
        if (at >= size) return controller.close();
        const piece = await file.read(at, at + PIECE);
        at += piece.length;
        controller.enqueue(piece);
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { ...headers, "Content-Length": String(size) } });
  }
  const asked = parseRange(range, size);
  if (!asked) {
    return new Response(null, { status: 416, headers: { ...headers, "Content-Range": `bytes */${size}` } });
  }
  let bytes;
  try {
    bytes = await file.read(asked.start, asked.end);
  } catch (err) {
    return problem(502, err?.code ?? "preview_failed", String(err?.message ?? err));
  }
  const last = asked.start + bytes.length - 1;
  return new Response(bytes, {
    status: 206,
    headers: { ...headers, "Content-Range": `bytes ${asked.start}-${last}/${size}`, "Content-Length": String(bytes.length) },
  });
}

/** One range of `Range: bytes=a-b`, `a-` or `-n` over `size` bytes, as { start, end }
 *  (end exclusive); null when it is not satisfiable or not one range. */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start, end;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size : Math.min(size, Number(m[2]) + 1);
  }
  return start < end ? { start, end } : null;
}

function problem(status, code, message) {
  return Response.json({ error: { code, message } }, { status });
}
