// sealdrop demo app: pick or drop files to get encrypted-upload links, pause, resume or
// cancel each upload, pick up uploads a reload or a crash interrupted, and open a link
// to download, verify and save the file. Plain JS over @sealdrop/client (the wasm build
// in /pkg); no framework, no build step.
//
// In reading order: start-up and routing, sending (choosing files, a queue of uploads,
// one at a time, each card with its progress, controls and link), unfinished uploads
// (resume / discard), sharing (a file's share links: password, expiry, limit, revoke,
// access records), leaving the page, receiving (the /s/<token>#k1... or #p1... page,
// asking for the password of a p1 link), then
// small helpers (formatting, errors, saving, DOM).

import init, {
  Uploader, createShare, download, linkNeedsPassword, listShares, previewable, revokeShare,
  shareStatus, version,
} from "/pkg/sealdrop_client.js";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------
// Start-up and routing
// ---------------------------------------------------------------------------------

async function main() {
  const versionEl = $("version");
  try {
    await init();
    versionEl.textContent = version();
    versionEl.dataset.state = "ready";
  } catch (err) {
    versionEl.textContent = "failed to load";
    versionEl.dataset.state = "error";
    showFatal("The sealdrop client could not load in this browser.", err);
    return;
  }
  // The worker serves this page for every path that is not a file: / sends, /s/...
  // is a download link, anything else is a mistake worth saying so.
  const path = location.pathname;
  if (path === "/" || path === "/index.html") {
    send();
  } else if (/^\/s\/[^/]+\/?$/.test(path)) {
    registerWorker();
    receive();
  } else {
    document.title = "Not a sealdrop link · sealdrop";
    $("nowhere").hidden = false;
  }
}

/** Registers the service worker that streams large saves and serves previews. The page
 *  runs under Trusted Types: the one policy its CSP allows makes "/sw.js", and only
 *  that, a script URL. Without a service worker, saves gather a Blob and no preview is
 *  offered. */
function registerWorker() {
  if (!navigator.serviceWorker) return;
  const url = window.trustedTypes
    ? trustedTypes.createPolicy("sealdrop-sw", {
      createScriptURL: (u) => {
        if (u !== "/sw.js") throw new TypeError(`not the service worker: ${u}`);
        return u;
      },
    }).createScriptURL("/sw.js")
    : "/sw.js";
  workerRegistered = navigator.serviceWorker.register(url, { type: "module" }).then(() => true, () => false);
}

/** Resolves once the service worker is registered; null if this browser has none. */
let workerRegistered = null;

/** Whether the service worker controls this page, waiting for it on a first visit (it
 *  claims the page once active); false if it could not be registered. */
async function workerInControl() {
  const worker = navigator.serviceWorker;
  if (!worker || !(await workerRegistered)) return false;
  if (!worker.controller) {
    await new Promise((resolve) => worker.addEventListener("controllerchange", resolve, { once: true }));
  }
  return true;
}

function showFatal(text, err) {
  const el = $("fatal");
  el.replaceChildren(text, " ", describe(err));
  el.hidden = false;
  console.error("sealdrop:", err);
}

// ---------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------

let uploader;
/** Every upload card of this page, for the leave-page warning. */
const cards = [];
/** Cards waiting their turn; one uploads at a time so each gets the full connection. */
const queue = [];
let pumping = false;

/** Where the browser can open files with the File System Access API, the upload keeps
 *  the file's handle, and a resume after a crash needs no re-picking. */
const canKeepHandles = typeof window.showOpenFilePicker === "function";

