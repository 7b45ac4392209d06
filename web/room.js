// sealdrop rooms: create a room (the key is made here and lives in the link's
// fragment), join one by its link, chat with history and read marks, see who is
// online on how many devices, lock and unlock as a moderator, watch every upload in
// flight (name, bar, speed and ETA as the room measures them), and open the room's
// files and folders (a folder's files are downloaded one by one, each by its link),
// with their processing status; send files and folders into the room (picked or
// dropped), and pause, resume or cancel your uploads from any of your devices. Plain JS over
// @sealdrop/client's RoomClient (docs/PROTOCOL.md); no framework, no build step.
//
// Locally the display name becomes a token through the dev login route
// (POST /api/dev/token, only with DEV_LOGIN=true). In a real deployment the embedding
// app's backend mints the token instead.
//
// In reading order: start-up, identity (name, user id, token), the room (connect and
// render), then small helpers.

import init, { RoomClient, Uploader, download } from "/pkg/sealdrop_client.js";

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
  /** Uploads in flight by file id; the room's files and folders by id. */
  uploads: new Map(),
  files: new Map(),
  oldestFile: null,
  /** Each file's share link, as its uploader posted it (sealed) into the chat. */
  links: new Map(),
  /** Uploads running on this device (the `Upload` handles). */
  local: new Set(),
  /** Thumbnails by file id: an object URL, `null` (none), or "loading". */
  thumbs: new Map(),
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
  // The first join's `files` page came before the client was ready: subscribe now.
  for (const f of view.files.values()) {
    if (!f.isFolder) client.request("subscribe:file", { fileId: f.id }).catch(() => {});
  }
  wireControls(client);
  // What a dropped or picked folder does, for automation (a headless browser cannot
  // pick a folder): `sendFiles([{file, path: "Folder/sub/name"}])`.
  window.sealdropRoom = { sendFiles: (entries) => sendFiles(client, entries) };
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
  const joined = (u) => system(u.seq, `${u.userName} joined the room`);
  const left = (u) => system(u.seq, `${u.userName} left the room`);
  return {
    "room-state": (s) => {
      view.me = s.you;
      view.role = s.you.role;
      view.reads = s.reads;
      $("me").textContent = `you: ${s.you.userName} (${s.you.role})`;
      $("lock").hidden = !(s.you.role === "moderator" || s.you.role === "owner");
      $("send-files").hidden = s.you.role === "viewer";
      showLock(s.lock);
    },
    "presence": (p) => {
      view.online = new Map(p.users.map((u) => [u.userId, u]));
      for (const u of p.users) view.names.set(u.userId, u.userName);
      renderMembers();
    },
    // One window's joins, leaves and device counts (joins and leaves are numbered
    // events; a replay after a reconnect brings them back one by one, as below).
    "presence-changed": (c) => {
      for (const u of c.joined) joined(u);
      for (const u of c.left) left(u);
      for (const u of [...c.online, ...c.offline]) presence(u);
    },
    "user-joined": joined,
    "user-left": left,
    "history": (page) => addMessages(page.messages, page.hasMore),
    "resync-required": () => { view.messages.clear(); view.oldest = null; $("messages").replaceChildren(); },
    "new-message": (m) => addMessages([m]),
    "message-read": (r) => { view.reads[r.userId] = r.seq; renderReads(); },
    "room-locked": (l) => { showLock(l); system(l.seq, `${l.lockedByName} locked the room${l.reason ? `: ${l.reason}` : ""}`); },
    "room-unlocked": (u) => { showLock(null); system(u.seq, `${u.unlockedByName} unlocked the room`); },
    ...fileHandlers(),
  };
}

