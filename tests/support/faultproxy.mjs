// A fault-injecting HTTP proxy for the tests: the browser talks to it, it forwards
// to one target origin (nanio in s3 mode, the worker in r2-binding mode) and, on
// command, misbehaves the way real networks and storage do.
//
//   const proxy = await startFaultProxy({ target: s3.endpoint });
//   proxy.inject({ method: "PUT", query: { partNumber: "2" }, fault: "status", status: 503, retryAfter: 1 });
//   proxy.inject({ method: "PUT", fault: "reset", probability: 0.1 });   // seeded RNG
//   ... the browser uploads through proxy.url ...
//   proxy.partPuts();          // [1, 2, 2, 3]: one entry per part PUT received
//   await proxy.stop();
//
// The Host header the browser sent is forwarded unchanged, so a SigV4 URL presigned
// for the proxy's address verifies at the storage behind it, and the worker sees the
// address the browser used. Requests are forwarded byte for byte (bodies streamed).
//
// Faults (`inject({ ...match, fault, ... })`), each for the requests a rule matches:
// - "status": answer `status` (500 by default) without forwarding, after reading
//   the request body; `retryAfter` (seconds) adds Retry-After; `body` sets the text.
// - "refuse": reset the connection as soon as the request head arrives (no answer;
//   the browser sees a network error). `down()` / `up()` refuse at the TCP level.
// - "reset": forward, then reset both connections after `afterBytes` of the request
//   body (default half of Content-Length), or of the response body with
//   `at: "response-body"` (for downloads).
// - "stall": never answer, never forward: read `afterBytes` of the body and stop
//   reading (`afterBytes: 0` stops at once; default: read it all). The request stays
//   open until the client gives up or the proxy stops. The sockets' buffers still
//   take part of the body (up to the kernel's buffer sizes), so a small part can
//   look wholly sent to the browser (upload progress at 100%) before it waits
//   forever for the answer: a stall detector must watch for the answer too.
// - "delay": wait `delayMs`, then forward.
// - "flip": forward, flipping one bit of the response body's byte at `atByte` (default
//   0): a byte of storage that went bad, as the client reads it.
// A rule fires for the next `times` matching requests (default 1), or for each with
// `probability` p drawn from the proxy's seeded RNG (then `times` defaults to no
// limit). Rules are tried in the order they were added; the first that fires wins.
// A rule matches on `method` (a name or a list; default: all but OPTIONS, so CORS
// preflights pass through), `path` (a prefix string, a RegExp or a function of
// the path), `query` ({ name: value } that must all be present (value `true`: any
// value), or a function of the URLSearchParams), `partNumber`, and `match` (a
// function of the log entry).
//
// Connection reuse: Chromium resends a request by itself, unseen by the page, when a
// reused keep-alive connection is reset before any answer (measured: a "refuse" or
// "reset" on the next 1 or 2 part PUTs never reached the client). That is what
// browsers do in production too. A test that needs the page to see the failure
// starts the proxy with `keepAlive: false` (every answer closes its connection, so
// none is reused) or uses "status"; the proxy's log counts every attempt either way.
//
// Every request is logged in `proxy.log` ({ method, path, query, partNumber, range,
// fault, status }; status is the status the client got, null if none; range the
// Range header, null if none).
// partNumber comes from `partNumber=` in S3 URLs or the `/blob/<id>/<n>` path.
// `proxy.events` emits "request" (entry) for each request and "fault" (entry, rule)
// when a rule fires, e.g. to wait until a stalled request has arrived.
// `proxy.inFlight(filter)` lists the logged requests whose exchange with the client
// has not ended yet (answered in full, or the connection gone): what a test waits on
// to know that a client's requests settled, instead of sleeping.
import { EventEmitter, once } from "node:events";
import { Agent, createServer, request as httpRequest } from "node:http";

// Not forwarded: they describe one connection, not the request.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "upgrade", "trailer", "transfer-encoding"]);
const FAULTS = new Set(["status", "refuse", "reset", "stall", "delay", "flip"]);

/** mulberry32: a small seeded PRNG, so "10% of PUTs fail" is the same 10% each run. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The part number of an upload part request, or null. */
export function partNumberOf(path, query) {
  const fromQuery = query.get("partNumber");
  if (fromQuery !== null) return /^\d+$/.test(fromQuery) ? Number(fromQuery) : null;
  const blob = /^\/blob\/[^/]+\/(\d+)$/.exec(path);
  return blob ? Number(blob[1]) : null;
}

/** Raw header pairs (a flat [name, value, ...] list) without hop-by-hop headers. */
function forwardable(rawHeaders) {
  const out = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(rawHeaders[i].toLowerCase())) out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  return out;
}

