// sealdrop demo app: pick or drop files to get encrypted-upload links, pause, resume or
// cancel each upload, pick up uploads a reload or a crash interrupted, and open a link
// to download, verify and save the file (pause, resume, and resume after a reload). Plain JS over @sealdrop/client (the wasm build
// in /pkg); no framework, no build step.
//
// In reading order: start-up and routing, sending (choosing files, a queue of uploads,
// one at a time, each card with its progress, controls and link), unfinished uploads
// (resume / discard), sharing (a file's share links: password, expiry, limit, revoke,
// access records), leaving the page, receiving (the /s/<token>#k1... or #p1... page:
// the password of a p1 link, the file's name and size, Save to disk through the file
// picker, the service worker or a Blob, and a download card with progress, speed, ETA,
// Pause / Resume / Cancel), unfinished downloads (kept by the client for a file on
// disk: listed on both pages, resumed from the last verified record), then
// small helpers (formatting, errors, saving, DOM).

import init, {
  Uploader, createShare, download, forgetDownload, linkNeedsPassword, listShares, openFile,
  pendingDownloads, previewable, revokeShare, shareStatus, version,
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
    listKept();
  } else if (/^\/s\/[^/]+\/?$/.test(path)) {
    registerWorker();
    window.addEventListener("beforeunload", warnBeforeLeaving);
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
 *  claims the page once active); false if it could not be registered, if it is active
 *  but not this page's (a hard reload bypasses it, and it claims pages only when it
 *  activates), or if it fails to install. */