/** Uploads in flight, the room's files, and processing status. */
function fileHandlers() {
  const upload = (fileId, change) => {
    const u = view.uploads.get(fileId);
    if (!u) return;
    Object.assign(u, change);
    renderUploads();
  };
  return {
    "uploads": (snapshot) => {
      view.uploads = new Map(snapshot.uploads.map((u) => [u.fileId, u]));
      renderUploads();
    },
    "file-upload-started": (u) => {
      view.uploads.set(u.fileId, { state: "uploading", bytesUploaded: 0, totalBytes: u.size, percentage: 0, ...u });
      renderUploads();
    },
    "file-upload-progress": (p) => upload(p.fileId, p),
    "file-upload-paused": (p) => upload(p.fileId, { state: "paused", bytesUploaded: p.bytesUploaded, uploadSpeed: null, estimatedTimeRemaining: null }),
    "file-upload-resumed": (p) => upload(p.fileId, { state: "uploading", bytesUploaded: p.bytesUploaded }),
    "file-upload-completed": (c) => { view.uploads.delete(c.fileId); renderUploads(); },
    "file-upload-failed": (f) => {
      const name = view.uploads.get(f.fileId)?.name;
      view.uploads.delete(f.fileId);
      renderUploads();
      system(f.seq, `${f.userName}'s upload${name ? ` of ${name}` : ""} ${f.reason === "cancelled" ? "was cancelled" : "expired"}`);
    },
    "files": (page) => addFiles(page.files, page.hasMore),
    "file-added": (added) => addFiles([{ ...added.file, seq: added.seq }]),
    "file-removed": (r) => {
      view.files.delete(r.fileId);
      renderFiles();
    },
    "processing:started": (p) => processing(p, "processing"),
    "processing:progress": (p) => processing(p, "processing"),
    "processing:completed": (p) => processing(p, "completed"),
    "processing:failed": (p) => processing(p, "failed"),
  };
}

function processing(event, status) {
  const file = view.files.get(event.fileId);
  if (!file) return;
  file.processing = { ...file.processing, processor: event.processor, status, progress: event.progress ?? file.processing?.progress, message: event.message, error: event.error };
  renderFiles();
}

/**
 * Adds files (duplicates replace) and subscribes to their processing status. The join
 * sends the newest page again on every (re)connect, and subscriptions belong to the
 * socket, so every page subscribes again.
 */
