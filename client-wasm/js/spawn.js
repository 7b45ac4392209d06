// Starts one of the client's cipher workers (src/offload.rs). wasm-bindgen copies this
// file to pkg/snippets/<crate>-<hash>/js/spawn.js, three folders below pkg/, where the
// worker script sealdrop_worker.js lies: the URL below resolves beside the package's
// files however they are served.
//
// Where the page has Trusted Types (Chromium), the URL goes through the policy
// `sealdrop-worker`, which accepts exactly this one URL: a page that enforces Trusted
// Types (the demo app's `require-trusted-types-for 'script'`) must allow that policy
// name, and a page that does not enforce them sees no difference. Where the policy
// cannot be made, the plain URL is tried.

const NAME = "sealdrop-cipher";
let policy;

function trusted(url) {
  const tt = globalThis.trustedTypes;
  if (!tt) return null;
  try {
    policy ??= tt.createPolicy("sealdrop-worker", {
      createScriptURL: (text) => {
        if (text !== url) throw new TypeError("sealdrop-worker: not the cipher worker's URL");
        return text;
      },
    });
    return policy.createScriptURL(url);
  } catch {
    return null;
  }
}

export function spawnCipherWorker() {
  const url = new URL("../../../sealdrop_worker.js", import.meta.url);
  return new Worker(trusted(url.href) ?? url, { type: "module", name: NAME });
}
