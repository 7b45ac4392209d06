// Runs every test vector of docs/FORMAT.md §9 (tests/vectors/*.txt) through the
// independent JavaScript implementation (tests/pages/webcrypto-format.js) inside headless
// Chromium, so that the WebCrypto a real browser ships is what must agree with the
// Rust implementation, not Node's; then through the Rust implementation compiled to
// wasm32, natively and with the records sealed and opened by each backend of the
// client's file cipher (WebCrypto and aes-gcm), records and metadata, in a page and in a dedicated Worker.

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
  'default_record_size_one_byte', 'metadata_name_at_limit',
  'header_short', 'header_long', 'v1_header', 'bad_magic', 'unsupported_version',
  'unknown_suite', 'nonzero_reserved', 'record_size_too_small', 'record_size_too_large',
  'header_errors_length_first', 'header_errors_magic_before_version',
  'header_errors_version_before_rest',
  'wrong_commitment', 'wrong_header_salt', 'wrong_header_record_size',
  'commitment_fails_records_open',
  'tampered_tag', 'tampered_ciphertext', 'swapped_records', 'dropped_last_record',
  'extra_record', 'other_header_same_key', 'other_record_size_same_key',
  'empty_record_appended', 'short_section', 'short_last_record',
  'known_length_cut_inside_record', 'known_length_cut_at_boundary', 'known_length_extra_bytes',
  'tampered_metadata', 'noncanonical_metadata', 'metadata_too_short', 'metadata_too_long',
  'metadata_padding_not_minimal', 'metadata_name_too_long', 'metadata_type_too_long',
  'link_good', 'link_good_with_hash', 'link_wrong_prefix', 'link_short', 'link_long',
  'link_noncanonical_last_char', 'link_bad_alphabet',
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