async function workerInControl() {
  const worker = navigator.serviceWorker;
  if (!worker || !(await workerRegistered)) return false;
  if (worker.controller) return true;
  const registration = await worker.getRegistration();
  if (worker.controller) return true; // claimed while we asked
  const coming = registration?.installing ?? registration?.waiting;
  if (!coming) return false;
  return new Promise((resolve) => {
    worker.addEventListener("controllerchange", () => resolve(true), { once: true });
    coming.addEventListener("statechange", () => {
      if (coming.state === "redundant") resolve(false);
    });
  });
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

/** Asks before leaving only when a transfer would be lost: an upload this browser could
 *  not keep (no IndexedDB), or a download that is not to a file it keeps (a stream, a
 *  Blob, a password link's), which no reload can pick up again. Kept ones resume. */
function warnBeforeLeaving(event) {
  if ([...cards, ...downloads].some((transfer) => transfer.wouldBeLost())) {
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
  const view = transferView(card, {
    bar: $("incoming-progress"), detail: $("incoming-detail"), status: $("incoming-status"),
    start: $("incoming-start"), pause: $("incoming-pause"), cancel: $("incoming-cancel"),
    hint: $("incoming-method"), preview: $("incoming-preview"),
  });
  const method = $("incoming-method");
  const previewButton = $("incoming-preview");

  const fail = (content) => {
    if (name.textContent === "Opening the link…") name.textContent = "This file cannot be opened";
    view.fail(content);
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
    try {
      await offer(await fileInfo({}), {});
    } catch (err) {
      fail(describe(err));
    }
    listKept(location.href);
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
  listKept(location.href);
  const form = $("unlock");
  const input = $("unlock-password");
  const submit = $("unlock-submit");
  const said = $("unlock-status");
  name.textContent = "A protected file";
  view.say("");
  form.hidden = false;
  input.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    said.textContent = "";
    view.say("Checking the password…");
    try {
      const options = { password: input.value };
      const info = await fileInfo(options);
      form.hidden = true;
      await offer(info, options);
    } catch (err) {
      view.say("");
      if (PASSWORD_CODES.has(err?.code)) {
        said.replaceChildren(describe(err));
        input.select();
      } else {
        form.hidden = true;
        fail(describe(err));
      }
    } finally {
      submit.disabled = false;
    }
  });

  /** The file is known: its name and size, and how it will be saved, with the button
   *  that saves it (Resume, where this browser kept an unfinished download of it). */
  async function offer(info, options) {
    view.say("");
    name.textContent = info.name || "(unnamed)";
    size.textContent = `${formatBytes(info.size)}${info.type ? ` · ${info.type}` : ""}`;
    document.title = `${info.name || "A file"} · sealdrop`;
    // The preview worker opens links by their key: not a password link's.
    if (!needsPassword) offerPreview(previewButton, info);
    const how = await saveMethod(info.size);
    const kept = needsPassword ? null : await keptDownloadOf(location.href);
    if (kept) {
      const held = await bytesOnDisk(kept.handle);
      await showOnDisk($("incoming-progress"), $("incoming-detail"), kept.handle, info.size);
      method.textContent = `You began saving this file in this browser${held === null ? "" : `: ${formatBytes(held)} of ${formatBytes(info.size)} are on disk, verified`}. Resume continues from the last verified record.`;
      view.ready("Resume", () => resumeKept(view, kept));
      return;
    }
    method.textContent = METHOD_WORDS[how];
    view.ready("Save to disk", async () => {
      const target = await saveTarget(how, info);
      if (!target) return; // the person closed the picker
      method.textContent = target.words ?? METHOD_WORDS[how];
      view.run({ link: location.href, password: options.password, info, ...target });
    });
  }
}

/** The file a link names (name, type, size), read through a download on the share
 *  that is abandoned at once: it does not count, and frees its slot for the download
 *  that will. Rejects as `download` does (refusals, a wrong password...). */
async function fileInfo(options) {
  const file = await openFile(location.href, options);
  const info = { name: file.name, type: file.type, size: file.size };
  await file.close();
  return info;
}

/** Refusals of a password, after which the person may try again. */
const PASSWORD_CODES = new Set(["wrong_password", "too_many_attempts", "password_required", "invalid_password"]);
/** Files larger than this are streamed to disk through the service worker (when it
 *  controls the page) rather than gathered into a Blob. */
const STREAM_OVER = 64 * 1024 * 1024;

/** How this browser saves a file of `size` bytes: "disk" (File System Access: a file
 *  the person picks, written in place, resumable after a reload), "stream" (the service
 *  worker hands the verified bytes to the browser's own download), or "memory" (a Blob,
 *  for small files, or where there is neither). */
async function saveMethod(size) {
  if (typeof window.showSaveFilePicker === "function") return "disk";
  if (size > STREAM_OVER && (await workerInControl())) return "stream";
  return "memory";
}

const METHOD_WORDS = {
  disk: "Saved straight to a file you choose, under a “.part” name until every record is verified. Pause and resume at any time, even after closing this page.",
  stream: "Streamed into your browser's downloads as it is verified. Pause holds it while this page stays open; a failed check fails the browser's download.",
  memory: "Gathered in this page, then saved once every record is verified (a small file, or a browser with no other way). Pause holds it while this page stays open.",
};

/** Where the download of `info` writes, for `how`: `{ fileHandle }`, or `{ writable,
 *  words, finish? }` (`finish()` hands the gathered Blob to the browser); null when the
 *  person closed the file picker. */
async function saveTarget(how, info) {
  const fileName = info.name || "download";
  if (how === "disk") {
    try {
      const fileHandle = await window.showSaveFilePicker({ suggestedName: `${fileName}.part` });
      return { fileHandle };
    } catch (err) {
      if (err?.name === "AbortError") return null;
      // No picker after all (a policy, an iframe): the other ways still work.
      return saveTarget(info.size > STREAM_OVER && (await workerInControl()) ? "stream" : "memory", info);
    }
  }
  const { readable, writable } = new TransformStream();
  if (how === "stream") {
    const id = randomId();
    const answer = await tellWorker({ type: "save", id, name: info.name, size: info.size, readable }, [readable]);
    if (answer.ok) {
      // A navigation, which the service worker answers as an attachment: the browser
      // turns it into a download and the page stays. (An `<a download>` would not do:
      // Chromium fetches it past the service worker.)
      location.assign(`/save/${id}`);
      return { writable, words: METHOD_WORDS.stream };
    }
    return saveTarget("memory", info);
  }
  const gathered = new Response(readable).blob();
  // A failed download aborts the stream; the download's own error is what is shown.
  gathered.catch(() => {});
  return {
    writable,
    words: METHOD_WORDS.memory,
    finish: async () => {
      const blob = await gathered;
      save(blob, info.name);
      const again = $("incoming-save");
      again.hidden = false;
      again.onclick = () => save(blob, info.name);
    },
  };
}

/**
 * The controls of one download card: Save (or Resume), Pause/Resume, Cancel, progress,
 * speed, ETA and status in words. `run(target)` downloads; a pause of a download to a
 * file stops it (what was verified is on disk, and the client's record of it lets a
 * later `download` with the same handle resume after it, even after a reload); a pause
 * of a stream holds the stream, so nothing more is fetched until Resume.
 */
function transferView(root, parts) {
  const { bar, detail, status, start, pause, cancel, hint, preview } = parts;
  let current = null;
  const announce = milestones(status, "Downloading");

  const show = (state) => {
    root.dataset.state = state;
    root.setAttribute("aria-busy", String(state === "downloading"));
    for (const s of ["ready", "downloading", "paused", "done", "failed", "cancelled"]) {
      root.classList.toggle(s, s === state);
    }
    start.hidden = state !== "ready";
    pause.hidden = !["downloading", "paused"].includes(state);
    pause.textContent = state === "paused" ? "Resume" : "Pause";
    cancel.hidden = !["downloading", "paused"].includes(state);
    bar.hidden = !["downloading", "paused"].includes(state) && !(state === "ready" && bar.value > 0);
    // How it saves matters until it has; a file that failed is not previewed.
    if (hint) hint.hidden = !["ready", "downloading", "paused"].includes(state);
    if (preview && ["failed", "cancelled"].includes(state)) preview.hidden = true;
  };
  const say = (content) => status.replaceChildren(content);

  const view = {
    root,
    say,
    /** Offers `label` (Save to disk, Resume), which calls `onStart`. */
    ready(label, onStart) {
      start.textContent = label;
      show("ready");
      start.disabled = false;
      start.onclick = async () => {
        start.disabled = true;
        try {
          await onStart();
        } finally {
          start.disabled = false;
        }
      };
    },
    fail(content) {
      show("failed");
      detail.textContent = "";
      say(content);
    },
    /** Downloads `target.link` to `target` ({ fileHandle } or { writable, finish? }). */
    run(target) {
      current = downloadRun(target, {
        progress: (p) => {
          // Paused, the ranges in flight still land: bytes, without a speed or an ETA.
          const paused = current?.state === "paused";
          showProgress(bar, detail, paused ? { ...p, speed: 0, eta: null } : p);
          if (!paused) announce(p);
        },
        state: (state, outcome) => {
          show(state);
          if (state === "downloading") {
            say("Downloading and verifying…");
          } else if (state === "paused") {
            detail.textContent = detail.textContent.split(" · ")[0];
            // Ranges opened ahead of the pause are not on disk: show what is.
            if (target.fileHandle) showOnDisk(bar, detail, target.fileHandle, target.info.size);
            say(target.fileHandle
              ? (target.password
                ? "Paused. What was verified is on disk, but a password link's download starts again from the beginning when resumed."
                : "Paused. What was verified is on disk; Resume continues from there, even after this page was closed.")
              : "Paused: nothing more is fetched until you resume. Keep this page open.");
          } else if (state === "done") {
            detail.textContent = "";
            say(target.fileHandle
              ? `Verified and saved as ${outcome.savedAs}. Every part of the file passed its integrity check.`
              : "Verified and saved. Every part of the file passed its integrity check.");
          } else if (state === "cancelled") {
            detail.textContent = "";
            say(outcome);
          } else if (state === "failed") {
            detail.textContent = "";
            const resumable = target.fileHandle && RESUMABLE.has(outcome?.code);
            let after = "";
            if (resumable) after = " What was verified is on disk: Resume tries again from there.";
            else if (target.fileHandle) after = ` The partial file keeps the name ${target.fileHandle.name}.`;
            say(describe(outcome, "", after));
            if (resumable) {
              pause.hidden = false;
              pause.textContent = "Resume";
              root.classList.add("paused");
            }
          }
        },
      });
      downloads.push(current);
    },
  };
  pause.addEventListener("click", () => {
    if (!current) return;
    if (["paused", "failed"].includes(current.state)) current.resume();
    else current.pause();
  });
  cancel.addEventListener("click", () => current?.cancel());
  return view;
}

/** Codes after which a download to a file may simply be tried again from what it
 *  verified: the network, the disk, a busy share. Not integrity errors or refusals. */
const RESUMABLE = new Set(["network", "stalled", "write_failed", "share_busy", "storage_error", "http_500", "http_502", "http_503", "http_504"]);

/** Every download this page runs, for the leave-page warning. */
const downloads = [];

/**
 * One download the person controls. `hooks.state(state, detail)` hears "downloading",
 * "paused", "done" ({ savedAs }), "failed" (the error) and
 * "cancelled" (words); `hooks.progress(p)` the client's progress.
 */
function downloadRun(target, hooks) {
  const run = { state: "downloading" };
  const { fileHandle, writable, finish, password, link } = target;
  let controller = null;
  let pausing = false;
  let cancelling = false;
  // A stream's pause: writes wait on this gate, so the client stops fetching once the
  // ranges it has in flight are written (its memory stays bounded by them).
  let gate = null;
  let opened = null;
  const held = writable ? gated(writable, () => gate) : null;

  const set = (state, detail) => {
    run.state = state;
    hooks.state(state, detail);
  };

  async function attempt() {
    controller = new AbortController();
    pausing = false;
    set("downloading");
    try {
      const result = await download(link, {
        password,
        signal: controller.signal,
        onProgress: hooks.progress,
        ...(fileHandle ? { fileHandle } : { writable: held }),
      });
      if (finish) await finish(result);
      set("done", { savedAs: fileHandle?.name ?? result.name });
    } catch (err) {
      if (err?.code === "cancelled" && pausing && !cancelling) {
        set("paused");
      } else if (err?.code === "cancelled" || cancelling) {
        set("cancelled", await discard());
      } else {
        // A damaged file, or a refusal, is not offered for resuming: its partial file
        // keeps its .part name, and this browser forgets the download.
        if (fileHandle && !RESUMABLE.has(err?.code)) await forget();
        set("failed", err);
      }
    }
  }

  /** Forgets the kept download of this file, if the client kept it. */
  async function forget() {
    const kept = await keptDownloadOf(link, fileHandle).catch(() => null);
    if (kept) await forgetDownload(kept.id).catch(() => {});
  }

  /** After a cancel: forgets the kept download and deletes its partial file. */
  async function discard() {
    if (!fileHandle) return "Cancelled. Nothing was saved.";
    await forget();
    try {
      await fileHandle.remove();
      return "Cancelled. The partial file was deleted.";
    } catch {
      return `Cancelled. The partial file ${fileHandle.name} is left on disk; you may delete it.`;
    }
  }

  run.pause = () => {
    if (run.state !== "downloading") return;
    if (fileHandle) {
      pausing = true;
      controller.abort();
      return;
    }
    gate = new Promise((resolve) => { opened = resolve; });
    set("paused");
  };
  const openGate = () => {
    const open = opened;
    gate = null;
    opened = null;
    open?.();
  };
  run.resume = () => {
    if (fileHandle) {
      if (run.state === "paused" || run.state === "failed") attempt();
      return;
    }
    if (run.state !== "paused") return;
    openGate();
    set("downloading");
  };
  run.cancel = () => {
    cancelling = true;
    if (run.state === "paused" && fileHandle) {
      discard().then((words) => set("cancelled", words));
      return;
    }
    controller?.abort();
    openGate();
  };
  /** A running download no reload could pick up again. */
  run.wouldBeLost = () => ["downloading", "paused"].includes(run.state) && (!fileHandle || Boolean(password));
  attempt();
  return run;
}

/** `writable` behind a gate: each chunk waits while `gate()` is a pending promise. */
function gated(writable, gate) {
  const { readable, writable: front } = new TransformStream({
    async transform(chunk, controller) {
      let wait;
      while ((wait = gate())) await wait;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 1 }, { highWaterMark: 0 });
  readable.pipeTo(writable).catch(() => {});
  return front;
}

// ---------------------------------------------------------------------------------
// Unfinished downloads
// ---------------------------------------------------------------------------------

/** The download to a file this browser kept for `link` (and `handle`, if given). */
async function keptDownloadOf(link, handle) {
  const same = (a, b) => {
    const [x, y] = [new URL(a), new URL(b)];
    return x.origin === y.origin && x.pathname.replace(/\/$/, "") === y.pathname.replace(/\/$/, "") && x.hash === y.hash;
  };
  let kept;
  try {
    kept = await pendingDownloads();
  } catch {
    return null;
  }
  for (const p of kept) {
    if (!same(p.link, link)) continue;
    if (!handle || (await handle.isSameEntry(p.handle))) return p;
  }
  return null;
}

/** The bytes a kept download's file holds (whole verified records); null when the
 *  browser does not let this page read it without asking. */
async function bytesOnDisk(handle) {
  try {
    if (typeof handle.queryPermission === "function" && (await handle.queryPermission({ mode: "read" })) !== "granted") return null;
    return (await handle.getFile()).size;
  } catch {
    return null;
  }
}

/** Shows on `bar` and in `detail` the verified bytes `handle`'s file holds of `size`
 *  (when the page may read it). */
async function showOnDisk(bar, detail, handle, size) {
  const held = await bytesOnDisk(handle);
  if (held !== null) showProgress(bar, detail, { bytesDone: held, bytesTotal: size, speed: 0, eta: null });
}

/** Lists the downloads to a file this browser kept that stopped before their end
 *  (other than `except`, the link this page shows), each with Resume and Forget. */
async function listKept(except = null) {
  let kept;
  try {
    kept = await pendingDownloads();
  } catch (err) {
    console.warn("sealdrop: unfinished downloads cannot be listed here", err);
    return;
  }
  const mine = except ? await keptDownloadOf(except) : null;
  const shown = await Promise.all(kept.filter((p) => p.id !== mine?.id).map(keptItem));
  $("download-list").replaceChildren(...shown);
  $("downloads").hidden = shown.length === 0;
}

/** One kept download: its progress so far, Resume (with one permission prompt, on the
 *  click) and Forget (the partial file stays). */
async function keptItem(kept) {
  const root = el("li", { className: "transfer kept" });
  root.dataset.id = kept.id;
  const name = el("h3", { className: "name", textContent: kept.name || "(unnamed)" });
  const when = new Date(kept.createdAt).toLocaleString();
  const meta = el("p", { className: "meta", textContent: `${formatBytes(kept.size)} · started ${when}` });
  const bar = el("progress", { max: 1, value: 0 });
  const detail = el("p", { className: "detail" });
  const status = el("p", { className: "status" });
  status.setAttribute("aria-live", "polite");
  const start = el("button", { type: "button", className: "primary start" });
  const pause = el("button", { type: "button", className: "pause", textContent: "Pause" });
  const cancel = el("button", { type: "button", className: "cancel", textContent: "Cancel" });
  const forget = el("button", { type: "button", className: "forget", textContent: "Forget" });
  for (const b of [start, pause, cancel, forget]) b.setAttribute("aria-describedby", `${kept.id}-name`);
  name.id = `${kept.id}-name`;
  bar.setAttribute("aria-labelledby", name.id);
  root.append(name, meta, bar, detail, status, el("div", { className: "actions" }, start, pause, cancel, forget));
  const view = transferView(root, { bar, detail, status, start, pause, cancel });
  await showOnDisk(bar, detail, kept.handle, kept.size);
  view.ready("Resume", async () => {
    forget.remove();
    await resumeKept(view, kept);
  });
  view.say(`Stopped before its end. What was verified is in ${kept.handle.name}; Resume continues from there.`);
  forget.addEventListener("click", async () => {
    await forgetDownload(kept.id);
    root.remove();
    $("downloads").hidden = $("download-list").children.length === 0;
  });
  return root;
}

/** Resumes a kept download into its file, asking once (on this click) for permission
 *  to write it again. */
async function resumeKept(view, kept) {
  if (!(await writePermission(kept.handle))) {
    view.say("The browser did not allow writing the file. Try again.");
    return;
  }
  view.run({ link: kept.link, fileHandle: kept.handle, info: kept });
}

async function writePermission(handle) {
  if (typeof handle.queryPermission !== "function") return true;
  if ((await handle.queryPermission({ mode: "readwrite" })) === "granted") return true;
  return (await handle.requestPermission({ mode: "readwrite" })) === "granted";
}

// ---------------------------------------------------------------------------------
// Saving, previews and the service worker
// ---------------------------------------------------------------------------------

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

/** Plain words for the codes a person may meet (a function of the error where the
 *  words name its record). */
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
  record_auth_failed: (e) => `The stored file is damaged: record ${e.record} failed its integrity check. The download stopped, and nothing is presented as complete.`,
  write_failed: "The file could not be written (is the disk full?).",
  truncated: (e) => `The stored file is incomplete: it ends in record ${e.record}. The download stopped, and nothing is presented as complete.`,
  trailing_data: "The stored file has unexpected data at its end. The download stopped, and nothing is presented as complete.",
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
  const hint = HINTS[code];
  let text = typeof hint === "function" ? hint(err) : hint ?? err?.message ?? String(err);
  if (typeof hint !== "function" && typeof err?.record === "number") text += ` (record ${err.record})`;
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