function send() {
  $("send").hidden = false;
  try {
    uploader = new Uploader();
  } catch (err) {
    showFatal("The uploader could not start.", err);
    return;
  }
  const input = $("file-input");
  input.addEventListener("change", () => {
    addFiles([...input.files].map((file) => ({ file })));
    input.value = ""; // choosing the same file again fires change again
  });
  if (canKeepHandles) {
    $("choose").addEventListener("click", async (e) => {
      e.preventDefault();
      let handles;
      try {
        handles = await window.showOpenFilePicker({ multiple: true });
      } catch {
        return; // the person closed the picker
      }
      addFiles(await Promise.all(handles.map(async (handle) => ({ file: await handle.getFile(), handle }))));
    });
  }

  // Dropping files anywhere on the page.
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer?.types.includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    depth += 1;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  document.addEventListener("drop", async (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    addFiles(await droppedFiles(e.dataTransfer));
  });

  window.addEventListener("beforeunload", warnBeforeLeaving);
  listUnfinished();
}

/** The dropped files, with their handles where the browser gives them. */
async function droppedFiles(transfer) {
  const items = [...transfer.items].filter((item) => item.kind === "file");
  // Read every handle before awaiting any: the items are only valid during the event.
  const handles = items.map((item) => item.getAsFileSystemHandle?.() ?? null);
  const files = items.map((item) => item.getAsFile());
  const out = [];
  for (const [i, file] of files.entries()) {
    const handle = await handles[i]?.catch(() => null);
    out.push(handle?.kind === "file" ? { file, handle } : { file });
  }
  return out;
}

function addFiles(picked) {
  for (const { file, handle } of picked) {
    const card = uploadCard(file.name, file.size);
    card.start = () => uploader.upload(file, { handle, ...card.callbacks });
    $("uploads").append(card.root);
    cards.push(card);
    queue.push(card);
  }
  pump();
}

/** Starts the queued uploads one at a time: the next starts once the current one is
 *  done, failed, cancelled or paused (a paused one resumes beside it). */
async function pump() {
  if (pumping) return;
  pumping = true;
  while (queue.length > 0) {
    const card = queue.shift();
    if (card.cancelledEarly) continue;
    card.begin(card.start());
    await card.settledOrPaused();
  }
  pumping = false;
}

/**
 * The list item of one upload: progress, Pause/Resume and Cancel while it runs, the
 * link when it is done, plain words when it stops.
 */
