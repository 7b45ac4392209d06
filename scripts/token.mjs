#!/usr/bin/env node
// Prints a room token for local development, signed with the JWT_SECRET of .dev.vars
// (written by scripts/setup.sh) by `jose`:
//
//   npm run token -- --user alice --room r1 [--role member|moderator|owner] [--name Alice] [--hours 12]
//
// `--room '*'` grants the role in every room. Never use this secret in a deployment.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SignJWT } from "jose";

const { values } = parseArgs({
  options: {
    user: { type: "string" },
    room: { type: "string", multiple: true },
    role: { type: "string", default: "member" },
    name: { type: "string" },
    hours: { type: "string", default: "12" },
    audience: { type: "string", default: "sealdrop" },
  },
});
const fail = (why) => { console.error(`token: ${why}`); process.exit(2); };
if (!values.user) fail("--user is required");
if (!values.room?.length) fail("--room is required (repeat it for several rooms, or '*')");
if (!["member", "moderator", "owner"].includes(values.role)) fail("--role is member, moderator or owner");
const hours = Number(values.hours);
if (!(hours > 0 && hours <= 24 * 30)) fail("--hours must be a number of hours up to 720");

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
let vars;
try { vars = readFileSync(join(root, ".dev.vars"), "utf8"); } catch { fail(".dev.vars is missing: run scripts/setup.sh"); }
const secret = vars.split("\n").find((l) => l.startsWith("JWT_SECRET="))?.slice("JWT_SECRET=".length).trim();
if (!secret) fail(".dev.vars has no JWT_SECRET: run scripts/setup.sh");

const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ name: values.name ?? values.user, rooms: Object.fromEntries(values.room.map((r) => [r, values.role])) })
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setSubject(values.user)
  .setAudience(values.audience)
  .setIssuedAt(now)
  .setExpirationTime(now + Math.round(hours * 3600))
  .sign(new TextEncoder().encode(secret));
console.log(token);
