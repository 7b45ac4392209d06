// sealdrop rooms: create a room (the key is made here and lives in the link's
// fragment), join one by its link, chat with history and read marks, see who is
// online on how many devices, lock and unlock as a moderator. Plain JS over
// @sealdrop/client's RoomClient (docs/PROTOCOL.md); no framework, no build step.
//
// Locally the display name becomes a token through the dev login route
// (POST /api/dev/token, only with DEV_LOGIN=true). In a real deployment the embedding
// app's backend mints the token instead.
//
// In reading order: start-up, identity (name, user id, token), the room (connect and
// render), then small helpers.

import init, { RoomClient } from "/pkg/sealdrop_client.js";

const $ = (id) => document.getElementById(id);
const store = {
  get: (key) => { try { return localStorage.getItem(`sealdrop.${key}`); } catch { return null; } },
  set: (key, value) => { try { localStorage.setItem(`sealdrop.${key}`, value); } catch { /* private mode */ } },
};

// ---------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------

async function main() {
  try {
    await init();
  } catch (err) {
    return fatal("The sealdrop client could not load in this browser.", err);
  }
  const match = /^\/r\/([A-Za-z0-9_-]{1,64})\/?$/.exec(location.pathname);
  if (!match) return showCreate();
  if (!location.hash.startsWith("#k1.")) {
    return fatal("This room link has no key. Ask for the whole link, including the part after #.");
  }
  const roomId = match[1];
  const name = store.get("name");
  if (!name) return showHello(roomId);
  enterRoom(roomId, name);
}

function showCreate() {
  $("create").hidden = false;
  $("create-name").value = store.get("name") ?? "";
  $("create-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("create-name").value.trim();
    if (!name) return;
    store.set("name", name);
    const { roomId, link } = RoomClient.createRoomLink();
    store.set(`role.${roomId}`, "owner"); // who made the room owns it (dev login)
    location.assign(link);
  });
}

function showHello(roomId) {
  $("hello").hidden = false;
  $("hello-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("hello-name").value.trim();
    if (!name) return;
    store.set("name", name);
    $("hello").hidden = true;
    enterRoom(roomId, name);
  });
}

// ---------------------------------------------------------------------------------
// Identity: one user id per browser (so its tabs count as devices of one user)
// ---------------------------------------------------------------------------------

function userId() {
  let id = store.get("userId");
  if (!id) {
    id = `web-${crypto.randomUUID()}`;
    store.set("userId", id);
  }
  return id;
}

/** A fresh dev token for this room (called for every new socket). */
async function devToken(roomId, name) {
  const role = store.get(`role.${roomId}`) ?? "member";
  const res = await fetch("/api/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, userId: userId(), rooms: { [roomId]: role } }),
  });
  if (res.status === 404) {
    throw new Error("This server has no dev login (DEV_LOGIN is off): the app embedding sealdrop must provide room tokens.");
  }
  if (!res.ok) throw new Error(`the dev login answered ${res.status}`);
  return (await res.json()).token;
}

// ---------------------------------------------------------------------------------
// The room
// ---------------------------------------------------------------------------------

const view = {
  client: null,
  me: null,
  role: "member",
  /** Messages by seq, and the oldest seq shown (for paging back). */
  messages: new Map(),
  oldest: null,
  reads: {},
  online: new Map(),
  names: new Map(),
};

async function enterRoom(roomId, name) {
  $("room").hidden = false;
  $("room-link").value = location.href;
  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      flash($("copy-link"), "Copied");
    } catch {
      $("room-link").select();
    }
  });
  let client;
  try {
    // Fail early with a readable message if there is no dev login.
    await devToken(roomId, name);
    client = await RoomClient.connect(location.href, {
      token: () => devToken(roomId, name),
      onStateChange: showState,
      on: handlers(),
    });
  } catch (err) {
    showState("closed");
    return fatal(err.code === "closed" ? "The room refused to let you in." : "Could not join the room.", err);
  }
  view.client = client;
  wireControls(client);
  showState(client.state);
}

/** The room's events, registered before the first socket opens so they hear the join
 * (room-state, presence, history), and every rejoin after a reconnect. */
function handlers() {
  const presence = (u) => {
    view.names.set(u.userId, u.userName);
    if (u.devices > 0) view.online.set(u.userId, u); else view.online.delete(u.userId);
    renderMembers();
  };
  return {
    "room-state": (s) => {
      view.me = s.you;
      view.role = s.you.role;
      view.reads = s.reads;
      $("me").textContent = `you: ${s.you.userName} (${s.you.role})`;
      $("lock").hidden = !(s.you.role === "moderator" || s.you.role === "owner");
      showLock(s.lock);
    },
    "presence": (p) => {
      view.online = new Map(p.users.map((u) => [u.userId, u]));
      for (const u of p.users) view.names.set(u.userId, u.userName);
      renderMembers();
    },
    "user-online": presence,
    "user-offline": presence,
    "user-joined": (u) => system(u.seq, `${u.userName} joined the room`),
    "user-left": (u) => system(u.seq, `${u.userName} left the room`),
    "history": (page) => addMessages(page.messages, page.hasMore),
    "resync-required": () => { view.messages.clear(); view.oldest = null; $("messages").replaceChildren(); },
    "new-message": (m) => addMessages([m]),
    "message-read": (r) => { view.reads[r.userId] = r.seq; renderReads(); },
    "room-locked": (l) => { showLock(l); system(l.seq, `${l.lockedByName} locked the room${l.reason ? `: ${l.reason}` : ""}`); },
    "room-unlocked": (u) => { showLock(null); system(u.seq, `${u.unlockedByName} unlocked the room`); },
  };
}