function uploadCard(fileName, fileSize) {
  const root = el("li", { className: "transfer" });
  const id = `upload-${crypto.randomUUID()}`;
  const name = el("h3", { className: "name", id: `${id}-name`, textContent: fileName || "(unnamed)" });
  const meta = el("p", { className: "meta", textContent: formatBytes(fileSize) });
  const bar = el("progress", { max: 1, value: 0 });
  bar.setAttribute("aria-labelledby", name.id);
  const detail = el("p", { className: "detail" });
  const status = el("p", { className: "status", textContent: "Waiting…" });
  status.setAttribute("aria-live", "polite");
  const pause = el("button", { type: "button", textContent: "Pause", className: "pause" });
  const cancel = el("button", { type: "button", textContent: "Cancel", className: "cancel" });
  for (const b of [pause, cancel]) b.setAttribute("aria-describedby", name.id);
  const actions = el("div", { className: "actions" }, pause, cancel);
  root.append(name, meta, bar, detail, status, actions);
  const announce = milestones(status, "Uploading");
  let upload = null;
  let wake = () => {};

  const card = {
    root,
    cancelledEarly: false,
    callbacks: {
      onProgress: (p) => {
        showProgress(bar, detail, p);
        if (upload?.state === "uploading") announce(p);
      },
      onStateChange: (state, error) => show(state, error),
    },
    /** The card follows `up` from now on. */
    begin(up) {
      upload = up;
      status.textContent = "Encrypting and uploading…";
      show(up.state, up.error);
      up.then((r) => done(r), () => {});
    },
    /** Resolves when the upload ends or pauses. */
    settledOrPaused() {
      return new Promise((resolve) => {
        wake = resolve;
        if (["paused", "done", "failed", "cancelled"].includes(upload?.state)) resolve();
      });
    },
    /** An upload that runs and could not be picked up again after the page closed. */
    wouldBeLost() {
      return upload && !upload.resumable && ["starting", "uploading", "paused", "completing"].includes(upload.state);
    },
  };

  pause.addEventListener("click", () => {
    if (upload?.state === "paused") upload.resume();
    else upload?.pause();
  });
  cancel.addEventListener("click", async () => {
    if (!upload) {
      // Still waiting its turn: nothing was sent.
      card.cancelledEarly = true;
      show("cancelled", null);
      return;
    }
    cancel.disabled = true;
    try {
      await upload.cancel();
      status.textContent = "Cancelled. Nothing of it is kept.";
    } catch (err) {
      status.replaceChildren(describe(err, "Cancelled, but the server could not delete what was sent yet: "));
    }
  });

  function show(state, error) {
    root.dataset.state = state;
    root.classList.toggle("paused", state === "paused");
    pause.textContent = state === "paused" ? "Resume" : "Pause";
    pause.disabled = !["starting", "uploading", "paused"].includes(state);
    switch (state) {
      case "starting":
      case "uploading":
        status.classList.remove("warning");
        status.textContent = "Encrypting and uploading…";
        break;
      case "paused":
        status.classList.toggle("warning", Boolean(error));
        status.replaceChildren(error
          ? describe(error, "Paused: ", " Resume to try again.")
          : "Paused. Resume to send the rest.");
        wake();
        break;
      case "completing":
        status.textContent = "Finishing…";
        pause.disabled = true;
        break;
      case "failed":
        root.classList.add("failed");
        detail.textContent = "";
        status.replaceChildren(describe(error, "The upload failed: "));
        // What was sent stays on the server until it expires; Discard deletes it now.
        cancel.textContent = "Discard";
        cancel.disabled = false;
        pause.remove();
        wake();
        break;
      case "cancelled":
        root.classList.remove("failed");
        root.classList.add("cancelled");
        detail.textContent = "";
        status.textContent = "Cancelled.";
        actions.remove();
        wake();
        break;
      default:
        break;
    }
  }

  function done(result) {
    const { link } = result;
    root.classList.add("done");
    detail.textContent = "";
    status.textContent = "Uploaded. Anyone with this link can download and decrypt the file:";
    const input = el("input", { type: "text", readOnly: true, id: `${id}-link` });
    input.setAttribute("value", link);
    input.addEventListener("focus", () => input.select());
    const label = el("label", { className: "visually-hidden", htmlFor: input.id, textContent: `Link for ${fileName}` });
    const copy = el("button", { type: "button", className: "primary", textContent: "Copy link" });
    copy.addEventListener("click", () => copyLink(link, input, copy, status));
    // The share dialog is built when opened, so the card holds one input until then.
    const share = el("button", { type: "button", className: "share-open", textContent: "Share options…" });
    share.setAttribute("aria-expanded", "false");
    share.addEventListener("click", () => {
      share.setAttribute("aria-expanded", "true");
      share.replaceWith(sharePanel(result, fileName));
    });
    actions.replaceWith(el("div", { className: "link-row" }, label, input, copy), share);
    wake();
  }

  return card;
}