function matches(rule, entry) {
  const methods = rule.method === undefined ? null : [rule.method].flat().map((m) => m.toUpperCase());
  if (methods ? !methods.includes(entry.method) : entry.method === "OPTIONS") return false;
  const { path } = rule;
  if (typeof path === "string" && !entry.path.startsWith(path)) return false;
  if (path instanceof RegExp && !path.test(entry.path)) return false;
  if (typeof path === "function" && !path(entry.path)) return false;
  const params = new URLSearchParams(entry.query);
  if (typeof rule.query === "function" && !rule.query(params)) return false;
  if (rule.query && typeof rule.query === "object") {
    for (const [name, want] of Object.entries(rule.query)) {
      if (!params.has(name) || (want !== true && params.get(name) !== String(want))) return false;
    }
  }
  if (rule.partNumber !== undefined && entry.partNumber !== rule.partNumber) return false;
  return !rule.match || rule.match(entry);
}

/**
 * Starts the proxy on a free 127.0.0.1 port.
 * @param {{ target: string, seed?: number, keepAlive?: boolean }} options `target`:
 *   the origin requests go to (e.g. "http://127.0.0.1:9000"); `seed` for the
 *   probability rules; `keepAlive: false` closes every connection after its answer
 *   (see "Connection reuse" above).
 */
