// The Uppy peers' browser bundles. Each Uppy major lives in its own small package under
// bench/peers/ (package.json + package-lock.json pin every version): npm cannot hold
// @uppy/core 5 and 6 with their peer dependencies in one tree (ERESOLVE), and the
// project's own package.json stays free of the bench's peers. Installed from the
// registry with `npm ci` when missing, bundled with esbuild (wrangler's, from the
// project's node_modules) into `outDir/<name>.js`, which defines window.benchUppy.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { ROOT } from "../tests/support/process.mjs";

export const PEERS = ["uppy5", "uppy6"];

const peerDir = (name) => join(ROOT, "bench/peers", name);

/** `npm ci` in the peer's folder unless its node_modules matches its lockfile. */
function install(name) {
  const dir = peerDir(name);
  const marker = join(dir, "node_modules/.package-lock.json");
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(join(dir, "package-lock.json")).mtimeMs) return;
  console.log(`bench: installing ${name}'s packages (npm ci in bench/peers/${name})`);
  execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
}

/** The installed version of `pkg` in the peer's folder. */
export function peerVersion(name, pkg) {
  return JSON.parse(readFileSync(join(peerDir(name), "node_modules", pkg, "package.json"), "utf8")).version;
}

/** Installs and bundles every peer into `outDir`; returns { name: { "@uppy/core": v, "@uppy/aws-s3": v } }. */
export async function buildPeers(outDir) {
  const versions = {};
  for (const name of PEERS) {
    install(name);
    await build({
      entryPoints: [join(peerDir(name), "uppy.js")],
      outfile: join(outDir, `${name}.js`),
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "chrome120",
      logLevel: "warning",
    });
    versions[name] = Object.fromEntries(["@uppy/core", "@uppy/aws-s3"].map((pkg) => [pkg, peerVersion(name, pkg)]));
  }
  return versions;
}
