// The page's side of the bench's signer (bench/origin.mjs, same origin as the page):
// what an app's backend (or Companion) does for Uppy, reduced to one JSON POST.
export async function signer(path, body) {
  const res = await fetch(`/signer/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`signer ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Runs `uppy.upload()` for the one file added and times it the way the other entries
 * are timed: `partsMs` when Complete is asked for (every part is stored by then),
 * `totalMs` when Uppy reports the upload done. `markPartsDone(mark)` hands the driver
 * the function it calls when Uppy asks it to complete.
 */
export async function timeUpload(uppy, markPartsDone) {
  let partsAt = null;
  markPartsDone(() => { partsAt ??= performance.now(); });
  const t0 = performance.now();
  const result = await uppy.upload();
  const totalMs = performance.now() - t0;
  if (!result || result.failed?.length || result.successful?.length !== 1) {
    const error = result?.failed?.[0]?.error;
    throw new Error(`Uppy upload failed: ${error?.message ?? error ?? JSON.stringify(result)}`);
  }
  if (partsAt === null) throw new Error("Uppy never asked to complete the multipart upload");
  return { partsMs: partsAt - t0, totalMs };
}