async function copyLink(link, input, button, status) {
  try {
    await navigator.clipboard.writeText(link);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  button.textContent = "Copied";
  status.textContent = "Link copied to the clipboard.";
  setTimeout(() => { button.textContent = "Copy link"; }, 2000);
}

// ---------------------------------------------------------------------------------
// Unfinished uploads
// ---------------------------------------------------------------------------------

/** Lists the uploads this browser kept that a reload or a crash interrupted. */
async function listUnfinished() {
  let pending;
  try {
    pending = await Uploader.pending();
  } catch (err) {
    console.warn("sealdrop: unfinished uploads cannot be listed here", err);
    return;
  }
  const list = $("pending");
  list.replaceChildren(...pending.map(pendingItem));
  $("unfinished").hidden = pending.length === 0;
}

/** One unfinished upload: Resume (through its saved handle, with one permission
 *  prompt, or by picking the file again) and Discard. */
function pendingItem(pending) {
  const root = el("li", { className: "transfer pending" });
  const name = el("h3", { className: "name", textContent: pending.name || "(unnamed)" });
  const when = new Date(pending.createdAt).toLocaleString();
  const meta = el("p", { className: "meta", textContent: `${formatBytes(pending.size)} · started ${when}` });
  const status = el("p", { className: "status" });
  status.setAttribute("aria-live", "polite");
  const resume = el("button", { type: "button", className: "primary", textContent: pending.handle ? "Resume" : "Choose the file and resume" });
  const discard = el("button", { type: "button", textContent: "Discard" });
  for (const b of [resume, discard]) b.setAttribute("aria-label", `${b.textContent}: ${pending.name}`);
  root.append(name, meta, status, el("div", { className: "actions" }, resume, discard));

  resume.addEventListener("click", async () => {
    let file;
    if (pending.handle) {
      // One prompt, on this click: reading the file again needs the person's consent.
      const granted = await readPermission(pending.handle);
      if (!granted) {
        status.textContent = "The browser did not allow reading the file. Try again, or choose it yourself.";
        return;
      }
    } else {
      file = await pickAgain();
      if (!file) return;
    }
    const card = uploadCard(pending.name, pending.size);
    $("uploads").prepend(card.root);
    cards.push(card);
    card.begin(uploader.resume(pending, { file, ...card.callbacks }));
    root.remove();
    $("unfinished").hidden = $("pending").children.length === 0;
  });

  discard.addEventListener("click", async () => {
    discard.disabled = true;
    resume.disabled = true;
    status.textContent = "Deleting…";
    try {
      await uploader.discard(pending);
      root.remove();
      $("unfinished").hidden = $("pending").children.length === 0;
    } catch (err) {
      status.replaceChildren(describe(err, "It could not be deleted: "));
      discard.disabled = false;
      resume.disabled = false;
    }
  });
  return root;
}

async function readPermission(handle) {
  if (typeof handle.queryPermission !== "function") return true; // e.g. an OPFS handle
  if ((await handle.queryPermission({ mode: "read" })) === "granted") return true;
  return (await handle.requestPermission({ mode: "read" })) === "granted";
}

/** Opens the file picker once and resolves to the chosen file (or null). */
function pickAgain() {
  const input = $("repick-input");
  return new Promise((resolve) => {
    input.value = "";
    input.addEventListener("change", () => resolve(input.files[0] ?? null), { once: true });
    input.addEventListener("cancel", () => resolve(null), { once: true });
    input.click();
  });
}

// ---------------------------------------------------------------------------------
// Sharing
// ---------------------------------------------------------------------------------

const EXPIRIES = [
  ["", "with the file"],
  ["3600", "1 hour"],
  ["86400", "1 day"],
  ["604800", "7 days"],
];

/**
 * A file's share links: make one (optional password, expiry, download limit), copy it,
 * revoke it, and see who came (time, outcome, browser family, country; never an
 * address). Links are built in this page and never stored anywhere but here: a share
 * made elsewhere is listed without its link.
 */
function sharePanel(result, fileName) {
  const id = `share-${crypto.randomUUID()}`;
  const links = new Map();
  const root = el("section", { className: "share-panel" });
  root.setAttribute("aria-label", `Share links for ${fileName}`);

  const password = el("input", { type: "password", id: `${id}-password`, autocomplete: "new-password", className: "share-password" });
  const expiry = el("select", { id: `${id}-expiry`, className: "share-expiry" },
    ...EXPIRIES.map(([value, text]) => el("option", { value, textContent: text })));
  const limit = el("input", { type: "number", id: `${id}-limit`, min: 1, step: 1, placeholder: "unlimited", className: "share-limit" });
  const create = el("button", { type: "submit", className: "primary share-create", textContent: "Create link" });
  const form = el("form", { className: "share-form" },
    el("label", { htmlFor: password.id, textContent: "Password (optional)" }), password,
    el("label", { htmlFor: expiry.id, textContent: "Expires" }), expiry,
    el("label", { htmlFor: limit.id, textContent: "Downloads allowed" }), limit,
    create);
  const status = el("p", { className: "status share-status" });
  status.setAttribute("aria-live", "polite");
  const list = el("ul", { className: "shares" });
  list.setAttribute("aria-label", `Shares of ${fileName}`);
  const refresh = el("button", { type: "button", className: "share-refresh", textContent: "Refresh" });
  root.append(el("h4", { textContent: "Share links" }), form, status, list, refresh);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    create.disabled = true;
    status.classList.remove("warning");
    status.textContent = password.value ? "Protecting the key with the password…" : "Creating the link…";
    const options = {};
    if (password.value) options.password = password.value;
    if (expiry.value) options.expiresIn = Number(expiry.value);
    if (limit.value) options.downloadLimit = Number(limit.value);
    try {
      const share = await createShare(result, result.ownerToken, options);
      links.set(share.token, share.link);
      password.value = "";
      status.textContent = share.password
        ? "Link created. Send the password separately: the link alone does not open the file."
        : "Link created.";
      await reload();
    } catch (err) {
      status.classList.add("warning");
      status.replaceChildren(describe(err, "The link could not be created: "));
    } finally {
      create.disabled = false;
    }
  });
  refresh.addEventListener("click", () => reload());

  async function reload() {
    try {
      const shares = await listShares(result, result.ownerToken);
      list.replaceChildren(...shares.map((s) => shareItem(s)));
    } catch (err) {
      status.classList.add("warning");
      status.replaceChildren(describe(err, "The shares could not be listed: "));
    }
  }

  function shareItem(share) {
    const item = el("li", { className: `share ${share.state}` });
    item.dataset.token = share.token;
    item.dataset.state = share.state;
    const facts = [
      SHARE_STATES[share.state] ?? share.state,
      share.password ? "password" : "no password",
      share.downloadLimit === null
        ? `${share.downloads} downloads`
        : `${share.downloads} of ${share.downloadLimit} downloads`,
      share.expiresAt === null ? "never expires" : `expires ${new Date(share.expiresAt).toLocaleString()}`,
    ];
    if (share.failedAttempts > 0) facts.push(`${share.failedAttempts} wrong passwords`);
    item.append(el("p", { className: "meta share-facts", textContent: facts.join(" · ") }));
    const link = links.get(share.token);
    const row = el("div", { className: "link-row" });
    if (link) {
      const input = el("input", { type: "text", readOnly: true, className: "share-link", id: `${id}-${share.token}` });
      input.setAttribute("value", link);
      input.setAttribute("aria-label", "Share link");
      const copy = el("button", { type: "button", textContent: "Copy link" });
      copy.addEventListener("click", () => copyLink(link, input, copy, status));
      row.append(input, copy);
    } else {
      row.append(el("span", { className: "hint", textContent: "Link made elsewhere (only its maker has it)." }));
    }
    if (share.state !== "revoked") {
      const revoke = el("button", { type: "button", className: "share-revoke", textContent: "Revoke" });
      revoke.addEventListener("click", async () => {
        revoke.disabled = true;
        try {
          await revokeShare(result, result.ownerToken, share.token);
          status.textContent = "Revoked: the link no longer opens the file.";
          await reload();
        } catch (err) {
          revoke.disabled = false;
          status.replaceChildren(describe(err, "It could not be revoked: "));
        }
      });
      row.append(revoke);
    }
    item.append(row);
    if (share.access.length > 0) {
      const access = el("ol", { className: "access" });
      access.setAttribute("aria-label", "Access records, newest first");
      for (const a of share.access.slice(0, 20)) {
        const who = [a.agent, a.country].filter(Boolean).join(", ");
        access.append(el("li", {
          className: "access-record",
          textContent: `${new Date(a.at).toLocaleString()}: ${OUTCOMES[a.outcome] ?? a.outcome}${who ? ` (${who})` : ""}`,
        }));
      }
      item.append(access);
    }
    return item;
  }

  reload();
  return root;
}

