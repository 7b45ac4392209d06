// Starts one of the client's cipher workers (src/offload.rs). wasm-bindgen copies this
// file to pkg/snippets/<crate>-<hash>/js/spawn.js, three folders below pkg/, where the
// worker script sealdrop_worker.js lies. The literal
// `new Worker(new URL("...", import.meta.url), { type: "module" })` is the shape bundlers
// (webpack 5, Vite, Parcel, Rollup with its worker plugin) look for to emit the worker
// script with the bundle; served as is, the URL resolves beside the package's files.
//
// A page that enforces Trusted Types (the demo app) refuses a plain URL there: it must
// allow the policy `sealdrop-worker`, which turns exactly this one URL into a script URL.

const NAME = "sealdrop-cipher";
let policy;

export function spawnCipherWorker() {
  try {
    return new Worker(new URL("../../../sealdrop_worker.js", import.meta.url), { type: "module", name: NAME });
  } catch (error) {
    const tt = globalThis.trustedTypes;
    if (!tt) throw error;
    const url = new URL("../../../sealdrop_worker.js", import.meta.url).href;
    policy ??= tt.createPolicy("sealdrop-worker", {
      createScriptURL: (text) => {
        if (text !== url) throw new TypeError("sealdrop-worker: not the cipher worker's URL");
        return text;
      },
    });
    return new Worker(policy.createScriptURL(url), { type: "module", name: NAME });
  }
}