// A checker that cannot fail proves nothing: each implementation must reject every one
// of these vectors, each changed in one place that a lax checker could miss.
const flipHexDigit = (d) => (d.toLowerCase() === '0' ? '1' : '0');
const CONTROLS = [
  ['a success vector with a ciphertext hex digit flipped', 'three_records',
    (t) => t.replace(/^(ciphertext: [0-9a-f]{10})([0-9a-f])/m, (_, head, d) => head + flipHexDigit(d))],
  ['a success vector with its commitment\'s last hex digit flipped', 'three_records',
    (t) => t.replace(/^(header: [0-9a-f]{151})([0-9a-f])$/m, (_, head, d) => head + flipHexDigit(d))],
  ['a success vector whose metadata name is not what it seals', 'one_byte',
    (t) => t.replace(/^metadata_name: "/m, 'metadata_name: "x')],
  ['the key that opens the records, expected to fail only at a record', 'commitment_fails_records_open',
    (t) => t.replace('error: key_commitment_failed', 'error: record_auth_failed\nrecord: 0')],
  ['a truncation expecting another record', 'dropped_last_record',
    (t) => t.replace(/^record: 1$/m, 'record: 2')],
  ['a known-length cut read without its known length', 'known_length_cut_at_boundary',
    (t) => t.replace(/^section_length: .*\n/m, '')],
  ['metadata over the limit expected to authenticate-fail', 'metadata_type_too_long',
    (t) => t.replace('error: invalid_metadata', 'error: metadata_auth_failed')],
  ['a good link with another key', 'link_good',
    (t) => t.replace(/^(file_key: )([0-9a-f])/m, (_, head, d) => head + flipHexDigit(d))],
  ['a bad link expected to parse', 'link_bad_alphabet',
    (t) => t.replace(/^expect: failure\nerror: invalid_link$/m, 'expect: success\nfile_key: ' + '00'.repeat(32))],
  ['a vector with a misspelt key', 'tampered_tag',
    (t) => t.replace(/^record: /m, 'recrod: ')],
];

function controlText(base, change) {
  const v = vectors.find((x) => x.name === base);
  assert.ok(v, `needs the ${base} vector`);
  const changed = change(v.text);
  assert.notEqual(changed, v.text, `the change to ${base} changed nothing`);
  return changed;
}

for (const [what, base, change] of CONTROLS) {
  test(`negative control (JS): ${what} is rejected`, async () => {
    await assert.rejects(checkInBrowser(controlText(base, change)), (e) => {
      assert.match(e.message, new RegExp(`${base}|unknown key`));
      return true;
    });
  });
}

// The same vectors through the Rust implementation compiled to wasm32: the client crate
// built with its `conformance` feature (tests/pages/conformance, from scripts/build.sh),
// whose checkVector hook runs the protocol crate's own runner. The published package
// (client-wasm/pkg) has no such hook (tests/package.test.mjs).
function checkInWasm(text) {
  return page.evaluate(async ([src, t]) => {
    const m = await import(src);
    await m.default();
    return m.checkVector(t);
  }, [`${server.url}/test/conformance/sealdrop_conformance.js`, text]);
}

for (const v of vectors) {
  test(`wasm vector ${v.name ?? v.file}`, async () => {
    assert.deepEqual(await checkInWasm(v.text), { name: v.name, ok: true });
  });
}

for (const [what, base, change] of CONTROLS) {
  test(`negative control (wasm): ${what} is rejected`, async () => {
    await assert.rejects(checkInWasm(controlText(base, change)), (e) => {
      assert.match(e.message, new RegExp(`${base}|unknown key`));
      return true;
    });
  });
}

// The same vectors with the records and metadata of every stream vector sealed and opened
// by the client's async file cipher (client-wasm/src/cipher.rs) on each of its backends:
// both must give exactly the vectors' bytes and errors.
const BACKENDS = ['webcrypto', 'aes-gcm'];

function checkWithBackend(text, backend) {
  return page.evaluate(async ([src, t, b]) => {
    const m = await import(src);
    await m.default();
    return m.checkVectorWith(t, b);
  }, [`${server.url}/test/conformance/sealdrop_conformance.js`, text, backend]);
}

for (const backend of BACKENDS) {
  for (const v of vectors) {
    test(`wasm ${backend} vector ${v.name ?? v.file}`, async () => {
      assert.deepEqual(await checkWithBackend(v.text, backend), { name: v.name, ok: true });
    });
  }

  for (const [what, base, change] of CONTROLS) {
    test(`negative control (wasm ${backend}): ${what} is rejected`, async () => {
      await assert.rejects(checkWithBackend(controlText(base, change), backend), (e) => {
        assert.match(e.message, new RegExp(`${base}|unknown key`));
        return true;
      });
    });
  }
}

test('the file cipher picks WebCrypto on a secure origin', async () => {
  const backend = await page.evaluate(async (src) => {
    const m = await import(src);
    await m.default();
    return m.cipherBackend();
  }, `${server.url}/test/conformance/sealdrop_conformance.js`);
  assert.equal(backend, 'webcrypto');
});

test('in a dedicated Worker the WebCrypto backend runs every stream vector', async () => {
  const streams = vectors.filter((v) => /^kind: stream$/m.test(v.text));
  assert.ok(streams.length > 30, 'the stream vectors');
  const results = await page.evaluate(async ([src, texts]) => {
    const body = `
      import init, { checkVectorWith, cipherBackend } from ${JSON.stringify(src)};
      onmessage = async ({ data }) => {
        await init();
        const results = [];
        for (const text of data) {
          try {
            results.push(await checkVectorWith(text, 'webcrypto'));
          } catch (e) {
            results.push({ error: e.message });
          }
        }
        postMessage({ backend: cipherBackend(), window: typeof window, results });
      };`;
    const url = URL.createObjectURL(new Blob([body], { type: 'text/javascript' }));
    const worker = new Worker(url, { type: 'module' });
    try {
      return await new Promise((resolve, reject) => {
        worker.onmessage = ({ data }) => resolve(data);
        worker.onerror = (e) => reject(new Error(e.message));
        worker.postMessage(texts);
      });
    } finally {
      worker.terminate();
    }
  }, [`${server.url}/test/conformance/sealdrop_conformance.js`, streams.map((v) => v.text)]);
  assert.equal(results.window, 'undefined', 'ran in a Worker');
  assert.equal(results.backend, 'webcrypto');
  assert.deepEqual(results.results, streams.map((v) => ({ name: v.name, ok: true })));
});

test('on an insecure origin (no crypto.subtle) the file cipher falls back to aes-gcm', async () => {
  // A hostname that is not localhost is not a secure context over plain http: the page
  // has no crypto.subtle. The browser's requests to it are answered from the test server.
  const insecure = 'http://sealdrop-insecure.test';
  const other = await browser.newPage();
  try {
    await other.route(`${insecure}/**`, async (route) => {
      const { pathname } = new URL(route.request().url());
      await route.fulfill({ response: await route.fetch({ url: `${server.url}${pathname}` }) });
    });
    await other.goto(`${insecure}/test/blank.html`);
    const found = await other.evaluate(async (src) => {
      const m = await import(src);
      await m.default();
      return { secure: isSecureContext, subtle: typeof crypto.subtle, backend: m.cipherBackend() };
    }, `${insecure}/test/conformance/sealdrop_conformance.js`);
    assert.deepEqual(found, { secure: false, subtle: 'undefined', backend: 'aes-gcm' });
    const threeRecords = vectors.find((v) => v.name === 'three_records');
    const check = (backend) => other.evaluate(async ([src, t, b]) => {
      const m = await import(src);
      await m.default();
      return m.checkVectorWith(t, b);
    }, [`${insecure}/test/conformance/sealdrop_conformance.js`, threeRecords.text, backend]);
    assert.deepEqual(await check('aes-gcm'), { name: 'three_records', ok: true });
    await assert.rejects(check('webcrypto'), /no cipher backend "webcrypto"/);
  } finally {
    await other.close();
  }
});