const SHARE_STATES = {
  active: "active",
  expired: "expired",
  exhausted: "downloads used up",
  revoked: "revoked",
};

/** An access record's outcome in words. */
const OUTCOMES = {
  viewed: "link opened",
  opened: "download started",
  completed: "download completed",
  abandoned: "download abandoned",
  lapsed: "download counted (not finished in time)",
  wrong_password: "wrong password",
  password_required: "no password given",
  too_many_attempts: "refused: too many wrong passwords",
  share_busy: "refused: every download in use",
  share_exhausted: "refused: downloads used up",
  share_expired: "refused: expired",
  share_revoked: "refused: revoked",
};

// ---------------------------------------------------------------------------------
// Leaving the page
// ---------------------------------------------------------------------------------

/** Asks before leaving only when an upload would be lost: one this browser could not
 *  keep (no IndexedDB), which no reload can pick up again. Kept uploads resume. */
function warnBeforeLeaving(event) {
  if (cards.some((card) => card.wouldBeLost())) {
    event.preventDefault();
    event.returnValue = "";
  }
}

// ---------------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------------

/** What is wrong with this page's address as a download link, in words; null if its
 *  shape is right (the client then checks the key against the file). */
function linkProblem() {
  const token = location.pathname.slice("/s/".length).replace(/\/$/, "");
  if (!/^[A-Za-z0-9_-]+$/.test(token)) {
    return "This address is not a sealdrop link. A download link looks like /s/<share token>#k1.<key>.";
  }
  if (token.length !== 32) {
    return "The share token in this link is wrong: it must be 32 letters, digits, “-” or “_”. Check that the whole link was copied.";
  }
  if (location.hash.startsWith("#p1.")) {
    if (location.hash.length !== "#p1.".length + 22 + 1 + 64) {
      return "The protected key in this link is damaged: it is not 87 characters long. Check that the whole link was copied.";
    }
    return null;
  }
  if (!location.hash.startsWith("#k1.")) {
    return "This link has no key: it must end with “#k1.” and the key. Check that the whole link was copied.";
  }
  if (location.hash.length !== "#k1.".length + 43) {
    return "The key in this link is damaged: it is not 43 characters long. Check that the whole link was copied.";
  }
  return null;
}

