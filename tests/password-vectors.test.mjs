// Runs the password link vectors (tests/vectors/password/links.json, docs/FORMAT.md
// "Password links") through an implementation written here from the document alone:
// Argon2id and HKDF from @noble/hashes, AES-256-GCM and SHA-256 from WebCrypto. The Rust
// side (protocol/tests/password_vectors.rs) runs the same file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { argon2id } from '@noble/hashes/argon2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

const vectors = JSON.parse(
  readFileSync(new URL('./vectors/password/links.json', import.meta.url), 'utf8'),
);
const { subtle } = globalThis.crypto;
const utf8 = (s) => new TextEncoder().encode(s);
const hex = (b) => Buffer.from(b).toString('hex');
const concat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** Strict base64url without padding: exactly `len` bytes, canonical spare bits. */
function b64url(text, len) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('invalid_link');
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length !== len || bytes.toString('base64url') !== text) throw new Error('invalid_link');
  return new Uint8Array(bytes);
}

function parseFragment(fragment) {
  const m = /^#?p1\.([^.]{22})\.([^.]{64})$/.exec(fragment);
  if (!m) throw new Error('invalid_link');
  return { salt: b64url(m[1], 16), sealed: b64url(m[2], 48) };
}

/** FORMAT.md: S = Argon2id(NFC password, salt), then HKDF-SHA256 (no salt) per purpose. */
function derive(password, salt, token) {
  const stretched = argon2id(utf8(password.normalize('NFC')), salt, {
    m: vectors.argon2id.memoryKiB,
    t: vectors.argon2id.iterations,
    p: vectors.argon2id.lanes,
    version: vectors.argon2id.version,
    dkLen: 32,
  });
  const label = concat(utf8('sealdrop/p1/wrap'), [0], utf8(token));
  return {
    stretched,
    verifier: hkdf(sha256, stretched, undefined, utf8('sealdrop/p1/verifier'), 32),
    wrapKey: hkdf(sha256, stretched, undefined, label, 32),
    aad: label,
  };
}

async function open(c) {
  const { salt, sealed } = parseFragment(c.fragment);
  const d = derive(c.password, salt, c.token);
  const key = await subtle.importKey('raw', d.wrapKey, 'AES-GCM', false, ['decrypt', 'encrypt']);
  const params = { name: 'AES-GCM', iv: new Uint8Array(12), additionalData: d.aad };
  let fileKey;
  try {
    fileKey = new Uint8Array(await subtle.decrypt(params, key, sealed));
  } catch {
    throw new Error('wrong_password');
  }
  const again = new Uint8Array(await subtle.encrypt(params, key, fileKey));
  return { ...d, salt, fileKey, again };
}

test('the vectors use the real parameters: Argon2id m = 64 MiB, t = 3, p = 1', () => {
  assert.deepEqual(vectors.argon2id, {
    memoryKiB: 65536, iterations: 3, lanes: 1, version: 19, outputLength: 32,
  });
  assert.deepEqual(
    vectors.cases.map((c) => c.name),
    ['ascii', 'unicode', 'wrong_password', 'token_swapped', 'tampered_wrapped_key', 'truncated_fragment'],
  );
});

for (const c of vectors.cases) {
  test(`password vector ${c.name} (${c.expect})`, async () => {
    if (c.expect === 'failure') {
      await assert.rejects(open(c), { message: c.error });
      return;
    }
    const got = await open(c);
    assert.equal(hex(got.fileKey), c.fileKey);
    assert.equal(hex(got.salt), c.salt);
    assert.equal(hex(got.stretched), c.stretched);
    assert.equal(Buffer.from(got.verifier).toString('base64url'), c.verifier);
    assert.equal(hex(got.wrapKey), c.wrapKey);
    // The server's stored hash: SHA-256(label || the token's random part || verifier).
    const shareId = b64url(c.token, 24).subarray(0, 16);
    const stored = await subtle.digest(
      'SHA-256', concat(utf8('sealdrop/v1/share-verifier'), [0], shareId, got.verifier),
    );
    assert.equal(hex(new Uint8Array(stored)), c.storedHash);
    // Wrapping the key again gives the same fragment.
    const fragment = `p1.${Buffer.from(got.salt).toString('base64url')}.${Buffer.from(got.again).toString('base64url')}`;
    assert.equal(fragment, c.fragment);
    if (c.typed !== undefined) {
      assert.notEqual(c.typed, c.password, 'typed is the decomposed form');
      assert.equal(c.typed.normalize('NFC'), c.password);
    }
  });
}
