// Runs every test vector of docs/FORMAT.md §9 (tests/vectors/*.txt) through the
// independent JavaScript implementation (tests/pages/webcrypto-format.js) inside headless
// Chromium, so that the WebCrypto a real browser ships is what must agree with the
// Rust implementation, not Node's.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { startServer } from './support/server.mjs';
import { launchBrowser } from './support/browser.mjs';
// The parser is plain JS (no WebCrypto): Node may use it to list the cases.
import { parseVector } from './pages/webcrypto-format.js';

// The case list of FORMAT.md §9, copied from the document: every one must have a vector.
const REQUIRED_CASES = [
  'empty', 'one_byte', 'one_record_exact', 'one_record_plus_one', 'three_records',
  'default_record_size_one_byte',
  'tampered_tag', 'tampered_ciphertext', 'swapped_records', 'dropped_last_record',
  'extra_record', 'wrong_header_salt', 'wrong_header_record_size', 'bad_magic',
  'unsupported_version', 'empty_record_appended', 'short_section', 'short_last_record',
  'tampered_metadata', 'noncanonical_metadata',
];

const VECTOR_DIR = fileURLToPath(new URL('./vectors/', import.meta.url));
const vectors = readdirSync(VECTOR_DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((file) => {
    const text = readFileSync(join(VECTOR_DIR, file), 'utf8');
    let name;
    try {
      ({ name } = parseVector(text));
    } catch (e) {
      name = undefined; // reported by this file's own test below, not at load time
    }
    return { file, text, name };
  });

let server;
let browser;
let page;
let moduleUrl;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  await page.goto(`${server.url}/test/blank.html`);
  moduleUrl = `${server.url}/test/webcrypto-format.js`;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// Runs checkVector(text) in the page; resolves to its result or rejects with its message.
function checkInBrowser(text) {
  return page.evaluate(async ([src, t]) => {
    const m = await import(src);
    return m.checkVector(t);
  }, [moduleUrl, text]);
}

test('tests/vectors holds every case FORMAT.md §9 lists, each once', () => {
  const names = vectors.map((v) => v.name).filter((n) => n !== undefined);
  const missing = REQUIRED_CASES.filter((c) => !names.includes(c));
  assert.deepEqual(missing, [], `vectors missing for: ${missing.join(', ')}`);
  const repeated = names.filter((n, i) => names.indexOf(n) !== i);
  assert.deepEqual(repeated, [], `case names used twice: ${repeated.join(', ')}`);
});

test('the checker runs in a real browser (Chromium WebCrypto, not Node)', async () => {
  const ua = await page.evaluate(() => navigator.userAgent);
  assert.match(ua, /Chrome\//);
  assert.equal(await page.evaluate(() => typeof process), 'undefined');
});

for (const v of vectors) {
  test(`vector ${v.name ?? v.file}`, async () => {
    const result = await checkInBrowser(v.text);
    assert.deepEqual(result, { name: v.name, ok: true });
  });
}

// A checker that cannot fail proves nothing: one changed hex digit in the ciphertext of
// a success vector must make it reject.
test('negative control: a success vector with one ciphertext hex digit flipped is rejected', async () => {
  const base = vectors.find((v) => v.name === 'three_records');
  assert.ok(base, 'needs the three_records vector');
  const flipped = base.text.replace(/^(ciphertext: [0-9a-fA-F]{10})([0-9a-fA-F])/m, (_, head, d) =>
    head + (d.toLowerCase() === '0' ? '1' : '0'));
  assert.notEqual(flipped, base.text, 'the flip changed nothing');
  await assert.rejects(checkInBrowser(flipped), /three_records: open failed \(record_auth_failed at record 0\)/);
});

// The same vectors through the Rust implementation compiled to wasm32, as the browser
// client ships it (web/pkg), via its checkVector conformance hook.
function checkInWasm(text) {
  return page.evaluate(async ([src, t]) => {
    const m = await import(src);
    await m.default();
    return m.checkVector(t);
  }, [`${server.url}/pkg/sealdrop_client.js`, text]);
}

for (const v of vectors) {
  test(`wasm vector ${v.name ?? v.file}`, async () => {
    assert.deepEqual(await checkInWasm(v.text), { name: v.name, ok: true });
  });
}

test('wasm negative control: a success vector with one ciphertext hex digit flipped is rejected', async () => {
  const base = vectors.find((v) => v.name === 'three_records');
  assert.ok(base, 'needs the three_records vector');
  const flipped = base.text.replace(/^(ciphertext: [0-9a-fA-F]{10})([0-9a-fA-F])/m, (_, head, d) =>
    head + (d.toLowerCase() === '0' ? '1' : '0'));
  await assert.rejects(checkInWasm(flipped), /three_records: open failed: record_auth_failed \(record 0\)/);
});