async function receive() {
  $("receive").hidden = false;
  const card = $("incoming");
  const name = $("incoming-name");
  const size = $("incoming-size");
  const bar = $("incoming-progress");
  const detail = $("incoming-detail");
  const status = $("incoming-status");
  const cancel = $("incoming-cancel");
  const saveAgain = $("incoming-save");
  const previewButton = $("incoming-preview");
  const controller = new AbortController();
  cancel.addEventListener("click", () => controller.abort());
  const announce = milestones(status, "Downloading");

  const fail = (content) => {
    card.classList.add("failed");
    card.setAttribute("aria-busy", "false");
    if (name.textContent === "Opening the link…") name.textContent = "This file cannot be opened";
    detail.textContent = "";
    status.replaceChildren(content);
    cancel.remove();
  };
  const problem = linkProblem();
  if (problem) {
    fail(problem);
    return;
  }
  let needsPassword;
  try {
    needsPassword = linkNeedsPassword(location.href);
  } catch (err) {
    fail(describe(err));
    return;
  }
  if (!needsPassword) {
    fetchFile({});
    return;
  }
  // A p1 link: the key opens only with the password, and the server checks it first.
  // Ask the share first, so an expired, used-up or revoked link says so at once.
  try {
    const share = await shareStatus(location.href);
    if (share.downloadsLeft !== null) {
      size.textContent = `${share.downloadsLeft} download${share.downloadsLeft === 1 ? "" : "s"} left`;
    }
  } catch (err) {
    fail(describe(err));
    return;
  }
  const form = $("unlock");
  const input = $("unlock-password");
  const submit = $("unlock-submit");
  const said = $("unlock-status");
  name.textContent = "A protected file";
  status.textContent = "";
  form.hidden = false;
  input.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    said.textContent = "";
    status.textContent = "Checking the password…";
    await fetchFile({ password: input.value });
    submit.disabled = false;
  });

  /** One attempt; a password refusal keeps the form for another try. */
  async function fetchFile(options) {
    status.textContent = "Decrypting the file's name…";
    // A fresh sink per attempt: a refused password never began writing to one.
    const sink = receiveSink();
    try {
      const file = await download(location.href, {
        ...options,
        signal: controller.signal,
        writable: sink.writable,
        onMetadata: (info) => {
          $("unlock").hidden = true;
          name.textContent = info.name || "(unnamed)";
          size.textContent = `${formatBytes(info.size)}${info.type ? ` · ${info.type}` : ""}`;
          document.title = `${info.name} · sealdrop`;
          status.textContent = "Downloading and verifying…";
          sink.begin(info);
          // The preview worker opens links by their key: not a password link's.
          if (!needsPassword) offerPreview(previewButton, info);
        },
        onProgress: (p) => {
          showProgress(bar, detail, p);
          announce(p);
        },
      });
      card.classList.add("done");
      card.setAttribute("aria-busy", "false");
      detail.textContent = "";
      cancel.remove();
      const blob = await sink.blob();
      status.textContent = "Verified and saved. Every part of the file passed its integrity check.";
      if (blob) {
        save(blob, file.name);
        saveAgain.hidden = false;
        saveAgain.addEventListener("click", () => save(blob, file.name));
      }
    } catch (err) {
      if (PASSWORD_CODES.has(err?.code) && !$("unlock").hidden) {
        status.textContent = "";
        $("unlock-status").replaceChildren(describe(err));
        $("unlock-password").select();
        return;
      }
      $("unlock").hidden = true;
      fail(err?.code === "cancelled" ? "Cancelled. Nothing was saved." : describe(err));
    }
  }
}

