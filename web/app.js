// sealdrop demo app: pick or drop files to get encrypted-upload links, open a link
// to download, verify and save the file. Plain JS over @sealdrop/client (the wasm
// build in /pkg); no framework, no build step.
//
// In reading order: start-up and routing, sending (a queue of uploads, one at a time,
// each with its own progress, link and copy button), receiving (the /s/<token>#k1...
// page), then small helpers (formatting, errors, saving, DOM).

import init, { Uploader, download, version } from "/pkg/sealdrop_client.js";

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
  // The worker serves this page for /s/<token> too: that is a download link.
  if (/^\/s\/[^/]+\/?$/.test(location.pathname)) {
    receive();
  } else {
    send();
  }
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

/** Uploads waiting their turn; one runs at a time so each gets the full connection. */
const queue = [];
let pumping = false;
let uploader;

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
    addFiles(input.files);
    input.value = ""; // choosing the same file again fires change again
  });

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
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    addFiles(e.dataTransfer.files);
  });
}

function addFiles(files) {
  for (const file of files) {
    const job = { file, controller: new AbortController(), view: uploadView(file) };
    job.view.cancel.addEventListener("click", () => job.controller.abort());
    $("uploads").append(job.view.root);
    queue.push(job);
  }
  pump();
}

async function pump() {
  if (pumping) return;
  pumping = true;
  while (queue.length > 0) {
    await runUpload(queue.shift());
  }
  pumping = false;
}

async function runUpload(job) {
  const { file, controller, view } = job;
  if (controller.signal.aborted) {
    view.failed({ code: "cancelled" });
    return;
  }
  view.started();
  try {
    const { link } = await uploader.upload(file, {
      signal: controller.signal,
      onProgress: (p) => view.progress(p),
    });
    view.done(link);
  } catch (err) {
    view.failed(err);
  }
}

/** The list item of one upload, and the ways it changes. */
function uploadView(file) {
  const root = el("li", { className: "transfer" });
  const id = `upload-${crypto.randomUUID()}`;
  const name = el("h3", { className: "name", id: `${id}-name`, textContent: file.name || "(unnamed)" });
  const meta = el("p", { className: "meta", textContent: formatBytes(file.size) });
  const bar = el("progress", { max: 1, value: 0 });
  bar.setAttribute("aria-labelledby", name.id);
  const detail = el("p", { className: "detail" });
  const status = el("p", { className: "status", textContent: "Waiting…" });
  status.setAttribute("aria-live", "polite");
  const cancel = el("button", { type: "button", textContent: "Cancel" });
  cancel.setAttribute("aria-describedby", name.id);
  const actions = el("div", { className: "actions" }, cancel);
  root.append(name, meta, bar, detail, status, actions);
  const announce = milestones(status, "Uploading");

  return {
    root,
    cancel,
    started() {
      status.textContent = "Encrypting and uploading…";
    },
    progress(p) {
      showProgress(bar, detail, p);
      announce(p);
    },
    done(link) {
      root.classList.add("done");
      detail.textContent = "";
      status.textContent = "Uploaded. Anyone with this link can download and decrypt the file:";
      const input = el("input", { type: "text", readOnly: true, id: `${id}-link` });
      input.setAttribute("value", link);
      input.addEventListener("focus", () => input.select());
      const label = el("label", { className: "visually-hidden", htmlFor: input.id, textContent: `Link for ${file.name}` });
      const copy = el("button", { type: "button", className: "primary", textContent: "Copy link" });
      copy.addEventListener("click", () => copyLink(link, input, copy, status));
      actions.replaceWith(el("div", { className: "link-row" }, label, input, copy));
    },
    failed(err) {
      root.classList.add("failed");
      detail.textContent = "";
      status.replaceChildren(describe(err));
      cancel.remove();
    },
  };
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
// Receiving
// ---------------------------------------------------------------------------------

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
  const controller = new AbortController();
  cancel.addEventListener("click", () => controller.abort());
  const announce = milestones(status, "Downloading");
  status.textContent = "Decrypting the file's name…";

  try {
    const file = await download(location.href, {
      signal: controller.signal,
      onMetadata: (info) => {
        name.textContent = info.name || "(unnamed)";
        size.textContent = `${formatBytes(info.size)}${info.type ? ` · ${info.type}` : ""}`;
        document.title = `${info.name} · sealdrop`;
        status.textContent = "Downloading and verifying…";
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
    save(file.blob, file.name);
    status.textContent = "Verified and saved. Every part of the file passed its integrity check.";
    saveAgain.hidden = false;
    saveAgain.addEventListener("click", () => save(file.blob, file.name));
  } catch (err) {
    card.classList.add("failed");
    card.setAttribute("aria-busy", "false");
    if (name.textContent === "Opening the link…") name.textContent = "This file cannot be opened";
    detail.textContent = "";
    status.replaceChildren(describe(err));
    cancel.remove();
  }
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

/** Plain words for the codes a person may meet, and the code itself. */
const HINTS = {
  cancelled: "Cancelled.",
  network: "The connection failed. Check the network and try again.",
  part_failed: "The upload kept failing and was stopped. Try again.",
  read_failed: "The file could not be read. Was it moved or changed during the upload?",
  invalid_link: "This link is incomplete or damaged: it must end with “#k1.” and the key.",
  file_not_found: "There is no such file. It may have expired, or its upload never finished.",
  key_commitment_failed: "The key in this link does not open this file: the link is wrong or damaged.",
  metadata_auth_failed: "The key in this link does not open this file: the link is wrong or damaged.",
  record_auth_failed: "The stored file is damaged: part of it failed its integrity check. Nothing was saved.",
  truncated: "The stored file is incomplete. Nothing was saved.",
  trailing_data: "The stored file has unexpected data at its end. Nothing was saved.",
  metadata_too_large: "The file name is too long.",
  file_too_large: "The file is too large (the limit is 5 TiB).",
};

function describe(err) {
  const code = err?.code ?? "error";
  let text = HINTS[code] ?? err?.message ?? String(err);
  if (typeof err?.record === "number") text += ` (record ${err.record})`;
  const frag = document.createDocumentFragment();
  frag.append(`${text} `, el("code", { textContent: code }));
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
