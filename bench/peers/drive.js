// What both Uppy drivers share: the page's side of the bench's signer (bench/origin.mjs,
// same origin as the page: what an app's backend or Companion does for Uppy, reduced to
// one JSON POST), and one timed upload.

/** POSTs `body` to the signer's `action` and returns its JSON answer. */
export async function signer(action, body) {
  const res = await fetch(`/signer/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`signer ${action}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Uploads `file` with a fresh Uppy and its AwsS3 plugin in multipart mode, `partSize`
 * parts and `limit: concurrency`, plus the version's own options, `options(partsDone)`:
 * the driver calls `partsDone()` when Uppy asks to complete (every part is stored by
 * then). Timed as the other entries are: `partsMs` until then, `totalMs` until Uppy
 * reports the upload done.
 */
export async function driveUppy({ Uppy, AwsS3, file, partSize, concurrency }, options) {
  let partsAt = null;
  const uppy = new Uppy({ autoProceed: false });
  uppy.use(AwsS3, {
    shouldUseMultipart: true,
    limit: concurrency,
    getChunkSize: () => partSize,
    ...options(() => { partsAt ??= performance.now(); }),
  });
  uppy.addFile({ name: file.name, type: file.type, data: file, source: "bench" });
  try {
    const t0 = performance.now();
    const result = await uppy.upload();
    const totalMs = performance.now() - t0;
    if (!result || result.failed?.length || result.successful?.length !== 1) {
      const error = result?.failed?.[0]?.error;
      throw new Error(`Uppy upload failed: ${error?.message ?? error ?? JSON.stringify(result)}`);
    }
    if (partsAt === null) throw new Error("Uppy never asked to complete the multipart upload");
    return { partsMs: partsAt - t0, totalMs };
  } finally {
    uppy.destroy();
  }
}