/** Refusals of a password, after which the person may try again. */
const PASSWORD_CODES = new Set(["wrong_password", "too_many_attempts", "password_required", "invalid_password"]);
/** Files larger than this are streamed to disk through the service worker (when it
 *  controls the page) rather than gathered into a Blob. */
const STREAM_OVER = 64 * 1024 * 1024;

/**
 * Where the receive page's download writes: a stream whose readable side, once the size
 * is known, goes to the service worker for a large file (it answers /save/<id> with it,
 * as an attachment: the browser writes to disk as the verified records arrive, and a
 * failed download fails the browser's download) or is gathered into a Blob here for a
 * small one. The download waits on the stream's backpressure meanwhile.
 */
function receiveSink() {
  const { readable, writable } = new TransformStream();
  let gathered = Promise.resolve(null);
  return {
    writable,
    async begin(info) {
      if (info.size > STREAM_OVER && (await workerInControl())) {
        const id = randomId();
        const answer = await tellWorker({ type: "save", id, name: info.name, size: info.size, readable }, [readable]);
        if (answer.ok) {
          const a = el("a", { href: `/save/${id}`, download: info.name || "download" });
          a.hidden = true;
          document.body.append(a);
          a.click();
          a.remove();
          return;
        }
      }
      gathered = new Response(readable).blob();
      // A failed download aborts the stream; the download's own error is what is shown.
      gathered.catch(() => {});
    },
    /** The plaintext gathered here; null when the service worker saved it. */
    blob: () => gathered,
  };
}

/** Shows "Preview" for a type the browser renders safely, when the service worker
 *  controls the page: it opens /preview/<id> in a new tab, decrypted on demand. */
async function offerPreview(button, info) {
  if (!previewable(info.type) || !(await workerInControl())) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const id = randomId();
    const answer = await tellWorker({ type: "preview", id, link: location.href });
    if (answer.ok) window.open(`/preview/${id}`, "_blank", "noopener");
  });
}

/** Posts `message` to the service worker; resolves to its answer ({ ok, ... }). */
function tellWorker(message, transfer = []) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data);
    navigator.serviceWorker.controller.postMessage(message, [channel.port2, ...transfer]);
  });
}

