// Node-side helpers of the room tests: tokens minted with `jose` (an implementation
// independent of the worker's), the dev secret from .dev.vars, and a small WebSocket
// client that records every frame and can wait for one.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { SignJWT, UnsecuredJWT } from "jose";
import { ROOT } from "../support/server.mjs";
import { roomCipher } from "./webcrypto-room.mjs";

/** JWT_SECRET from the .dev.vars that wrangler dev reads (written by setup.sh). */
export function devSecret() {
  const line = readFileSync(join(ROOT, ".dev.vars"), "utf8").split("\n").find((l) => l.startsWith("JWT_SECRET="));
  if (!line) throw new Error(".dev.vars has no JWT_SECRET: run scripts/setup.sh");
  return new TextEncoder().encode(line.slice("JWT_SECRET=".length).trim());
}

/** A token from jose: `claims` over the defaults (aud sealdrop, 1 hour, member of `room`). */
export async function mint({ sub = "alice", name, room = "r1", role = "member", rooms, alg = "HS256", secret = devSecret(), aud = "sealdrop", exp, nbf } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ name: name ?? sub, rooms: rooms ?? { [room]: role } })
    .setProtectedHeader({ alg, typ: "JWT" })
    .setSubject(sub)
    .setAudience(aud)
    .setIssuedAt(now)
    .setExpirationTime(exp ?? now + 3600);
  if (nbf !== undefined) jwt.setNotBefore(nbf);
  return jwt.sign(secret);
}

/** An `alg: none` token (jose's UnsecuredJWT), otherwise valid. */
export function unsecured({ sub = "alice", room = "r1" } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new UnsecuredJWT({ rooms: { [room]: "owner" } }).setSubject(sub).setAudience("sealdrop").setExpirationTime(now + 3600).encode();
}

const ROOM_KEY = new Uint8Array(32).fill(7);

/** A sealed text as a browser would send it, made by the independent JS implementation. */
export async function sealText(roomId, sender, text, field = "text", event = "new-message") {
  const cipher = await roomCipher(ROOM_KEY, roomId);
  return cipher.seal({ event, sender, field }, text);
}

export async function openText(roomId, sender, sealed) {
  const cipher = await roomCipher(ROOM_KEY, roomId);
  return new TextDecoder().decode(await cipher.open({ event: "new-message", sender, field: "text" }, sealed));
}

const WAIT_MS = 30_000;

/** A test's WebSocket to one room: every frame it receives is kept in `frames`. */
export class RoomSocket {
  static async open(serverUrl, roomId, { protocols } = {}) {
    const url = `${serverUrl.replace(/^http/, "ws")}/api/rooms/${roomId}/ws`;
    const s = new RoomSocket(new WebSocket(url, protocols), roomId);
    await s.opened;
    return s;
  }

  constructor(ws, roomId) {
    this.ws = ws;
    this.roomId = roomId;
    this.frames = [];
    this.raw = [];
    this.waiters = [];
    this.nextId = 1;
    this.opened = new Promise((resolve, reject) => {
      ws.addEventListener("open", resolve, { once: true });
      ws.addEventListener("error", () => reject(new Error("socket error before open")), { once: true });
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }), { once: true }));
    ws.addEventListener("message", (e) => {
      this.raw.push(e.data);
      let frame;
      try { frame = JSON.parse(e.data); } catch { frame = { event: "(text)", data: e.data }; }
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => !w(frame));
    });
  }

  sendRaw(text) { this.ws.send(text); }
  send(event, data, id) { this.ws.send(JSON.stringify(id === undefined ? { event, data } : { event, data, id })); }

  /** Resolves with the first frame (already received or to come) that `pred` accepts. */
  waitFor(pred, what = "a frame") {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames.slice(-5))}`)), WAIT_MS);
      this.waiters.push((f) => { if (pred(f)) { clearTimeout(timer); resolve(f); return true; } return false; });
    });
  }

  /** Waits for the `n`-th (1-based) frame of `event` received since `from` (an index). */
  async event(event, { from = 0, n = 1 } = {}) {
    const matches = () => this.frames.slice(from).filter((f) => f.event === event);
    if (matches().length >= n) return matches()[n - 1];
    await this.waitFor(() => matches().length >= n, `${n} × ${event}`);
    return matches()[n - 1];
  }

  /** Who is online, with how many devices (user id → devices), as this socket's frames
   * tell it: the last `presence` snapshot with every `presence-changed` after it applied. */
  online() {
    const at = this.frames.findLastIndex((f) => f.event === "presence");
    if (at < 0) return {};
    const online = Object.fromEntries(this.frames[at].data.users.map((u) => [u.userId, u.devices]));
    for (const f of this.frames.slice(at + 1).filter((f) => f.event === "presence-changed")) {
      for (const u of f.data.online) online[u.userId] = u.devices;
      for (const u of f.data.offline) delete online[u.userId];
    }
    return online;
  }

  /** Waits until `online()` is `expected`. */
  presenceIs(expected) {
    return this.waitFor(() => isDeepStrictEqual(this.online(), expected), `presence ${JSON.stringify(expected)}`);
  }

  /** The `presence-changed` frames received since `from` (an index). */
  presenceChanges(from = 0) {
    return this.frames.slice(from).filter((f) => f.event === "presence-changed");
  }

  /** Sends a request with a fresh id and resolves with its `ack` or `error` frame. */
  request(event, data = {}) {
    const id = `t${this.nextId++}-${Math.random().toString(36).slice(2, 8)}`;
    this.send(event, data, id);
    return this.waitFor((f) => (f.event === "ack" || f.event === "error") && f.data?.id === id, `the answer to ${event}`);
  }

  async authenticate(token) {
    const answer = await this.request("authenticate", { token });
    if (answer.event !== "ack") throw new Error(`authentication failed: ${JSON.stringify(answer)}`);
    return answer.data;
  }

  close() { this.ws.close(1000, "bye"); return this.closed; }
}

/** A socket that is authenticated as `sub` and has joined (`lastSeq` to resume). */
export async function member(serverUrl, roomId, sub, { role = "member", lastSeq } = {}) {
  const s = await RoomSocket.open(serverUrl, roomId);
  await s.authenticate(await mint({ sub, room: roomId, role }));
  const ack = await s.request("join-room", lastSeq === undefined ? {} : { lastSeq });
  if (ack.event !== "ack") throw new Error(`join failed: ${JSON.stringify(ack)}`);
  s.joinAck = ack.data;
  return s;
}
