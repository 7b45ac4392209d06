// Where a room's memory goes (`node bench/rooms-memory.mjs`, after the build): the
// worker in workerd (wrangler dev), sockets opened in steps, and the resident memory
// of each workerd process after each step. Per socket: many sockets in one room; per
// room object: one socket in each of many rooms; then the same rooms after they have
// stored messages (their SQLite in use). 127.0.0.1 only, bounded in count.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { ROOT, startServer } from "../tests/support/server.mjs";

const SOCKETS = 200;
const ROOMS = 200;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const secretHex = readFileSync(join(ROOT, ".dev.vars"), "utf8").match(/^JWT_SECRET=(\w+)/m)?.[1];

async function token(sub) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ name: sub, rooms: { "*": "member" } })
    .setProtectedHeader({ alg: "HS256" }).setSubject(sub).setAudience("sealdrop")
    .setIssuedAt(now).setExpirationTime(now + 3600).sign(Buffer.from(secretHex));
}

/** A joined socket; resolves when the join is acked. */
function join_(url, roomId, tok) {
  return new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error(`join of ${roomId} timed out`)), 60_000);
    const ws = new WebSocket(`${url.replace("http", "ws")}/api/rooms/${roomId}/ws`, ["sealdrop.v1", `sealdrop.token.${tok}`], { perMessageDeflate: false });
    ws.on("open", () => ws.send('{"event":"join-room","id":"j"}'));
    ws.on("error", reject);
    ws.on("message", (d) => { if (d.toString().startsWith('{"event":"ack","data":{"id":"j"')) resolve(ws); });
  });
}

async function openAll(url, pairs) {
  const sockets = [];
  for (let i = 0; i < pairs.length; i += 50) {
    sockets.push(...await Promise.all(pairs.slice(i, i + 50).map(([room, tok]) => join_(url, room, tok))));
  }
  return sockets;
}

function workerd(port) {
  const pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  const read = (pid, file) => { try { return readFileSync(`/proc/${pid}/${file}`, "utf8"); } catch { return ""; } };
  const wrangler = pids.find((p) => read(p, "cmdline").split("\0").join(" ").includes(`--port ${port} `));
  const pgid = (pid) => read(pid, "stat").slice(read(pid, "stat").lastIndexOf(")") + 2).split(" ")[2];
  const group = pgid(wrangler);
  return pids.filter((p) => pgid(p) === group && read(p, "comm").trim() === "workerd")
    .map((pid) => ({ pid, rssMiB: Number(read(pid, "status").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024 }));
}

const worker = await startServer({ vars: { ROOM_MESSAGES_PER_MINUTE: "100000", ROOM_FRAMES_PER_SECOND: "100000", ROOM_IDLE_TIMEOUT_SECONDS: "0" } });
const port = new URL(worker.url).port;
const rows = [];
const measure = async (label) => {
  await sleep(3_000);
  const procs = workerd(port);
  rows.push({ label, procs: procs.map((p) => Math.round(p.rssMiB)), total: Math.round(procs.reduce((a, p) => a + p.rssMiB, 0)) });
  console.log(label, JSON.stringify(rows.at(-1)));
};
try {
  // One user per socket: a user may have only 10 sockets in a room.
  const tok = await Promise.all(Array.from({ length: SOCKETS }, (_, i) => token(`u${i}`)));
  // Warm: one room, one socket (the isolate and the wasm instance exist).
  const warm = await openAll(worker.url, [["mem-warm", tok[0]]]);
  await measure("warm: 1 room, 1 socket");
  const one = await openAll(worker.url, Array.from({ length: SOCKETS }, (_, i) => ["mem-one", tok[i]]));
  await measure(`+${SOCKETS} sockets in 1 room`);
  one.forEach((w) => w.close());
  await measure(`those ${SOCKETS} closed`);
  const many = await openAll(worker.url, Array.from({ length: ROOMS }, (_, i) => [`mem-r${i}`, tok[0]]));
  await measure(`+${ROOMS} rooms of 1 socket`);
  for (let n = 0; n < 20; n++) {
    many.forEach((w, i) => {
      const sealed = Buffer.alloc(37, (i + n) % 250 + 2);
      sealed[0] = 1; // the sealed form's version byte (the room checks the form only)
      w.send(JSON.stringify({ event: "send-message", data: { text: sealed.toString("base64url") } }));
    });
    await sleep(100);
  }
  await measure(`the ${ROOMS} rooms after 20 messages each`);
  many.forEach((w) => w.close());
  warm.forEach((w) => w.close());
  await measure("all closed");
} finally {
  await worker.stop();
}
console.log("\n| step | workerd processes RSS MiB | total MiB |\n| --- | --- | --- |");
for (const r of rows) console.log(`| ${r.label} | ${r.procs.join(" + ")} | ${r.total} |`);
