// What the client's browser tests (client, faults, resume) need inside the page, defined
// once: random Blobs, the SHA-256 of a Blob, and `outcome`, which turns the client's
// promise into a plain object page.evaluate can hand back (the value, or the
// SealdropError's code and fields) so a test asserts on a failure as on a success.

/** Defines `window.randomBlob`, `window.sha256` and `window.outcome` in `page`. */
export function addPageHelpers(page) {
  return page.evaluate(() => {
    /** Random bytes of `size` as a Blob (getRandomValues gives 64 KiB at a time). */
    window.randomBlob = (size) => {
      const parts = [];
      for (let left = size; left > 0; left -= 65536) {
        parts.push(crypto.getRandomValues(new Uint8Array(Math.min(left, 65536))));
      }
      return new Blob(parts);
    };
    /** The SHA-256 of a Blob, in hex. */
    window.sha256 = async (blob) => {
      const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
      return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    };
    /** Runs `promise`; resolves to its value, or to the error's code and fields. */
    window.outcome = async (promise) => {
      try {
        return { ok: true, value: await promise };
      } catch (e) {
        return {
          ok: false, name: e.name, code: e.code, message: e.message, status: e.status,
          retryAfter: e.retryAfter,
          record: e.record, part: e.part, attempts: e.attempts, cause: e.cause?.code,
          isError: e instanceof Error,
        };
      }
    };
  });
}

/**
 * Answers the app's `showSaveFilePicker` (which headless Chromium cannot show) with a
 * file of the origin private file system named as the page suggested: the same
 * FileSystemFileHandle a person's pick gives. With `picker: false` the page has no
 * File System Access at all. For every document `page` opens from now on.
 */
export function stubSavePicker(page, { picker = true } = {}) {
  return page.addInitScript((picker) => {
    if (!picker) {
      Object.defineProperty(window, "showSaveFilePicker", { value: undefined });
      return;
    }
    window.showSaveFilePicker = async ({ suggestedName }) => {
      const root = await navigator.storage.getDirectory();
      await root.removeEntry(suggestedName).catch(() => {});
      return root.getFileHandle(suggestedName, { create: true });
    };
  }, picker);
}
