// Password links (docs/FORMAT.md §8.1) written from the document alone, for the tests:
// Argon2id and HKDF from @noble/hashes. The vectors test checks it against the file of
// vectors; the browser tests use it to know what must never reach storage.
import { argon2id } from "@noble/hashes/argon2.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

const utf8 = (s) => new TextEncoder().encode(s);

/** Argon2id's parameters: m = 64 MiB, t = 3, p = 1, version 0x13, 32 bytes. */
export const ARGON2ID = { m: 65536, t: 3, p: 1, version: 0x13, dkLen: 32 };

/**
 * S = Argon2id(NFC password, salt), then HKDF-SHA256 (no salt) per purpose: the
 * verifier, and the wrap key bound to the share token (with the AAD it seals under).
 */
export function derivePassword(password, salt, token) {
  const stretched = argon2id(utf8(password.normalize("NFC")), salt, ARGON2ID);
  const label = Uint8Array.from([...utf8("sealdrop/p1/wrap"), 0, ...utf8(token)]);
  return {
    stretched,
    verifier: hkdf(sha256, stretched, undefined, utf8("sealdrop/p1/verifier"), 32),
    wrapKey: hkdf(sha256, stretched, undefined, label, 32),
    aad: label,
  };
}

/** Strict base64url without padding: exactly `len` bytes, canonical spare bits. */
export function b64url(text, len) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("invalid_link");
  const bytes = Buffer.from(text, "base64url");
  if (bytes.length !== len || bytes.toString("base64url") !== text) throw new Error("invalid_link");
  return new Uint8Array(bytes);
}

/** The salt and wrapped key of a `p1.` fragment (with or without `#`). */
export function parseFragment(fragment) {
  const m = /^#?p1\.([^.]{22})\.([^.]{64})$/.exec(fragment);
  if (!m) throw new Error("invalid_link");
  return { salt: b64url(m[1], 16), sealed: b64url(m[2], 48) };
}