export async function startFaultProxy({ target, seed = 1, keepAlive = true }) {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const random = seededRandom(seed);
  const closing = keepAlive ? {} : { connection: "close" };
  const events = new EventEmitter();
  const sockets = new Set();
  let rules = [];
  let log = [];
  /** The logged entries whose response has not closed yet. */
  const open = new Set();

  /** The rule that fires for `entry`, consuming one of its `times`, or null. */
  function fire(entry) {
    for (const rule of rules) {
      if (rule.left <= 0 || !matches(rule.spec, entry)) continue;
      if (rule.spec.probability !== undefined && !(random() < rule.spec.probability)) continue;
      rule.left -= 1;
      rule.handle.hits += 1;
      return rule.spec;
    }
    return null;
  }

  function corsHeaders(req) {
    return req.headers.origin
      ? { "access-control-allow-origin": "*", "access-control-expose-headers": "ETag, Content-Range, Retry-After" }
      : {};
  }

  /** Forwards the request; `spec` may reset it partway (the "reset" fault). */
  function forward(req, res, entry, spec) {
    const reset = spec?.fault === "reset" ? spec : null;
    const resetInRequest = reset && (reset.at ?? (req.headers["content-length"] || req.headers["transfer-encoding"] ? "request-body" : "response-body")) === "request-body";
    let done = false;
    const upReq = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: forwardable(req.rawHeaders),
      agent,
    });
    const cut = () => {
      done = true;
      upReq.destroy();
      req.socket.resetAndDestroy();
    };
    upReq.on("error", () => {
      if (done) return;
      done = true;
      if (!res.headersSent) {
        entry.status = 502;
        res.writeHead(502, { "content-type": "text/plain", ...corsHeaders(req), ...closing });
        res.end("fault proxy: upstream unreachable");
      } else {
        res.destroy();
      }
    });
    /** Relays `from` to `to` until `limit` bytes have passed, then cuts both connections. */
    const relayThenCut = (from, to, limit) => {
      let passed = 0;
      from.on("data", (chunk) => {
        if (done) return;
        const room = limit - passed;
        if (chunk.length >= room) {
          done = true;
          from.pause();
          // Cut only once the bytes before the cut have left.
          to.write(chunk.subarray(0, Math.max(room, 0)), cut);
          return;
        }
        passed += chunk.length;
        to.write(chunk);
      });
      from.on("end", () => { if (!done) to.end(); });
    };
    const half = (length) => Math.floor((Number.isFinite(length) ? length : 2) / 2);

    upReq.on("response", (upRes) => {
      entry.status = upRes.statusCode;
      res.writeHead(upRes.statusCode, upRes.statusMessage, [...forwardable(upRes.rawHeaders), ...Object.entries(closing).flat()]);
      if (reset && !resetInRequest) {
        relayThenCut(upRes, res, reset.afterBytes ?? half(Number(upRes.headers["content-length"])));
      } else if (spec?.fault === "flip") {
        const at = spec.atByte ?? 0;
        let passed = 0;
        upRes.on("data", (chunk) => {
          if (at >= passed && at < passed + chunk.length) {
            chunk = Buffer.from(chunk);
            chunk[at - passed] ^= 0x01;
          }
          passed += chunk.length;
          res.write(chunk);
        });
        upRes.on("end", () => { done = true; res.end(); });
      } else {
        upRes.pipe(res);
        upRes.on("end", () => { done = true; });
      }
    });
    // The client went away (e.g. an aborted XHR): storage sees the request end too.
    res.on("close", () => { if (!res.writableFinished) upReq.destroy(); });

    if (resetInRequest) {
      upReq.flushHeaders(); // the target sees the request begin, as storage would
      relayThenCut(req, upReq, reset.afterBytes ?? half(Number(req.headers["content-length"])));
    } else {
      req.pipe(upReq);
    }
  }

  function handle(req, res) {
    const url = new URL(req.url, "http://proxy.invalid");
    const entry = {
      method: req.method,
      path: url.pathname,
      query: url.search.slice(1),
      partNumber: partNumberOf(url.pathname, url.searchParams),
      range: req.headers.range ?? null,
      fault: null,
      status: null,
    };
    log.push(entry);
    open.add(entry);
    // Ended once the whole answer is handed to the client's connection, or it is gone.
    res.on("finish", () => open.delete(entry));
    res.on("close", () => open.delete(entry));
    const spec = fire(entry);
    entry.fault = spec?.fault ?? null;
    events.emit("request", entry);
    if (spec) events.emit("fault", entry, spec);

    switch (spec?.fault) {
      case undefined:
      case "reset":
      case "flip":
        forward(req, res, entry, spec);
        return;
      case "status": {
        const status = spec.status ?? 500;
        req.resume();
        req.on("end", () => {
          entry.status = status;
          const headers = { "content-type": "text/plain", ...corsHeaders(req), ...closing };
          if (spec.retryAfter !== undefined) headers["retry-after"] = String(spec.retryAfter);
          res.writeHead(status, headers);
          res.end(spec.body ?? `fault proxy: injected ${status}`);
        });
        return;
      }
      case "refuse":
        req.socket.resetAndDestroy();
        return;
      case "stall": {
        const limit = spec.afterBytes ?? Infinity;
        let read = 0;
        if (limit <= 0) {
          req.pause();
          return;
        }
        req.on("data", (chunk) => {
          read += chunk.length;
          if (read >= limit) req.pause();
        });
        return;
      }
      case "delay": {
        req.pause();
        const timer = setTimeout(() => {
          forward(req, res, entry, null); // pipes the paused body on
        }, spec.delayMs ?? 1000);
        res.on("close", () => clearTimeout(timer));
        return;
      }
      default:
        throw new Error(`unknown fault ${spec.fault}`);
    }
  }

  const server = createServer({ requestTimeout: 0, keepAliveTimeout: 5_000 }, handle);
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;

  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
  };

  return {
    url,
    target: upstream.origin,
    events,
    /** Every request so far, oldest first. */
    get log() { return log; },

    /** Adds a fault rule; returns a handle with `hits` and `remove()`. */
    inject(spec) {
      if (!FAULTS.has(spec.fault)) throw new Error(`unknown fault ${JSON.stringify(spec.fault)}`);
      if (spec.probability !== undefined && !(spec.probability >= 0 && spec.probability <= 1)) {
        throw new Error(`probability must be within 0..1, got ${spec.probability}`);
      }
      const handle = { hits: 0, remove: () => { rules = rules.filter((r) => r.handle !== handle); } };
      const left = spec.times ?? (spec.probability === undefined ? 1 : Infinity);
      rules.push({ spec, left, handle });
      return handle;
    },

    /** Removes every fault rule. */
    clearFaults() {
      rules = [];
    },

    /** Forgets the log (e.g. between the phases of a test). */
    resetLog() {
      log = [];
    },

    /** The requests matching a rule-style filter whose exchange has not ended (see above). */
    inFlight(filter = {}) {
      return [...open].filter((entry) => matches(filter, entry));
    },

    /** The logged requests matching a rule-style filter ({ method, path, query, partNumber, match }). */
    requests(filter = {}) {
      return log.filter((entry) => matches(filter, entry));
    },

    /**
     * The part number of every part PUT received, in arrival order (a part sent
     * twice appears twice). `{ ok: true }`: only those storage answered with 2xx.
     */
    partPuts({ ok = false } = {}) {
      return log
        .filter((e) => e.method === "PUT" && e.partNumber !== null)
        .filter((e) => !ok || (e.status >= 200 && e.status < 300))
        .map((e) => e.partNumber);
    },

    /** Refuses connections at the TCP level (and drops the open ones) until up(). */
    async down() {
      if (!server.listening) return;
      const closed = once(server, "close");
      server.close();
      dropConnections();
      await closed;
    },

    /** Accepts connections again on the same port. */
    async up() {
      if (server.listening) return;
      server.listen(port, "127.0.0.1");
      await once(server, "listening");
    },

    async stop() {
      rules = [];
      if (server.listening) {
        const closed = once(server, "close");
        server.close();
        dropConnections();
        await closed;
      }
      agent.destroy();
    },
  };
}
