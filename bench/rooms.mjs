// The rooms benchmark (`npm run bench:rooms`): sealdrop's Room objects in workerd
// against a Socket.IO 4 server doing the same job, same machine, same run, same load
// generator (this file), 127.0.0.1 only, bounded in time and count.
//
//   (a) 1,000 connections in 100 rooms of 10, message rates rising until the p99
//       send-to-receive latency passes 100 ms: the highest delivered messages/s below it;
//   (b) the seeds' shape: 10,000 connections in 1,000 rooms of 10, 1,000 messages/s:
//       p50/p99 latency, server memory and CPU;
//   (c) one room of 1,000 members, rates rising as in (a);
//   (d) upload progress fan-out (issue 12): 100 rooms of 10, in each one upload whose
//       uploader reports progress 20 times a second; the room coalesces to at most 4
//       broadcasts a second per upload (the Socket.IO server does the same, with a
//       timer): broadcasts delivered per second, p99 report-to-delivery latency of the
//       values broadcast, server CPU.
//
// Every message is a distinct payload of the sealed form (version byte, "nonce",
// 16-byte "tag": 50 base64url characters, what a short sealed chat line looks like);
// latency is measured per delivery from the moment the generator sent it. Results are
// printed and written to BENCHMARKS.md (between the rooms-bench markers) and
// test-results/bench-rooms.json. Options: --quick (smaller, for a smoke run, not
// written to BENCHMARKS.md), --only=a,b,c, --targets=sealdrop,socketio.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { SignJWT } from "jose";
import { io as sioConnect } from "socket.io-client";
import WebSocket from "ws";
import { ROOT, freePort, startServer } from "../tests/support/server.mjs";

const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const ONLY = (args.find((a) => a.startsWith("--only="))?.slice(7) ?? "a,b,c,d").split(",");
const TARGETS = (args.find((a) => a.startsWith("--targets="))?.slice(10) ?? "sealdrop,sealdrop-tmpfs,socketio").split(",");
// A socket error the generator did not expect must not end the run: count it.
let strayErrors = 0;
process.on("uncaughtException", (e) => { strayErrors += 1; if (strayErrors <= 3) console.error(`  (stray error: ${e.message})`); });
const DEADLINE = Date.now() + (QUICK ? 4 : 15) * 60_000; // the whole run, bounded
const P99_LIMIT_MS = 100;
const STEP_MS = QUICK ? 2_000 : 4_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const secretHex = readFileSync(join(ROOT, ".dev.vars"), "utf8").match(/^JWT_SECRET=(\w+)/m)?.[1];
if (!secretHex) throw new Error(".dev.vars has no JWT_SECRET: run scripts/setup.sh");
const secret = new TextEncoder().encode(secretHex);

// ---------------------------------------------------------------------------------
// Payloads, tokens, latency
// ---------------------------------------------------------------------------------

let counter = 0;
/** A distinct payload in the sealed text form (the room checks the form, not the key). */
function payload() {
  const bytes = Buffer.alloc(37);
  bytes[0] = 1;
  bytes.writeBigUInt64BE(BigInt(++counter), 1);
  return bytes.toString("base64url");
}

async function token(sub) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ name: sub, rooms: { "*": "member" } })
    .setProtectedHeader({ alg: "HS256" }).setSubject(sub).setAudience("sealdrop")
    .setIssuedAt(now).setExpirationTime(now + 3600).sign(Buffer.from(secretHex));
}

/** Send times of messages in flight, and the latencies of their deliveries. */
const sent = new Map();
let latencies = [];
let delivered = 0;
function received(text) {
  const t0 = sent.get(text);
  if (t0 === undefined) return;
  latencies.push(performance.now() - t0);
  delivered += 1;
}

/** Send times of progress values (`fileId:bytes`), and the latencies of their broadcasts. */
const progressSent = new Map();
const progressLatest = new Map(); // fileId → the highest value any member received
let progressLatencies = [];
let progressDelivered = 0;
function progressReceived(fileId, bytes) {
  progressLatest.set(fileId, Math.max(bytes, progressLatest.get(fileId) ?? 0));
  const t0 = progressSent.get(`${fileId}:${bytes}`);
  if (t0 === undefined) return;
  progressLatencies.push(performance.now() - t0);
  progressDelivered += 1;
}