function addFiles(files, hasMore) {
  for (const f of files) {
    view.files.set(f.id, f);
    if (f.seq !== undefined && (view.oldestFile === null || f.seq < view.oldestFile)) view.oldestFile = f.seq;
    if (!f.isFolder && view.client) {
      view.client.request("subscribe:file", { fileId: f.id }).catch(() => { /* at most 100 a socket */ });
    }
  }
  if (hasMore !== undefined) $("older-files").hidden = !hasMore;
  renderFiles();
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
  $("older-files").addEventListener("click", async () => {
    if (view.oldestFile === null) return;
    const page = await client.files({ beforeSeq: view.oldestFile, limit: 50 });
    addFiles(page.files, page.hasMore);
  });
  $("pick-files").addEventListener("change", (e) => {
    sendFiles(client, [...e.target.files].map((file) => ({ file, path: null })));
    e.target.value = "";
  });
  $("pick-folder").addEventListener("change", (e) => {
    sendFiles(client, [...e.target.files].map((file) => ({ file, path: file.webkitRelativePath })));
    e.target.value = "";
  });
  const zone = document.querySelector("section.files");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dropping"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("dropping");
    sendFiles(client, await droppedFiles(e.dataTransfer));
  });
  $("uploads").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    if (button) controlUpload(client, button.closest("li").dataset.fileId, button.dataset.action);
  });
  $("files").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-download]");
    if (button) downloadFiles(client, button.dataset.download.split(" "), button);
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
  let linked = false;
  for (const m of messages) {
    if (m.file?.link && safeLink(m.file.link)) {
      view.links.set(m.file.fileId, m.file.link);
      linked = true;
    }
    view.messages.set(m.seq, { kind: "message", ...m });
    view.names.set(m.senderId, m.senderName);
    if (view.oldest === null || m.seq < view.oldest) view.oldest = m.seq;
  }
  if (hasMore !== undefined) $("older").hidden = !hasMore;
  renderMessages();
  if (linked) renderFiles();
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
    const shared = m.file
      ? el("a", { class: "file-link", href: safeLink(m.file.link) ?? "#", target: "_blank", rel: "noopener" },
        `Open ${view.files.get(m.file.fileId)?.name ?? "the shared file"}`)
      : null;
    return el("li", { class: mine ? "mine message" : "message", "data-seq": m.seq },
      el("span", { class: "who" }, m.senderName),
      el("time", { class: "when", datetime: m.timestamp }, new Date(m.timestamp).toLocaleTimeString()),
      m.text === undefined && m.file ? null : el("div", { class: "text" }, text),
      shared,
      m.file ? thumbImage(view.files.get(m.file.fileId)) : null,
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
// Files
// ---------------------------------------------------------------------------------

function renderUploads() {
  const items = [...view.uploads.values()].sort((a, b) => a.startedAt.localeCompare(b.startedAt)).map((u) => {
    const figures = u.state === "paused"
      ? "paused"
      : [`${(u.percentage ?? 0).toFixed(1)}%`, u.uploadSpeed ? `${bytes(u.uploadSpeed)}/s` : null,
        u.estimatedTimeRemaining != null ? `${duration(u.estimatedTimeRemaining)} left` : null].filter(Boolean).join(" · ");
    return el("li", { "data-file-id": u.fileId, "data-state": u.state ?? "uploading" },
      el("div", { class: "file-row" },
        el("span", { class: "file-name" }, fileName(u)),
        el("span", { class: "file-meta" }, `${bytes(u.size)} · ${u.userName}`),
        el("progress", { max: "100", value: String(u.percentage ?? 0), "aria-label": `upload of ${fileName(u)}` }),
        el("span", { class: "file-figures" }, figures),
        u.userId === view.me?.userId ? uploadControls(u) : null));
  });
  $("uploads").replaceChildren(...items);
  $("no-uploads").hidden = items.length > 0;
}

/** Top-level files and folders, newest last; a folder lists its files under it. */
function renderFiles() {
  const all = [...view.files.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  const children = (id) => all.filter((f) => f.parentId === id)
    .sort((a, b) => (a.path ?? "").localeCompare(b.path ?? ""));
  const items = all.filter((f) => !f.parentId || !view.files.has(f.parentId)).map((f) => {
    if (!f.isFolder) return fileItem(f);
    const inside = children(f.id);
    const total = inside.reduce((n, c) => n + c.size, 0);
    return el("li", { "data-file-id": f.id, class: "folder" },
      el("div", { class: "file-row" },
        el("span", { class: "kind" }, "folder"),
        el("span", { class: "file-name" }, fileName(f)),
        el("span", { class: "file-meta" }, `${inside.length} files · ${bytes(total)} · ${f.uploadedByName}`),
        inside.length && inside.every((c) => view.links.has(c.id))
          ? el("button", { type: "button", class: "download", "data-download": inside.map((c) => c.id).join(" ") }, "Download all")
          : null),
      el("ul", {}, ...inside.map((c) => fileItem(c, c.path))));
  });
  $("files").replaceChildren(...items);
  $("no-files").hidden = items.length > 0;
}

/** Pause or resume, and cancel: for your uploads, on this device or another one. */
function uploadControls(u) {
  return el("span", { class: "upload-controls" },
    u.state === "paused"
      ? el("button", { type: "button", "data-action": "resume" }, "Resume")
      : el("button", { type: "button", "data-action": "pause" }, "Pause"),
    el("button", { type: "button", "data-action": "cancel" }, "Cancel"));
}

function fileItem(f, label) {
  const link = view.links.get(f.id);
  const p = f.processing;
  return el("li", { "data-file-id": f.id },
    el("div", { class: "file-row" },
      thumbImage(f),
      el("span", { class: "file-name" }, label ?? fileName(f)),
      el("span", { class: "file-meta" }, `${bytes(f.size)} · ${f.uploadedByName}`),
      p ? el("span", { class: "processing", "data-status": p.status },
        `${p.processor}: ${p.status}${p.status === "processing" && p.progress != null ? ` ${Math.round(p.progress)}%` : ""}${p.error ? ` (${p.error})` : ""}`) : null,
      link
        ? el("button", { type: "button", class: "download", "data-download": f.id }, "Download")
        : el("span", { class: "hint" }, f.key ? "(waiting for its link)" : "(key could not be opened)")));
}

function fileName(f) {
  return f.name ?? `(name could not be opened: ${f.sealError ?? "no key"})`;
}

/** Only share links of this origin open from a message (a sealed link is still input). */
function safeLink(link) {
  try {
    const url = new URL(link);
    return url.origin === location.origin && url.pathname.startsWith("/s/") ? url.href : null;
  } catch {
    return null;
  }
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function duration(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// ---------------------------------------------------------------------------------
// Sending and fetching files
// ---------------------------------------------------------------------------------

let uploader = null;

/**
 * Uploads `entries` ({file, path}) into the room one after the other. Files with a
 * path came in a folder: one folder entry is made for each top-level folder, and each
 * file goes into it with its path sealed. Each finished file's share link is posted
 * (sealed) into the chat: that link is how members download it.
 */
async function sendFiles(client, entries) {
  uploader ??= new Uploader();
  const folders = new Map();
  for (const { file, path } of entries) {
    let parentId;
    if (path) {
      const top = path.split("/")[0];
      if (!folders.has(top)) folders.set(top, client.createFolder(top).then((f) => f.fileId));
      try {
        parentId = await folders.get(top);
      } catch (err) {
        alert(`Could not make the folder ${top}: ${describe(err)}`);
        return;
      }
    }
    const thumbnail = await makeThumbnail(file);
    const upload = uploader.upload(file, {
      room: client,
      ...(path ? { path, parentId } : {}),
      ...(thumbnail ? { thumbnail } : {}),
    });
    view.local.add(upload);
    try {
      const { fileId, link } = await upload;
      await client.shareFile(fileId, link, path ? undefined : `Shared ${file.name}`);
    } catch (err) {
      if (err.code !== "cancelled") alert(`${file.name} was not sent: ${describe(err)}`);
    } finally {
      view.local.delete(upload);
    }
  }
}

/**
 * A preview of an image, or of a video's first frame where this browser decodes it: at
 * most 256 px a side, WebP, at most 64 KiB (the client seals it with a key derived from
 * the file key). `undefined` for anything else.
 */
async function makeThumbnail(file) {
  let source;
  try {
    if (file.type.startsWith("image/")) source = await createImageBitmap(file);
    else if (file.type.startsWith("video/")) source = await firstFrame(file);
    else return undefined;
    const scale = Math.min(1, 256 / Math.max(source.width, source.height));
    const canvas = new OffscreenCanvas(Math.max(1, Math.round(source.width * scale)), Math.max(1, Math.round(source.height * scale)));
    canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
    for (const quality of [0.8, 0.6, 0.4]) {
      const blob = await canvas.convertToBlob({ type: "image/webp", quality });
      if (blob.size <= 65536) return blob;
    }
  } catch {
    // Not decodable here: no preview.
  } finally {
    source?.close?.();
  }
  return undefined;
}

async function firstFrame(file) {
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.src = URL.createObjectURL(file);
  try {
    await new Promise((resolve, reject) => {
      video.onloadeddata = resolve;
      video.onerror = reject;
      setTimeout(() => reject(new Error("no frame")), 10_000);
    });
    return await createImageBitmap(video);
  } finally {
    URL.revokeObjectURL(video.src);
  }
}

/** The preview of a room file, fetched and opened once; re-renders when it arrives. */
function thumbImage(f) {
  if (!f || !f.key || !/^(image|video)\//.test(f.type ?? "")) return null;
  const known = view.thumbs.get(f.id);
  if (known === undefined && view.client) {
    view.thumbs.set(f.id, "loading");
    view.client.thumbnail(f.id, f.key)
      .then((blob) => view.thumbs.set(f.id, blob ? URL.createObjectURL(blob) : null))
      .catch(() => view.thumbs.set(f.id, null))
      .finally(() => { renderFiles(); renderMessages(); });
  }
  return typeof known === "string" && known !== "loading"
    ? el("img", { class: "thumb", src: known, alt: `preview of ${fileName(f)}` })
    : null;
}

/** The files of a drop, with their paths when a folder was dropped. */
async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...transfer.files].map((file) => ({ file, path: null }));
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: prefix ? `${prefix}${file.name}` : null });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out;
}

/** Pauses, resumes or cancels one of your uploads: here if it runs on this device,
 * else through the room (the device that uploads obeys). */
async function controlUpload(client, fileId, action) {
  const here = [...view.local].find((u) => u.fileId === fileId);
  if (here) {
    if (action === "cancel") await here.cancel().catch(() => {});
    else here[action]();
    return;
  }
  try {
    await client.request("control-upload", { fileId, action });
  } catch (err) {
    alert(`Could not ${action} the upload: ${describe(err)}`);
  }
}

/** Downloads files one by one through their share links, saves each, and tells the
 * room (its audit log records the download). */
async function downloadFiles(client, ids, button) {
  button.disabled = true;
  try {
    for (const id of ids) {
      const f = view.files.get(id);
      const got = await download(view.links.get(id), {
        onProgress: (p) => { button.textContent = `${Math.floor((100 * p.bytesDone) / Math.max(1, p.bytesTotal))}%`; },
      });
      const a = el("a", { href: URL.createObjectURL(got.blob), download: f?.path ?? got.name ?? id });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      client.request("file-downloaded", { fileId: id }).catch(() => { /* the audit is best effort */ });
    }
    button.textContent = "Downloaded";
  } catch (err) {
    button.textContent = "Download";
    alert(`Download failed: ${describe(err)}`);
  } finally {
    button.disabled = false;
  }
}

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
