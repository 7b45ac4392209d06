// Runs the password link vectors (tests/vectors/password/links.json, docs/FORMAT.md
// "Password links") through an implementation written from the document alone
// (tests/support/password.mjs: Argon2id and HKDF from @noble/hashes; AES-256-GCM and
// SHA-256 from WebCrypto here). The Rust
// side (protocol/tests/password_vectors.rs) runs the same file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ARGON2ID, b64url, derivePassword, parseFragment } from './support/password.mjs';

const vectors = JSON.parse(
  readFileSync(new URL('./vectors/password/links.json', import.meta.url), 'utf8'),
);
const { subtle } = globalThis.crypto;
const utf8 = (s) => new TextEncoder().encode(s);
const hex = (b) => Buffer.from(b).toString('hex');
const concat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));

async function open(c) {
  const { salt, sealed } = parseFragment(c.fragment);
  const d = derivePassword(c.password, salt, c.token);
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
  assert.deepEqual(ARGON2ID, { m: 65536, t: 3, p: 1, version: 19, dkLen: 32 });
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