function randomId() {
  return [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Saves a Blob under `name` through a temporary object URL. The type is the
 * uploader's choice (text/html, image/svg+xml...), and a blob: URL is same-origin, so
 * the bytes are re-typed as application/octet-stream: the browser only ever saves
 * them, never renders them as this page's content.
 */
function save(blob, name) {
  const url = URL.createObjectURL(new Blob([blob], { type: "application/octet-stream" }));
  const a = el("a", { href: url, download: name || "download" });
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started by now; give the browser time to read the URL.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

function showProgress(bar, detail, p) {
  bar.value = p.bytesTotal === 0 ? 1 : p.bytesDone / p.bytesTotal;
  const parts = [`${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}`];
  if (p.speed > 0) parts.push(`${formatBytes(p.speed)}/s`);
  if (p.eta !== null && p.bytesDone < p.bytesTotal) parts.push(`${formatDuration(p.eta)} left`);
  detail.textContent = parts.join(" · ");
}

/** Announces progress to screen readers every 10 %, not on every event. */
function milestones(status, verb) {
  let last = -1;
  return (p) => {
    const percent = p.bytesTotal === 0 ? 100 : Math.floor((p.bytesDone / p.bytesTotal) * 10) * 10;
    if (percent !== last && percent < 100) {
      last = percent;
      status.textContent = `${verb}: ${percent} %`;
    }
  };
}

/** Plain words for the codes a person may meet. */
const HINTS = {
  network: "The connection failed. Check the network.",
  stalled: "The connection stopped moving.",
  part_failed: "The upload kept failing.",
  read_failed: "The file could not be read. Was it moved or deleted?",
  file_changed: "This is not the same file as when the upload began, or it changed since. Nothing was sent.",
  persist_failed: "This browser could not keep the upload's progress.",
  upload_not_open: "The upload no longer exists on the server (it expired or was deleted).",
  upload_not_found: "The upload no longer exists on the server (it expired or was deleted).",
  invalid_link: "This link is incomplete or damaged. Check that the whole link was copied.",
  file_not_found: "There is no such file. It may have expired, or its upload never finished.",
  key_commitment_failed: "The key in this link does not open this file: the link is wrong or damaged.",
  metadata_auth_failed: "The key in this link does not open this file: the link is wrong or damaged.",
  record_auth_failed: "The stored file is damaged: part of it failed its integrity check. Nothing was saved.",
  write_failed: "The file could not be written (is the disk full?).",
  truncated: "The stored file is incomplete. Nothing was saved.",
  trailing_data: "The stored file has unexpected data at its end. Nothing was saved.",
  metadata_too_large: "The file name is too long.",
  file_too_large: "The file is too large for this server.",
  password_required: "This link needs its password.",
  invalid_password: "Enter the password.",
  wrong_password: "That password is not right. Check it and try again.",
  too_many_attempts: "Too many wrong passwords were tried on this link.",
  share_not_found: "There is no such link. Check that the whole link was copied.",
  share_expired: "This link has expired. Ask the sender for a new one.",
  share_revoked: "The sender revoked this link. Ask them for a new one.",
  share_exhausted: "This link has been used as many times as the sender allowed. Ask them for a new one.",
  share_busy: "Every download this link allows is in progress right now.",
  gone: "The file was deleted or has expired. Nothing of it is left on the server.",
};

/** `before` + plain words for `err` + `after`, with the error's code for reference. */
function describe(err, before = "", after = "") {
  const code = err?.code ?? "error";
  let text = HINTS[code] ?? err?.message ?? String(err);
  if (typeof err?.record === "number") text += ` (record ${err.record})`;
  if (typeof err?.retryAfter === "number") text += ` Try again in ${formatDuration(err.retryAfter)}.`;
  const frag = document.createDocumentFragment();
  frag.append(`${before}${text}${after} `, el("code", { textContent: code }));
  return frag;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

function formatBytes(n) {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

function formatDuration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

main();
