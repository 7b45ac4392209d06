// A sealdrop cipher worker: loads this package's wasm and hands it every message
// (src/worker.rs). Started by the client itself (js/spawn.js); scripts/build.sh copies
// this file into pkg/ beside sealdrop_client.js.
import init, { runCipherWorker } from "./sealdrop_client.js";

await init();
runCipherWorker();