function percentile(sorted, p) {
  if (!sorted.length) return Infinity;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---------------------------------------------------------------------------------
// The two kinds of client
// ---------------------------------------------------------------------------------

/** A sealdrop room socket: token in the subprotocol, joined, listening. */
function sealdropClient(url, roomId, tok) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/api/rooms/${roomId}/ws`, ["sealdrop.v1", `sealdrop.token.${tok}`], { perMessageDeflate: false });
    const timer = setTimeout(() => reject(new Error("join timed out")), 60_000);
    const pings = [];
    ws.on("open", () => ws.send('{"event":"join-room","id":"j"}'));
    ws.on("error", reject);
    ws.on("message", (data) => {
      const text = data.toString();
      if (text === "pong") {
        pings.shift()?.();
      } else if (text.startsWith('{"event":"new-message"')) {
        received(JSON.parse(text).data.text);
      } else if (text.startsWith('{"event":"file-upload-progress"')) {
        const { data: p } = JSON.parse(text);
        progressReceived(p.fileId, p.bytesUploaded);
      } else if (text.startsWith('{"event":"ack","data":{"id":"j"')) {
        clearTimeout(timer);
        resolve({
          send: (t) => ws.send(`{"event":"send-message","data":{"text":"${t}"}}`),
          // An upload into the room, created through the HTTP API with the room JWT.
          startUpload: async (size) => {
            const h = Buffer.alloc(76);
            h.write("SDRP", 0, "latin1");
            h[4] = 2;
            h[5] = 1;
            h.writeUInt32BE(1 << 20, 8);
            const res = await fetch(`${url}/api/uploads`, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: `Bearer ${tok}` },
              body: JSON.stringify({
                plaintextSize: size, header: h.toString("base64"), metadata: Buffer.alloc(64, 1).toString("base64"),
                room: { roomId, sealedName: payload(), sealedKey: payload() },
              }),
            });
            if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
            return (await res.json()).fileId;
          },
          report: (fileId, bytes) => ws.send(`{"event":"file-upload-progress","data":{"fileId":"${fileId}","bytesUploaded":${bytes}}}`),
          close: () => ws.terminate(),
          // `ping` is answered by workerd itself (an auto-response): its round trip is
          // the transport's latency with none of the room's code in it.
          ping: () => new Promise((done) => {
            const t0 = performance.now();
            pings.push(() => done(performance.now() - t0));
            ws.send("ping");
          }),
        });
      } else if (text.includes('"event":"error"') || text.includes("authentication_failed")) {
        clearTimeout(timer);
        reject(new Error(text));
      }
    });
  });
}

/** A Socket.IO client doing the same. */
function socketioClient(url, roomId, tok) {
  return new Promise((resolve, reject) => {
    const s = sioConnect(url, { transports: ["websocket"], auth: { token: tok }, forceNew: true, reconnection: false, perMessageDeflate: false });
    const timer = setTimeout(() => reject(new Error("join timed out")), 60_000);
    s.on("connect_error", reject);
    s.on("new-message", (m) => received(m.text));
    s.on("file-upload-progress", (p) => progressReceived(p.fileId, p.bytesUploaded));
    s.on("connect", () => s.emit("join-room", { roomId }, (ack) => {
      clearTimeout(timer);
      if (ack?.error) return reject(new Error(ack.error));
      resolve({
        send: (t) => s.emit("send-message", { text: t }),
        startUpload: (size) => new Promise((done, fail) => s.emit("upload-start", { size }, (a) => (a?.fileId ? done(a.fileId) : fail(new Error(a?.error))))),
        report: (fileId, bytes) => s.emit("file-upload-progress", { fileId, bytesUploaded: bytes }),
        close: () => s.disconnect(),
      });
    }));
  });
}

/** Opens `rooms` × `size` connections, `parallel` at a time (each tried up to 3
 * times) for at most `budgetMs`; returns them by room, how long it took, and how many
 * never connected (failed three times, or not tried before the budget ran out). */
async function connectAll(open, url, rooms, size, label, budgetMs = 120_000) {
  const stopAt = performance.now() + budgetMs;
  const tokens = await Promise.all(Array.from({ length: size }, (_, i) => token(`u${i}`)));
  const all = Array.from({ length: rooms }, () => []);
  const jobs = [];
  for (let r = 0; r < rooms; r++) for (let m = 0; m < size; m++) jobs.push([r, m]);
  const started = performance.now();
  const parallel = 100;
  let next = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < jobs.length && performance.now() < stopAt) {
      const [r, m] = jobs[next++];
      for (let attempt = 1; ; attempt++) {
        try {
          all[r].push(await open(url, `${label}r${r}`, tokens[m]));
          break;
        } catch (e) {
          if (attempt === 3) { failed += 1; break; }
          await sleep(1_000);
        }
      }
    }
  }));
  const notTried = jobs.length - Math.min(next, jobs.length);
  return { byRoom: all.filter((room) => room.length), seconds: (performance.now() - started) / 1000, failed: failed + notTried };
}

// ---------------------------------------------------------------------------------
// Measuring a server process
// ---------------------------------------------------------------------------------

const TICKS = 100; // USER_HZ on Linux
function procStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpu = Number(fields[11]) + Number(fields[12]); // utime + stime
    const rss = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) * 1024;
    return { cpu, rss };
  } catch {
    return { cpu: 0, rss: 0 };
  }
}

/** The workerd processes of the wrangler that serves `port` (same process group). */
function workerdPids(port) {
  const pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  const read = (pid, file) => { try { return readFileSync(`/proc/${pid}/${file}`, "utf8"); } catch { return ""; } };
  const wrangler = pids.find((p) => read(p, "cmdline").split("\0").join(" ").includes(`--port ${port} `));
  if (!wrangler) return [];
  const pgid = (pid) => read(pid, "stat").slice(read(pid, "stat").lastIndexOf(")") + 2).split(" ")[2];
  const group = pgid(wrangler);
  return pids.filter((p) => pgid(p) === group && read(p, "comm").trim() === "workerd").map(Number);
}

function sample(pids) {
  const s = pids.map(procStat).reduce((a, b) => ({ cpu: a.cpu + b.cpu, rss: a.rss + b.rss }), { cpu: 0, rss: 0 });
  return { ...s, at: performance.now(), gen: process.cpuUsage() };
}

function usage(before, after) {
  const seconds = (after.at - before.at) / 1000;
  const genCpu = (after.gen.user + after.gen.system - before.gen.user - before.gen.system) / 1e6;
  return {
    serverCpuPercent: Math.round(((after.cpu - before.cpu) / TICKS / seconds) * 100),
    serverRssMiB: Math.round(after.rss / 2 ** 20),
    generatorCpuPercent: Math.round((genCpu / seconds) * 100),
  };
}

// ---------------------------------------------------------------------------------
// One load step: `rate` messages a second for `ms`, from random members
// ---------------------------------------------------------------------------------

async function step(byRoom, rate, ms, pids) {
  sent.clear();
  latencies = [];
  delivered = 0;
  let expected = 0;
  const before = sample(pids);
  const start = performance.now();
  let count = 0;
  // Beside the load, the platform's own ping round trip (sealdrop only).
  const probe = byRoom[0][0].ping;
  const pingRtts = [];
  let probing = Boolean(probe);
  const prober = (async () => {
    while (probing) {
      pingRtts.push(await probe());
      await sleep(20);
    }
  })();
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (count < due) {
      const room = byRoom[count % byRoom.length];
      const client = room[Math.floor(Math.random() * room.length)];
      expected += room.length;
      const text = payload();
      sent.set(text, performance.now());
      client.send(text);
      count += 1;
    }
    await sleep(5);
  }
  const elapsed = (performance.now() - start) / 1000;
  probing = false;
  await prober;
  const pingSorted = pingRtts.sort((a, b) => a - b);
  // Let what is in flight arrive (anything later than this counts as lost).
  const drainUntil = performance.now() + 3_000;
  while (delivered < expected && performance.now() < drainUntil) await sleep(20);
  const after = sample(pids);
  const sorted = latencies.slice().sort((a, b) => a - b);
  const lost = expected - delivered;
  // A delivery that never came counts as a latency past any limit.
  const withLost = lost > 0 ? sorted.concat(Array(lost).fill(Infinity)) : sorted;
  return {
    rate,
    sentPerSecond: Math.round(count / elapsed),
    deliveredPerSecond: Math.round(delivered / elapsed),
    lostPercent: expected ? Math.round((lost / expected) * 1000) / 10 : 0,
    p50: round(percentile(withLost, 50)),
    p99: round(percentile(withLost, 99)),
    pingP50: probe ? round(percentile(pingSorted, 50)) : null,
    pingP99: probe ? round(percentile(pingSorted, 99)) : null,
    ...usage(before, after),
  };
}

/**
 * (d): in each room one member uploads and reports progress `perSecond` times a second
 * for `ms`; every member (the uploader too) receives the room's coalesced broadcasts.
 */
async function progressStep(byRoom, perSecond, ms, pids) {
  const size = 100e9; // 100 GB, within every provider's limits
  const uploads = await Promise.all(byRoom.map(async (room) => ({ client: room[0], members: room.length, fileId: await room[0].startUpload(size) })));
  progressSent.clear();
  progressLatencies = [];
  progressDelivered = 0;
  const before = sample(pids);
  const start = performance.now();
  let reports = 0;
  let bytes = 0;
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) / 1000) * perSecond);
    while (reports < due) {
      reports += 1;
      bytes = reports * 1_000_000;
      const t0 = performance.now();
      for (const u of uploads) {
        progressSent.set(`${u.fileId}:${bytes}`, t0);
        u.client.report(u.fileId, bytes);
      }
    }
    await sleep(5);
  }
  const elapsed = (performance.now() - start) / 1000;
  // Let the trailing broadcasts (every upload's final value) arrive.
  const finalsIn = () => uploads.every((u) => progressLatest.get(u.fileId) === bytes);
  const drainUntil = performance.now() + 3_000;
  while (performance.now() < drainUntil && !finalsIn()) await sleep(20);
  const finals = uploads.filter((u) => progressLatest.get(u.fileId) === bytes).length;
  // Broadcasts go out until the trailing ones: rates are over the whole window.
  const window = (performance.now() - start) / 1000;
  const after = sample(pids);
  const sorted = progressLatencies.slice().sort((a, b) => a - b);
  const recipients = uploads.reduce((n, u) => n + u.members, 0);
  return {
    rooms: uploads.length,
    reportsPerSecond: Math.round((reports * uploads.length) / elapsed),
    broadcastsPerSecond: Math.round(progressDelivered / window),
    perUploadPerSecond: round(progressDelivered / recipients / window),
    finalValuesDelivered: `${finals}/${uploads.length}`,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    ...usage(before, after),
  };
}

const round = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
const ok = (r) => r.p99 !== null && r.p99 <= P99_LIMIT_MS;

/** Rising rates until p99 passes the limit; the best step under it. */
async function rising(byRoom, rates, pids) {
  const steps = [];
  for (const rate of rates) {
    if (Date.now() > DEADLINE) break;
    const r = await step(byRoom, rate, STEP_MS, pids);
    steps.push(r);
    console.log(`    rate ${rate}/s: delivered ${r.deliveredPerSecond}/s, p50 ${r.p50} ms, p99 ${r.p99} ms, lost ${r.lostPercent}%, server CPU ${r.serverCpuPercent}%, ping p50/p99 ${r.pingP50}/${r.pingP99} ms`);
    if (!ok(r)) break;
    await sleep(1_000);
  }
  const best = steps.filter(ok).at(-1) ?? null;
  return { best, steps };
}

// ---------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------

async function runTarget(name, open, url, pids) {
  const out = {};
  const scale = QUICK ? 0.2 : 1;
  if (ONLY.includes("a")) {
    const rooms = Math.round(100 * scale);
    const { byRoom, seconds, failed } = await connectAll(open, url, rooms, 10, `${name}-a-`);
    console.log(`  (a) ${rooms * 10 - failed} connections in ${seconds.toFixed(1)} s (${failed} failed)`);
    out.a = { connections: rooms * 10 - failed, connectSeconds: round(seconds), ...(await rising(byRoom, [100, 200, 400, 800, 1600, 3200].map((r) => r * scale), pids)) };
    byRoom.flat().forEach((c) => c.close());
    await sleep(2_000);
  }
  if (ONLY.includes("b") && Date.now() < DEADLINE) {
    const rooms = Math.round(1000 * scale);
    const { byRoom, seconds, failed } = await connectAll(open, url, rooms, 10, `${name}-b-`);
    console.log(`  (b) ${rooms * 10 - failed} connections in ${seconds.toFixed(1)} s (${failed} failed)`);
    await sleep(2_000);
    const r = await step(byRoom, 1000 * scale, STEP_MS * 2, pids);
    console.log(`    1,000 msg/s: delivered ${r.deliveredPerSecond}/s, p50 ${r.p50} ms, p99 ${r.p99} ms, lost ${r.lostPercent}%, server CPU ${r.serverCpuPercent}%, RSS ${r.serverRssMiB} MiB`);
    out.b = { connections: rooms * 10 - failed, connectSeconds: round(seconds), ...r };
    byRoom.flat().forEach((c) => c.close());
    await sleep(3_000);
  }
  if (ONLY.includes("c") && Date.now() < DEADLINE) {
    const size = Math.round(1000 * scale);
    const { byRoom, seconds, failed } = await connectAll(open, url, 1, size, `${name}-c-`);
    console.log(`  (c) one room of ${size - failed} in ${seconds.toFixed(1)} s (${failed} failed)`);
    out.c = { members: size - failed, connectSeconds: round(seconds), ...(await rising(byRoom, [5, 10, 20, 40, 80], pids)) };
    byRoom.flat().forEach((c) => c.close());
    await sleep(2_000);
  }
  if (ONLY.includes("d") && Date.now() < DEADLINE) {
    const rooms = Math.round(100 * scale);
    const { byRoom, seconds, failed } = await connectAll(open, url, rooms, 10, `${name}-d-`);
    console.log(`  (d) ${rooms * 10 - failed} connections in ${seconds.toFixed(1)} s (${failed} failed)`);
    const r = await progressStep(byRoom, 20, STEP_MS * 2, pids);
    console.log(`    ${r.rooms} uploads at 20 reports/s: ${r.broadcastsPerSecond} broadcasts/s delivered (${r.perUploadPerSecond} per upload per member), p50 ${r.p50} ms, p99 ${r.p99} ms, server CPU ${r.serverCpuPercent}%, final values ${r.finalValuesDelivered}`);
    out.d = { connections: rooms * 10 - failed, ...r };
    byRoom.flat().forEach((c) => c.close());
    await sleep(2_000);
  }
  return out;
}

async function main() {
  mkdirSync(join(ROOT, "test-results"), { recursive: true });
  if (!existsSync(join(ROOT, "edge-worker/build/index.js"))) throw new Error("run `bash scripts/build.sh` first");
  // (d) makes 100 uploads of 100 GB as one user: lift the account quota and create rate.
  const vars = { ROOM_MESSAGES_PER_MINUTE: "10000000", ROOM_FRAMES_PER_SECOND: "100000", ROOM_IDLE_TIMEOUT_SECONDS: "0", ROOM_MAX_UPLOADS: "1000", QUOTA_BYTES: String(2 ** 50), CREATE_RATE_PER_MINUTE: "100000" };
  const worker = await startServer({ vars });
  const sioPort = await freePort();
  const sio = spawn(process.execPath, [join(ROOT, "bench/rooms-socketio-server.mjs"), String(sioPort), Buffer.from(secret).toString("hex")], { stdio: ["ignore", "pipe", "inherit"] });
  await once(sio.stdout, "data");
  const results = { date: new Date().toISOString(), machine: machine(), versions: versions(), quick: QUICK };
  try {
    const workerPort = new URL(worker.url).port;
    if (TARGETS.includes("sealdrop")) {
      console.log("sealdrop (Room objects in workerd, wrangler dev --local)");
      results.sealdrop = await runTarget("s", sealdropClient, worker.url, workerdPids(workerPort));
    }
    if (TARGETS.includes("sealdrop-tmpfs") && existsSync("/dev/shm")) {
      // The same worker with its storage in memory (tmpfs): what the disk costs.
      const dir = mkdtempSync("/dev/shm/sealdrop-bench-");
      const memory = await startServer({ vars, persistDir: dir });
      try {
        console.log("sealdrop, storage on tmpfs (diagnostic: scenario a only)");
        const saved = ONLY.splice(0, ONLY.length, "a");
        results.sealdropTmpfs = await runTarget("m", sealdropClient, memory.url, workerdPids(new URL(memory.url).port));
        ONLY.splice(0, ONLY.length, ...saved);
      } finally {
        await memory.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    if (TARGETS.includes("socketio")) {
      console.log("Socket.IO 4 (node, websocket transport)");
      results.socketio = await runTarget("i", socketioClient, `http://127.0.0.1:${sioPort}`, [sio.pid]);
    }
  } finally {
    sio.kill();
    await worker.stop();
  }
  writeFileSync(join(ROOT, "test-results/bench-rooms.json"), JSON.stringify(results, null, 2));
  const section = report(results);
  console.log(`\n${section}`);
  if (!QUICK) writeBenchmarks(section);
}

