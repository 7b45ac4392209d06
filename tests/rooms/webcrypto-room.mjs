// An independent implementation of sealdrop's sealed room payloads (docs/FORMAT.md,
// "Room payloads"), written from the document alone with WebCrypto, so it runs the same
// in Node and in Chromium. The browser test runs every file of tests/vectors/room/
// through it; the node tests use it to make the sealed payloads they send.
//
// Exports: roomCipher(roomKey, roomId) -> { seal(ctx, plaintext, nonce?), open(ctx,
// sealed), aad(ctx) }, checkVector(text), parseRoomLink(link).

const te = new TextEncoder();
const LABEL = te.encode("sealdrop/room/v1\0");

const b64u = {
  encode(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  },
  decode(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw codeError("invalid_sealed_payload", "not base64url");
    const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/") + "=".repeat((4 - (text.length % 4)) % 4));
    const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    // Canonical only: re-encoding must give the same text (no stray trailing bits).
    if (b64u.encode(out) !== text) throw codeError("invalid_sealed_payload", "not canonical base64url");
    return out;
  },
};

function codeError(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** AAD: the label, then room id, event, sender, field, each a u16 BE length and UTF-8. */
function aadFor(roomId, { event, sender, field }) {
  const parts = [LABEL];
  for (const text of [roomId, event, sender, field]) {
    const bytes = te.encode(text);
    parts.push(new Uint8Array([bytes.length >> 8, bytes.length & 0xff]), bytes);
  }
  return concat(...parts);
}

/** HKDF-SHA256(IKM = room key, salt = UTF-8 room id, info = "sealdrop/room/v1/content"). */
async function contentKeyBytes(roomKey, roomId) {
  const ikm = await crypto.subtle.importKey("raw", roomKey, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: te.encode(roomId), info: te.encode("sealdrop/room/v1/content") },
    ikm,
    256,
  );
  return new Uint8Array(bits);
}

export async function roomCipher(roomKey, roomId) {
  const keyBytes = await contentKeyBytes(roomKey, roomId);
  const key = await crypto.subtle.importKey("raw", keyBytes, "AES-GCM", false, ["encrypt", "decrypt"]);
  return {
    keyBytes,
    aad: (ctx) => aadFor(roomId, ctx),
    async seal(ctx, plaintext, nonce = crypto.getRandomValues(new Uint8Array(12))) {
      const data = typeof plaintext === "string" ? te.encode(plaintext) : plaintext;
      const sealed = new Uint8Array(await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonce, additionalData: aadFor(roomId, ctx) }, key, data));
      return b64u.encode(concat(new Uint8Array([1]), nonce, sealed));
    },
    async open(ctx, text) {
      const bytes = b64u.decode(text);
      if (bytes.length < 29) throw codeError("invalid_sealed_payload", "shorter than version, nonce and tag");
      if (bytes[0] !== 1) throw codeError("invalid_sealed_payload", "unknown version");
      try {
        return new Uint8Array(await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: bytes.subarray(1, 13), additionalData: aadFor(roomId, ctx) }, key, bytes.subarray(13)));
      } catch {
        throw codeError("room_auth_failed", "the sealed payload did not authenticate");
      }
    },
  };
}

const hex = {
  decode: (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16)),
  encode: (b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(""),
};

/** Runs one vector file; resolves to its name, or throws what disagreed. */
export async function checkVector(text) {
  const f = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.indexOf(":");
    const key = line.slice(0, i);
    if (!["name", "expect", "error", "room_key", "room_id", "event", "sender", "field", "content_key", "aad", "nonce", "plaintext", "sealed"].includes(key)) {
      throw new Error(`unknown key ${key}`);
    }
    f[key] = line.slice(i + 1).trimStart();
  }
  const ctx = { event: f.event, sender: f.sender, field: f.field };
  const cipher = await roomCipher(hex.decode(f.room_key), f.room_id);
  if (f.expect === "success") {
    if (hex.encode(cipher.keyBytes) !== f.content_key) throw new Error(`${f.name}: content key differs`);
    if (hex.encode(cipher.aad(ctx)) !== f.aad) throw new Error(`${f.name}: AAD differs`);
    const opened = await cipher.open(ctx, f.sealed);
    if (hex.encode(opened) !== f.plaintext) throw new Error(`${f.name}: opened to another plaintext`);
    const resealed = await cipher.seal(ctx, hex.decode(f.plaintext), hex.decode(f.nonce));
    if (resealed !== f.sealed) throw new Error(`${f.name}: sealing gives other bytes`);
  } else if (f.expect === "failure") {
    let code = null;
    try { await cipher.open(ctx, f.sealed); } catch (e) { code = e.code ?? String(e); }
    if (code !== f.error) throw new Error(`${f.name}: expected ${f.error}, got ${code ?? "success"}`);
  } else {
    throw new Error(`${f.name}: bad expect ${f.expect}`);
  }
  return f.name;
}

/** `<origin>/r/<roomId>#k1.<43 base64url chars>` -> { origin, roomId, roomKey }. */
export function parseRoomLink(link) {
  const m = /^(https?:\/\/[^/]+)\/r\/([A-Za-z0-9_-]{1,64})\/?#k1\.([A-Za-z0-9_-]{43})$/.exec(link);
  if (!m) throw codeError("invalid_link", "not a room link");
  return { origin: m[1], roomId: m[2], roomKey: b64u.decode(m[3]) };
}

export { b64u };