/** The composer, paging back, and the lock button. */
function wireControls(client) {
  $("composer").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    $("send-error").hidden = true;
    try {
      await client.sendMessage(text);
    } catch (err) {
      input.value = text;
      $("send-error").textContent = err.code === "rate_limited"
        ? "You are sending too fast; wait a moment."
        : `Not sent: ${describe(err)}`;
      $("send-error").hidden = false;
    }
  });
  $("older").addEventListener("click", async () => {
    if (view.oldest === null) return;
    const page = await client.history({ beforeSeq: view.oldest, limit: 50 });
    addMessages(page.messages, page.hasMore);
  });
  $("lock").addEventListener("click", async () => {
    const locked = $("lock").dataset.locked === "true";
    try {
      if (locked) await client.unlock();
      else await client.lock(prompt("Reason (optional, sealed like messages):") || undefined);
    } catch (err) {
      alert(`Could not ${locked ? "unlock" : "lock"}: ${describe(err)}`);
    }
  });
}

function showState(state) {
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = { connecting: "connecting…", open: "connected", reconnecting: "reconnecting…", closed: "disconnected" }[state] ?? state;
  $("composer").querySelector("button").disabled = state === "closed";
}

function showLock(lock) {
  const button = $("lock");
  button.dataset.locked = String(Boolean(lock));
  button.textContent = lock ? "Unlock room" : "Lock room";
  const banner = $("locked");
  banner.hidden = !lock;
  if (lock) {
    banner.textContent = `Locked by ${lock.lockedByName}${lock.reason ? `: ${lock.reason}` : ""}. No new members can join.`;
  }
}

function renderMembers() {
  const list = $("members");
  const users = [...view.online.values()].sort((a, b) => a.userName.localeCompare(b.userName));
  list.replaceChildren(...users.map((u) => el("li", {},
    el("span", {}, el("span", { class: "dot" }), u.userName, u.userId === view.me?.userId ? " (you)" : ""),
    el("span", { class: "devices", title: "devices connected" }, u.devices === 1 ? "1 device" : `${u.devices} devices`))));
  $("online-count").textContent = `(${users.length})`;
}

/** Adds messages (any order, duplicates ignored) and re-renders the list. */
function addMessages(messages, hasMore) {
  for (const m of messages) {
    view.messages.set(m.seq, { kind: "message", ...m });
    view.names.set(m.senderId, m.senderName);
    if (view.oldest === null || m.seq < view.oldest) view.oldest = m.seq;
  }
  if (hasMore !== undefined) $("older").hidden = !hasMore;
  renderMessages();
  const last = Math.max(...view.messages.keys());
  if (Number.isFinite(last)) markRead(last);
}

function system(seq, text) {
  view.messages.set(seq, { kind: "system", seq, text });
  renderMessages();
}

function renderMessages() {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const items = [...view.messages.values()].sort((a, b) => a.seq - b.seq).map((m) => {
    if (m.kind === "system") return el("li", { class: "system", "data-seq": m.seq }, m.text);
    const mine = m.senderId === view.me?.userId;
    const text = m.text === null
      ? el("span", { class: "bad" }, `(could not be opened: ${m.sealError ?? "no key"})`)
      : m.text;
    return el("li", { class: mine ? "mine message" : "message", "data-seq": m.seq },
      el("span", { class: "who" }, m.senderName),
      el("time", { class: "when", datetime: m.timestamp }, new Date(m.timestamp).toLocaleTimeString()),
      el("div", { class: "text" }, text),
      el("span", { class: "reads" }));
  });
  list.replaceChildren(...items);
  renderReads();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** Under each message: who (besides you) has read up to exactly there. */
function renderReads() {
  const bySeq = new Map();
  for (const [user, seq] of Object.entries(view.reads)) {
    if (user === view.me?.userId) continue;
    // A read mark may point at a non-message event: show it at the last message before.
    const at = [...view.messages.values()].filter((m) => m.kind === "message" && m.seq <= seq).map((m) => m.seq).sort((a, b) => b - a)[0];
    if (at === undefined) continue;
    bySeq.set(at, [...(bySeq.get(at) ?? []), view.names.get(user) ?? user]);
  }
  for (const li of $("messages").querySelectorAll("li.message")) {
    const names = bySeq.get(Number(li.dataset.seq));
    li.querySelector(".reads").textContent = names ? `Read by ${names.join(", ")}` : "";
  }
}

let readTimer = null;
let readSent = 0;
/** Marks messages read while the page is visible, at most every 500 ms. */
function markRead(seq) {
  if (document.visibilityState !== "visible" || seq <= readSent || !view.client) return;
  clearTimeout(readTimer);
  readTimer = setTimeout(async () => {
    readSent = Math.max(readSent, seq);
    try { await view.client.markAsRead(seq); } catch { /* the next message marks again */ }
  }, 500);
}
document.addEventListener("visibilitychange", () => {
  const last = Math.max(0, ...view.messages.keys());
  if (last) markRead(last);
});

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children.filter((c) => c !== undefined && c !== null && c !== ""));
  return node;
}

function flash(button, text) {
  const before = button.textContent;
  button.textContent = text;
  setTimeout(() => { button.textContent = before; }, 1200);
}

function describe(err) {
  return err?.code ? `${err.message} (${err.code})` : String(err?.message ?? err);
}

function fatal(text, err) {
  const el_ = $("fatal");
  el_.textContent = err ? `${text} ${describe(err)}` : text;
  el_.hidden = false;
  if (err) console.error("sealdrop:", err);
}

main();