function machine() {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.+)/)?.[1] ?? os.cpus()[0]?.model;
  return { cpu, cores: os.cpus().length, ramGiB: Math.round(os.totalmem() / 2 ** 30), load: os.loadavg().map((l) => l.toFixed(1)).join(" ") };
}

function versions() {
  const v = (pkg) => { try { return JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version; } catch { return "?"; } };
  return { node: process.versions.node, wrangler: v("wrangler"), workerd: v("workerd"), "socket.io": v("socket.io"), "socket.io-client": v("socket.io-client"), ws: v("ws") };
}

function report(r) {
  const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : "n/a");
  const best = (x) => x?.best?.deliveredPerSecond ?? null;
  const lines = [
    "## Rooms: sealdrop against Socket.IO",
    "",
    `Run ${r.date} on ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.ramGiB} GiB RAM (load average at the end ${r.machine.load}; the machine is shared with other work, so figures move between runs). Versions: Node ${r.versions.node}, wrangler ${r.versions.wrangler}, workerd ${r.versions.workerd}, socket.io ${r.versions["socket.io"]}, socket.io-client ${r.versions["socket.io-client"]}, ws ${r.versions.ws}. \`npm run bench:rooms\` (bench/rooms.mjs): one Node load generator, 127.0.0.1 only, every step ${STEP_MS / 1000} s then up to 3 s to drain; latency is send-to-receive per delivery, an undelivered message counts as infinitely late. sealdrop stores every message in the room's SQLite before it is broadcast; the Socket.IO server stores nothing.`,
    "",
    "| scenario | figure | sealdrop | Socket.IO | ratio (sealdrop / Socket.IO) |",
    "| --- | --- | --- | --- | --- |",
    `| (a) 1,000 connections, 100 rooms of 10 | highest delivered messages/s with p99 ≤ 100 ms | ${best(r.sealdrop?.a) ?? "none"} | ${best(r.socketio?.a) ?? "none"} | ${ratio(best(r.sealdrop?.a), best(r.socketio?.a))} |`,
    `| (a) | p99 at that rate (ms) | ${r.sealdrop?.a?.best?.p99 ?? "n/a"} | ${r.socketio?.a?.best?.p99 ?? "n/a"} | |`,
    `| (a), diagnostic | the same with sealdrop's storage on tmpfs | ${best(r.sealdropTmpfs?.a) ?? "none"} | | ${ratio(best(r.sealdropTmpfs?.a), best(r.socketio?.a))} |`,
    `| (b) 10,000 connections, 1,000 rooms of 10, 1,000 messages/s | connections made in the 120 s budget | ${r.sealdrop?.b?.connections ?? "n/a"} | ${r.socketio?.b?.connections ?? "n/a"} | ${ratio(r.sealdrop?.b?.connections, r.socketio?.b?.connections)} |`,
    `| (b) | delivered/s | ${r.sealdrop?.b?.deliveredPerSecond ?? "n/a"} | ${r.socketio?.b?.deliveredPerSecond ?? "n/a"} | ${ratio(r.sealdrop?.b?.deliveredPerSecond, r.socketio?.b?.deliveredPerSecond)} |`,
    `| (b) | p50 / p99 latency (ms) | ${r.sealdrop?.b?.p50} / ${r.sealdrop?.b?.p99} | ${r.socketio?.b?.p50} / ${r.socketio?.b?.p99} | ${ratio(r.socketio?.b?.p99, r.sealdrop?.b?.p99)} (p99, higher is better for sealdrop) |`,
    `| (b) | server RSS (MiB) / CPU (% of one core) | ${r.sealdrop?.b?.serverRssMiB} / ${r.sealdrop?.b?.serverCpuPercent} | ${r.socketio?.b?.serverRssMiB} / ${r.socketio?.b?.serverCpuPercent} | |`,
    `| (b) | generator CPU (%) / connect time (s) | ${r.sealdrop?.b?.generatorCpuPercent} / ${r.sealdrop?.b?.connectSeconds} | ${r.socketio?.b?.generatorCpuPercent} / ${r.socketio?.b?.connectSeconds} | |`,
    `| (c) one room of 1,000 | highest delivered messages/s with p99 ≤ 100 ms | ${best(r.sealdrop?.c) ?? "none"} | ${best(r.socketio?.c) ?? "none"} | ${ratio(best(r.sealdrop?.c), best(r.socketio?.c))} |`,
    `| (d) upload progress: 100 rooms of 10, one upload each reporting 20/s, coalesced to ≤ 4 broadcasts/s | broadcasts delivered/s (per upload per member) | ${r.sealdrop?.d?.broadcastsPerSecond ?? "n/a"} (${r.sealdrop?.d?.perUploadPerSecond ?? "n/a"}) | ${r.socketio?.d?.broadcastsPerSecond ?? "n/a"} (${r.socketio?.d?.perUploadPerSecond ?? "n/a"}) | ${ratio(r.sealdrop?.d?.broadcastsPerSecond, r.socketio?.d?.broadcastsPerSecond)} |`,
    `| (d) | p50 / p99 report-to-delivery latency (ms) | ${r.sealdrop?.d?.p50} / ${r.sealdrop?.d?.p99} | ${r.socketio?.d?.p50} / ${r.socketio?.d?.p99} | |`,
    `| (d) | server CPU (% of one core) | ${r.sealdrop?.d?.serverCpuPercent ?? "n/a"} | ${r.socketio?.d?.serverCpuPercent ?? "n/a"} | |`,
    "",
    "Every step, for the record:",
    "",
    "| target | scenario | rate sent/s | delivered/s | p50 ms | p99 ms | lost % | platform ping p50/p99 ms | server CPU % | server RSS MiB | generator CPU % |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const target of ["sealdrop", "sealdropTmpfs", "socketio"]) {
    for (const sc of ["a", "b", "c"]) {
      const x = r[target]?.[sc];
      const steps = x?.steps ?? (x ? [x] : []);
      for (const s of steps) {
        const ping = s.pingP50 === null || s.pingP50 === undefined ? "n/a" : `${s.pingP50} / ${s.pingP99}`;
        lines.push(`| ${target} | ${sc} | ${s.rate} | ${s.deliveredPerSecond} | ${s.p50} | ${s.p99} | ${s.lostPercent} | ${ping} | ${s.serverCpuPercent} | ${s.serverRssMiB} | ${s.generatorCpuPercent} |`);
      }
    }
  }
  lines.push("", `Connections not made (three failed attempts, or not tried within the 120 s connect budget): sealdrop (a) ${r.sealdrop?.a ? 1000 - r.sealdrop.a.connections : "n/a"}, (b) ${r.sealdrop?.b ? 10000 - r.sealdrop.b.connections : "n/a"}, (c) ${r.sealdrop?.c ? 1000 - r.sealdrop.c.members : "n/a"}; Socket.IO (a) ${r.socketio?.a ? 1000 - r.socketio.a.connections : "n/a"}, (b) ${r.socketio?.b ? 10000 - r.socketio.b.connections : "n/a"}, (c) ${r.socketio?.c ? 1000 - r.socketio.c.members : "n/a"}. Stray socket errors in the generator: ${strayErrors}.`);
  return lines.join("\n");
}

function writeBenchmarks(section) {
  const file = join(ROOT, "BENCHMARKS.md");
  const start = "<!-- rooms-bench:start -->";
  const end = "<!-- rooms-bench:end -->";
  const block = `${start}\n${section}\n${end}`;
  let text = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n";
  text = text.includes(start)
    ? text.replace(new RegExp(`${start}[\\s\\S]*${end}`), block)
    : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}

await main();
process.exit(0);
