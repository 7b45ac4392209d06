// Independent implementation of the sealdrop v2 encrypted stream format
// (docs/FORMAT.md) on the browser's WebCrypto, written from the document alone.
//
// It exists so that two implementations (this one and the Rust one in protocol/)
// must agree on tests/vectors/: a misreading of the spec in either shows up as a
// failing vector instead of as files that only one side can open.
//
// Browser APIs only (crypto.subtle, crypto.getRandomValues, TextEncoder/Decoder); no
// dependencies. Reader errors are `Error`s with `.code` set to the exact strings of
// FORMAT.md §3-§8 and `.record` set where the error names a record. Misuse by the
// caller (wrong types, a writer asked for an impossible record) throws TypeError or
// RangeError, which have no `.code`.

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

export const HEADER_SIZE = 76;
export const COMMITTED_SIZE = 44; // header[0..44], what the commitment covers
export const TAG_SIZE = 16;
export const NONCE_SIZE = 12;
export const FILE_KEY_SIZE = 32;
export const MIN_RECORD_SIZE = 16;
export const MAX_RECORD_SIZE = 16 * 1024 * 1024;
export const DEFAULT_RECORD_SIZE = 1024 * 1024;
export const METADATA_PAD = 64;
export const METADATA_MAX_NAME = 1024;
export const METADATA_MAX_TYPE = 255;
export const METADATA_MAX_PLAINTEXT = 2048;
export const METADATA_MIN_SEALED = NONCE_SIZE + TAG_SIZE; // 28
export const METADATA_MAX_SEALED = NONCE_SIZE + METADATA_MAX_PLAINTEXT + TAG_SIZE; // 2076

const MAGIC = [0x53, 0x44, 0x52, 0x50]; // "SDRP"
const VERSION = 2;
const SUITE = 1;
const INFO_CONTENT = utf8.encode('sealdrop/v2/content');
const INFO_METADATA = utf8.encode('sealdrop/v2/metadata');
const INFO_COMMIT = utf8.encode('sealdrop/v2/commit');
const LINK_PREFIX = 'k1.';

/** The reader error codes of FORMAT.md §6 (the only values `.code` takes on reads). */
export const ERROR_CODES = Object.freeze([
  'invalid_link', 'invalid_header', 'unsupported_version', 'key_commitment_failed',
  'invalid_length', 'record_auth_failed', 'truncated', 'trailing_data',
  'invalid_metadata', 'metadata_auth_failed',
]);
/** The three codes that name a record (§6). */
export const RECORD_CODES = Object.freeze(['record_auth_failed', 'truncated', 'trailing_data']);

/** Makes an Error carrying a spec error code and, where one applies, the record index. */
export function formatError(code, message, record) {
  const e = new Error(`${code}: ${message}`);
  e.code = code;
  if (record !== undefined) e.record = record;
  return e;
}

// ---------------------------------------------------------------------------
// §3 Header

/**
 * Parses and checks a 76-byte header in the order of §3 (length, magic, version, suite,
 * then reserved bytes and R); throws invalid_header / unsupported_version. The
 * commitment needs the file key: deriveKeys() checks it.
 */
export function parseHeader(bytes) {
  bytes = asBytes(bytes, 'header');
  if (bytes.length !== HEADER_SIZE) {
    throw formatError('invalid_header', `header is ${bytes.length} bytes, not ${HEADER_SIZE}`);
  }
  if (MAGIC.some((b, i) => bytes[i] !== b)) {
    throw formatError('invalid_header', 'bad magic (expected "SDRP")');
  }
  if (bytes[4] !== VERSION) throw formatError('unsupported_version', `version ${bytes[4]}`);
  if (bytes[5] !== SUITE) throw formatError('unsupported_version', `suite ${bytes[5]}`);
  if (bytes[6] !== 0 || bytes[7] !== 0) {
    throw formatError('invalid_header', 'reserved field is not zero');
  }
  const recordSize = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE).getUint32(8);
  if (recordSize < MIN_RECORD_SIZE || recordSize > MAX_RECORD_SIZE) {
    throw formatError('invalid_header', `record size ${recordSize} out of range`);
  }
  return Object.freeze({
    version: VERSION,
    suite: SUITE,
    recordSize,
    salt: bytes.slice(12, 44),
    commitment: bytes.slice(COMMITTED_SIZE, HEADER_SIZE),
    // A private copy: the header is the AAD of everything, it must not change under us.
    bytes: bytes.slice(),
  });
}

/**
 * Encodes a v2 header for the file key K, commitment included (§3, §4); salt defaults to
 * 32 fresh random bytes, R to 1 MiB.
 */
export async function encodeHeader(fileKey, { recordSize = DEFAULT_RECORD_SIZE, salt } = {}) {
  if (!Number.isInteger(recordSize) || recordSize < MIN_RECORD_SIZE || recordSize > MAX_RECORD_SIZE) {
    throw new RangeError(`record size must be an integer in ${MIN_RECORD_SIZE}..${MAX_RECORD_SIZE}`);
  }
  salt = salt === undefined ? randomBytes(32) : asBytes(salt, 'salt');
  if (salt.length !== 32) throw new RangeError('salt must be 32 bytes');
  const out = new Uint8Array(HEADER_SIZE);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = SUITE;
  new DataView(out.buffer).setUint32(8, recordSize);
  out.set(salt, 12);
  const commitKey = await hkdfKey(await importFileKey(fileKey), salt, INFO_COMMIT, COMMIT_KEY_ALGORITHM, ['sign']);
  const committed = out.subarray(0, COMMITTED_SIZE);
  out.set(new Uint8Array(await subtle.sign('HMAC', commitKey, committed)), COMMITTED_SIZE);
  return out;
}

// Lets every function take either raw header bytes or a parseHeader() result.
function asHeader(header) {
  if (header instanceof Uint8Array || header instanceof ArrayBuffer) return parseHeader(header);
  if (header && header.bytes instanceof Uint8Array) return header;
  throw new TypeError('header must be bytes or a parseHeader() result');
}

// ---------------------------------------------------------------------------
// §4 Keys

const AES_KEY_ALGORITHM = { name: 'AES-GCM', length: 256 };
// The commit key is the 32 bytes HKDF gives, used as an HMAC-SHA256 key.
const COMMIT_KEY_ALGORITHM = { name: 'HMAC', hash: 'SHA-256', length: 256 };

async function importFileKey(fileKey) {
  fileKey = asBytes(fileKey, 'file key');
  if (fileKey.length !== FILE_KEY_SIZE) throw new RangeError('file key must be 32 bytes');
  return subtle.importKey('raw', fileKey, 'HKDF', false, ['deriveKey']);
}

// HKDF-SHA256(IKM = K, salt, info, L = 32) as a non-extractable WebCrypto key.
function hkdfKey(ikm, salt, info, algorithm, usages) {
  return subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt, info }, ikm, algorithm, false, usages);
}

/**
 * Checks the header's commitment with K (§4: HMAC verification, constant time), then
 * derives the content and metadata AES-256-GCM keys (non-extractable). Throws
 * key_commitment_failed, before any key that opens anything exists, if the header does
 * not commit to K.
 */
export async function deriveKeys(fileKey, header) {
  const h = asHeader(header);
  const ikm = await importFileKey(fileKey);
  const commitKey = await hkdfKey(ikm, h.salt, INFO_COMMIT, COMMIT_KEY_ALGORITHM, ['verify']);
  const committed = h.bytes.subarray(0, COMMITTED_SIZE);
  if (!(await subtle.verify('HMAC', commitKey, h.commitment, committed))) {
    throw formatError('key_commitment_failed', 'the header does not commit to this key');
  }
  const usages = ['encrypt', 'decrypt'];
  const [contentKey, metadataKey] = await Promise.all([
    hkdfKey(ikm, h.salt, INFO_CONTENT, AES_KEY_ALGORITHM, usages),
    hkdfKey(ikm, h.salt, INFO_METADATA, AES_KEY_ALGORITHM, usages),
  ]);
  return { contentKey, metadataKey };
}

// ---------------------------------------------------------------------------
// §5 Records

const MAX_INDEX = (1n << 88n) - 1n;

/** Returns nonce(i, last): i as 11 bytes big-endian || 0x01 if last else 0x00. */
export function recordNonce(index, last) {
  let i = typeof index === 'bigint' ? index : Number.isSafeInteger(index) ? BigInt(index) : -1n;
  if (i < 0n || i > MAX_INDEX) throw new RangeError('record index must be an integer in 0..2^88-1');
  const nonce = new Uint8Array(NONCE_SIZE);
  for (let p = 10; p >= 0; p--) {
    nonce[p] = Number(i & 0xffn);
    i >>= 8n;
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Seals one record's plaintext as record `index` (with the last flag); returns ciphertext || tag. */
export async function sealRecord(contentKey, header, index, last, plaintext) {
  const h = asHeader(header);
  plaintext = asBytes(plaintext, 'record plaintext');
  // A writer must not produce a record no reader would accept (§5 layout).
  const n = plaintext.length;
  if (n > h.recordSize) throw new RangeError(`record holds ${n} bytes, more than R = ${h.recordSize}`);
  if (!last && n !== h.recordSize) throw new RangeError('a record that is not the last must hold exactly R bytes');
  if (last && n === 0 && BigInt(index) !== 0n) throw new RangeError('only record 0 of an empty file may be empty');
  const ct = await subtle.encrypt(
    { name: 'AES-GCM', iv: recordNonce(index, last), additionalData: h.bytes, tagLength: 128 },
    contentKey,
    plaintext,
  );
  return new Uint8Array(ct);
}

// Opens one sealed record, or returns null if AES-GCM refuses it. Only an
// authentication failure (OperationError) becomes null; any other exception is a bug
// and propagates.
async function tryOpenRecord(contentKey, header, index, last, sealed) {
  try {
    const pt = await subtle.decrypt(
      { name: 'AES-GCM', iv: recordNonce(index, last), additionalData: header.bytes, tagLength: 128 },
      contentKey,
      sealed,
    );
    return new Uint8Array(pt);
  } catch (e) {
    if (e && e.name === 'OperationError') return null;
    throw e;
  }
}

// Whether a sealed record of this length can exist at this position (§5): a record
// that is not the last is exactly R + 16 bytes; the last is 16..R+16 bytes, and only
// record 0 can be 16 bytes (empty). An impossible record is never tried.
function possibleRecordLength(header, index, last, length) {
  const full = header.recordSize + TAG_SIZE;
  if (!last) return length === full;
  if (length < TAG_SIZE || length > full) return false;
  return length > TAG_SIZE || BigInt(index) === 0n;
}

/** Opens one sealed record (e.g. fetched with a Range request); throws record_auth_failed with .record. */
export async function openRecord(contentKey, header, index, last, sealed) {
  const h = asHeader(header);
  sealed = asBytes(sealed, 'sealed record');
  const pt = possibleRecordLength(h, index, last, sealed.length)
    ? await tryOpenRecord(contentKey, h, index, last, sealed)
    : null;
  if (pt === null) throw formatError('record_auth_failed', `record ${index} did not authenticate`, Number(index));
  return pt;
}

// ---------------------------------------------------------------------------
// §6 Reading a whole record section

/** Computes the §6 layout of a record section of `sectionLength` bytes; throws invalid_length. */
export function sectionLayout(recordSize, sectionLength) {
  const C = sectionLength;
  if (!Number.isSafeInteger(C) || C < 0) throw new RangeError('section length must be a non-negative integer');
  if (C < TAG_SIZE) throw formatError('invalid_length', `record section is ${C} bytes, less than one tag`);
  const sealedSize = recordSize + TAG_SIZE;
  const count = Math.ceil(C / sealedSize);
  const lastSealedLength = C - (count - 1) * sealedSize;
  // §6 step 2 says the last sealed record "is between 16 and R + 16 bytes", but that
  // does not follow from C for C mod (R+16) in 1..15: such a tail cannot hold a tag,
  // so it is treated like step 1 (too short for a record). See the report.
  if (lastSealedLength < TAG_SIZE) {
    throw formatError('invalid_length', `last sealed record would be ${lastSealedLength} bytes, less than one tag`);
  }
  if (lastSealedLength === TAG_SIZE && count > 1) {
    throw formatError('invalid_length', 'empty last record after other records (only an empty file has an empty record)');
  }
  return { count, sealedSize, lastSealedLength, plaintextLength: C - TAG_SIZE * count };
}

/**
 * Opens a whole record section and returns the plaintext only if every record
 * authenticated; otherwise throws the §6 error (refined with the opposite last flag).
 */
export async function openSection(contentKey, header, section) {
  section = asBytes(section, 'record section');
  return openKnownLength(contentKey, header, section.length, section);
}

/**
 * Opens a record section whose length C the reader was told before the bytes arrived
 * (§6): the layout comes from C alone. Input that ends early is `truncated` at the first
 * record that did not arrive whole; input past C is `trailing_data` at N. Records that
 * did arrive are checked first, in order.
 */
export async function openKnownLength(contentKey, header, sectionLength, bytes) {
  const h = asHeader(header);
  bytes = asBytes(bytes, 'record section');
  const { count, sealedSize, lastSealedLength, plaintextLength } = sectionLayout(h.recordSize, sectionLength);
  const out = new Uint8Array(plaintextLength);
  try {
    for (let i = 0; i < count; i++) {
      const last = i === count - 1;
      const start = i * sealedSize;
      const end = start + (last ? lastSealedLength : sealedSize);
      if (end > bytes.length) {
        throw formatError('truncated', `the input ended before record ${i} arrived whole`, i);
      }
      const sealed = bytes.subarray(start, end);
      const pt = await tryOpenRecord(contentKey, h, i, last, sealed);
      if (pt === null) throw await refineFailure(contentKey, h, i, last, sealed);
      out.set(pt, i * h.recordSize);
    }
    if (bytes.length > sectionLength) {
      throw formatError('trailing_data', `${bytes.length - sectionLength} bytes follow the ${sectionLength}-byte section`, count);
    }
  } catch (e) {
    out.fill(0); // nothing that was opened before the failure leaves this function
    throw e;
  }
  return out;
}

// The §6 table: one more attempt with the opposite flag decides between truncated,
// trailing_data and record_auth_failed. The plaintext of that attempt is discarded.
async function refineFailure(contentKey, header, index, last, sealed) {
  const other = !last;
  if (possibleRecordLength(header, index, other, sealed.length)) {
    const pt = await tryOpenRecord(contentKey, header, index, other, sealed);
    if (pt !== null) {
      pt.fill(0);
      return last
        ? formatError('truncated', `record ${index} is a full record that is not the last: the stream was cut`, index)
        : formatError('trailing_data', `record ${index} is the real last record and data follows it`, index);
    }
  }
  return formatError('record_auth_failed', `record ${index} did not authenticate`, index);
}

/** Seals a whole plaintext into a record section: N = max(1, ceil(L/R)) records. */
export async function sealSection(contentKey, header, plaintext) {
  const h = asHeader(header);
  plaintext = asBytes(plaintext, 'plaintext');
  const R = h.recordSize;
  const L = plaintext.length;
  const count = Math.max(1, Math.ceil(L / R));
  const out = new Uint8Array(L + TAG_SIZE * count);
  for (let i = 0; i < count; i++) {
    const rec = plaintext.subarray(i * R, Math.min((i + 1) * R, L));
    out.set(await sealRecord(contentKey, h, i, i === count - 1, rec), i * (R + TAG_SIZE));
  }
  return out;
}

/** Opens `header || section` pieces with the file key K: parse header, check the commitment, open section. */
export async function openStream(fileKey, headerBytes, section) {
  const h = parseHeader(headerBytes);
  const { contentKey } = await deriveKeys(fileKey, h);
  return openSection(contentKey, h, section);
}

/** Like openStream, for a reader told the section length before the bytes arrive (§6). */
export async function openStreamKnownLength(fileKey, headerBytes, sectionLength, bytes) {
  const h = parseHeader(headerBytes);
  const { contentKey } = await deriveKeys(fileKey, h);
  return openKnownLength(contentKey, h, sectionLength, bytes);
}

/** Seals a plaintext under K and the given header bytes; returns the record section. */
export async function sealStream(fileKey, headerBytes, plaintext) {
  const h = parseHeader(headerBytes);
  const { contentKey } = await deriveKeys(fileKey, h);
  return sealSection(contentKey, h, plaintext);
}

// ---------------------------------------------------------------------------
// §7 Metadata

// The one JSON form of §7: keys name then type, no whitespace. JSON.stringify of a
// well-formed string escapes exactly '"', '\' and U+0000..U+001F (\b \t \n \f \r or
// lowercase \u00xx) and nothing else, the same as serde_json's default writer.
function metadataJson(name, type) {
  return `{"name":${JSON.stringify(name)},"type":${JSON.stringify(type)}}`;
}

/** Encodes {name, type} as the §7 padded plaintext; throws metadata_too_large over a limit. */
export function encodeMetadataPlaintext({ name, type }) {
  if (typeof name !== 'string' || typeof type !== 'string') throw new TypeError('name and type must be strings');
  // A lone surrogate has no UTF-8 form (TextEncoder would silently make it U+FFFD).
  if (!isWellFormed(name) || !isWellFormed(type)) {
    throw formatError('invalid_metadata', 'name or type is not well-formed Unicode (lone surrogate)');
  }
  const nameBytes = utf8.encode(name).length;
  const typeBytes = utf8.encode(type).length;
  if (nameBytes > METADATA_MAX_NAME) throw formatError('metadata_too_large', `name is ${nameBytes} bytes of UTF-8`);
  if (typeBytes > METADATA_MAX_TYPE) throw formatError('metadata_too_large', `type is ${typeBytes} bytes of UTF-8`);
  const json = utf8.encode(metadataJson(name, type));
  // "up to the next multiple of 64": a JSON that is already a multiple gets no padding.
  const padded = Math.ceil(json.length / METADATA_PAD) * METADATA_PAD;
  if (padded > METADATA_MAX_PLAINTEXT) throw formatError('metadata_too_large', `padded metadata is ${padded} bytes`);
  const out = new Uint8Array(padded).fill(0x20);
  out.set(json);
  return out;
}

/** Decodes a §7 padded plaintext to {name, type}; throws invalid_metadata unless it is exactly that form. */
export function decodeMetadataPlaintext(bytes) {
  bytes = asBytes(bytes, 'metadata plaintext');
  const bad = (why) => formatError('invalid_metadata', why);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw bad('not UTF-8');
  }
  let value;
  try {
    value = JSON.parse(text.replace(/ +$/, ''));
  } catch {
    throw bad('not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad('not a JSON object');
  const keys = Object.keys(value);
  if (keys.length !== 2 || keys[0] !== 'name' || keys[1] !== 'type') throw bad('keys are not exactly "name","type"');
  const { name, type } = value;
  if (typeof name !== 'string' || typeof type !== 'string') throw bad('name or type is not a string');
  // §7: a reader enforces the limits too, on the UTF-8 bytes of the decoded strings.
  if (utf8.encode(name).length > METADATA_MAX_NAME) throw bad('name is over 1,024 bytes of UTF-8');
  if (utf8.encode(type).length > METADATA_MAX_TYPE) throw bad('type is over 255 bytes of UTF-8');
  // Strict: the plaintext must be byte for byte what a writer produces (key order, no
  // whitespace, minimal padding, escapes). Anything else did not come from a writer
  // of this format, even if it authenticated.
  let canonical;
  try {
    canonical = encodeMetadataPlaintext({ name, type });
  } catch (e) {
    throw bad(`not writable metadata (${e.code || e.message})`);
  }
  if (!bytesEqual(canonical, bytes)) throw bad('not in the exact JSON form and padding of §7');
  return { name, type };
}

/** Seals {name, type} with the metadata key: nonce (random unless given, 12 bytes) || ciphertext || tag. */
export async function sealMetadata(metadataKey, header, meta, nonce) {
  const h = asHeader(header);
  nonce = nonce === undefined ? randomBytes(NONCE_SIZE) : asBytes(nonce, 'metadata nonce');
  if (nonce.length !== NONCE_SIZE) throw new RangeError('metadata nonce must be 12 bytes');
  const pt = encodeMetadataPlaintext(meta);
  const ct = new Uint8Array(await subtle.encrypt(
    { name: 'AES-GCM', iv: nonce, additionalData: h.bytes, tagLength: 128 }, metadataKey, pt,
  ));
  const out = new Uint8Array(NONCE_SIZE + ct.length);
  out.set(nonce);
  out.set(ct, NONCE_SIZE);
  return out;
}

/** Opens sealed metadata to {name, type}; throws invalid_metadata or metadata_auth_failed. */
export async function openMetadata(metadataKey, header, sealed) {
  const h = asHeader(header);
  sealed = asBytes(sealed, 'sealed metadata');
  if (sealed.length < METADATA_MIN_SEALED || sealed.length > METADATA_MAX_SEALED) {
    throw formatError('invalid_metadata', `sealed metadata is ${sealed.length} bytes, outside 28..2076`);
  }
  let pt;
  try {
    pt = new Uint8Array(await subtle.decrypt(
      { name: 'AES-GCM', iv: sealed.subarray(0, NONCE_SIZE), additionalData: h.bytes, tagLength: 128 },
      metadataKey,
      sealed.subarray(NONCE_SIZE),
    ));
  } catch (e) {
    if (e && e.name === 'OperationError') throw formatError('metadata_auth_failed', 'metadata did not authenticate');
    throw e;
  }
  return decodeMetadataPlaintext(pt);
}

// ---------------------------------------------------------------------------
// §8 The link

/** Encodes the link fragment (without '#') for a 32-byte file key: "k1." + base64url(K). */
export function encodeLinkFragment(fileKey) {
  fileKey = asBytes(fileKey, 'file key');
  if (fileKey.length !== FILE_KEY_SIZE) throw new RangeError('file key must be 32 bytes');
  return LINK_PREFIX + encodeBase64Url(fileKey);
}

/** Parses a link fragment ("k1.<43 base64url chars>", a leading '#' allowed) to K; throws invalid_link. */
export function parseLinkFragment(fragment) {
  if (typeof fragment !== 'string') throw formatError('invalid_link', 'fragment is not a string');
  const f = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  if (!f.startsWith(LINK_PREFIX)) throw formatError('invalid_link', 'fragment does not start with "k1."');
  const body = f.slice(LINK_PREFIX.length);
  if (body.length !== 43) throw formatError('invalid_link', `key is ${body.length} characters, not 43`);
  try {
    return decodeBase64Url(body); // canonical only: the 2 spare bits of the last char must be 0
  } catch {
    throw formatError('invalid_link', 'key is not canonical base64url');
  }
}

// ---------------------------------------------------------------------------
// Encodings (the metadata travels as standard base64, §7; the key as base64url, §8)

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function b64encode(bytes, alphabet, pad) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let c = 0; c < chars; c++) s += alphabet[(n >> (18 - 6 * c)) & 63];
    if (pad) s += '='.repeat(4 - chars);
  }
  return s;
}

// Strict: rejects characters outside the alphabet, wrong padding and non-zero spare
// bits, so that one byte string has exactly one accepted text.
function b64decode(text, alphabet, pad) {
  if (pad) {
    if (text.length % 4 !== 0) throw new TypeError('base64 length is not a multiple of 4');
    const m = /={0,2}$/.exec(text);
    text = text.slice(0, text.length - m[0].length);
  }
  if (text.length % 4 === 1) throw new TypeError('impossible base64 length');
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const ch of text) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new TypeError(`invalid base64 character ${JSON.stringify(ch)}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) throw new TypeError('non-zero spare bits in base64');
  return out;
}

/** Standard base64 with padding (RFC 4648 §4), as the API carries header and metadata. */
export function encodeBase64(bytes) { return b64encode(asBytes(bytes, 'bytes'), B64, true); }
/** Strict standard base64 decode; throws TypeError on any non-canonical input. */
export function decodeBase64(text) { return b64decode(text, B64, true); }
/** base64url without padding (RFC 4648 §5). */
export function encodeBase64Url(bytes) { return b64encode(asBytes(bytes, 'bytes'), B64URL, false); }
/** Strict base64url (no padding) decode; throws TypeError on any non-canonical input. */
export function decodeBase64Url(text) { return b64decode(text, B64URL, false); }

/** Lowercase hex of bytes. */
export function toHex(bytes) {
  return Array.from(asBytes(bytes, 'bytes'), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Strict hex decode (either case, even length); throws TypeError otherwise. */
export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new TypeError('not an even-length hex string');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// ---------------------------------------------------------------------------
// §9 Test vectors

const VECTOR_KEYS = [
  'name', 'kind', 'expect', 'error', 'record', 'file_key', 'header', 'section_length',
  'plaintext', 'ciphertext', 'metadata', 'metadata_nonce', 'metadata_name', 'metadata_type',
  'link',
];
const STREAM_CODES = ['invalid_header', 'unsupported_version', 'key_commitment_failed', 'invalid_length', ...RECORD_CODES];
const METADATA_CODES = ['metadata_auth_failed', 'invalid_metadata'];

/**
 * Parses one §9 vector file strictly: unknown or repeated keys, missing required
 * keys, keys that do not belong to the case's kind and outcome, and malformed values
 * are all errors, so that a typo can never silently skip a check.
 */
export function parseVector(text) {
  if (typeof text !== 'string') throw new TypeError('vector text must be a string');
  const raw = new Map();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop(); // the final newline
  lines.forEach((line0, n) => {
    const line = line0.endsWith('\r') ? line0.slice(0, -1) : line0;
    const where = `line ${n + 1}`;
    if (line.startsWith('#')) return;
    if (line === '') return; // §9: blank lines are ignored
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`vector ${where}: not "key: value": ${JSON.stringify(line)}`);
    const key = line.slice(0, colon);
    const rest = line.slice(colon + 1);
    if (!VECTOR_KEYS.includes(key)) throw new Error(`vector ${where}: unknown key ${JSON.stringify(key)}`);
    if (raw.has(key)) throw new Error(`vector ${where}: key ${key} repeated`);
    // "key: value" with one space; "key:" alone is an empty value (§9).
    if (rest !== '' && !rest.startsWith(' ')) throw new Error(`vector ${where}: no space after "${key}:"`);
    raw.set(key, rest.slice(1));
  });

  // Every field is taken at most once; whatever is left at the end does not belong.
  const take = (key) => {
    const value = raw.get(key);
    raw.delete(key);
    return value;
  };
  const need = (key) => {
    if (!raw.has(key)) throw new Error(`vector: missing key ${key}`);
    return take(key);
  };
  const hex = (key, size) => {
    let b;
    try {
      b = fromHex(need(key));
    } catch (e) {
      if (e instanceof TypeError) throw new Error(`vector: ${key} is not hex`);
      throw e;
    }
    if (size !== undefined && b.length !== size) throw new Error(`vector: ${key} is ${b.length} bytes, not ${size}`);
    return b;
  };
  const jsonString = (key) => {
    let s;
    try {
      s = JSON.parse(need(key));
    } catch {
      throw new Error(`vector: ${key} is not a JSON string`);
    }
    if (typeof s !== 'string') throw new Error(`vector: ${key} is not a JSON string`);
    return s;
  };
  const decimal = (key) => {
    const t = need(key);
    if (!/^(0|[1-9][0-9]*)$/.test(t)) throw new Error(`vector: ${key} is not a decimal number`);
    const n = Number(t);
    if (!Number.isSafeInteger(n)) throw new Error(`vector: ${key} is too large`);
    return n;
  };

  const v = { name: need('name') };
  if (!/^[a-z0-9_]+$/.test(v.name)) throw new Error(`vector: bad name ${JSON.stringify(v.name)}`);
  v.kind = need('kind');
  if (v.kind !== 'stream' && v.kind !== 'link') throw new Error(`vector ${v.name}: kind must be stream or link`);
  v.expect = need('expect');
  if (v.expect !== 'success' && v.expect !== 'failure') throw new Error(`vector ${v.name}: expect must be success or failure`);
  const success = v.expect === 'success';
  if (!success) {
    v.error = need('error');
    if (!ERROR_CODES.includes(v.error)) throw new Error(`vector ${v.name}: unknown error code ${JSON.stringify(v.error)}`);
    if (RECORD_CODES.includes(v.error)) v.record = decimal('record');
  }

  if (v.kind === 'stream') {
    v.fileKey = hex('file_key', FILE_KEY_SIZE);
    v.header = hex('header'); // not checked here: failure cases carry bad headers on purpose
    v.ciphertext = hex('ciphertext');
    if (raw.has('metadata')) v.metadata = { sealed: hex('metadata') };
    if (success) {
      v.plaintext = hex('plaintext');
      if (v.metadata) {
        v.metadata.nonce = hex('metadata_nonce', NONCE_SIZE);
        v.metadata.name = jsonString('metadata_name');
        v.metadata.type = jsonString('metadata_type');
      }
    } else if (raw.has('section_length')) {
      v.sectionLength = decimal('section_length');
    }
  } else {
    v.link = need('link');
    if (success) v.fileKey = hex('file_key', FILE_KEY_SIZE);
  }
  const leftover = [...raw.keys()];
  if (leftover.length) {
    throw new Error(`vector ${v.name}: ${leftover.join(', ')} do(es) not belong to a ${v.kind} ${v.expect} case`);
  }
  return v;
}

/**
 * Runs everything §9 requires for one vector; resolves to { name, ok: true } or
 * rejects with an Error saying exactly what differed.
 *
 * Stream success: make the header from K, R and salt → exact header; open → exact
 * plaintext; seal → exact ciphertext; and (when present) metadata open → name/type and
 * seal under the nonce → exact bytes. Stream failure: header (commitment included),
 * records (told section_length first, when given), then metadata; the first error must
 * have exactly the code and record expected. Link: parse → K and K → the link, or
 * invalid_link.
 */
export async function checkVector(text) {
  const v = parseVector(text);
  const fail = (msg) => new Error(`vector ${v.name}: ${msg}`);
  if (v.kind === 'link') return checkLinkVector(v, fail);
  if (v.expect === 'success') {
    if (v.header.length < COMMITTED_SIZE) throw fail('a success case needs a whole header');
    const recordSize = new DataView(v.header.buffer, v.header.byteOffset).getUint32(8);
    const made = await encodeHeader(v.fileKey, { recordSize, salt: v.header.slice(12, 44) });
    compareBytes(fail, 'made header', v.header, made);
    let pt;
    try {
      pt = await openStream(v.fileKey, v.header, v.ciphertext);
    } catch (e) {
      throw fail(`open failed (${describeError(e)}), expected success`);
    }
    compareBytes(fail, 'opened plaintext', v.plaintext, pt);
    const ct = await sealStream(v.fileKey, v.header, v.plaintext);
    compareBytes(fail, 'sealed ciphertext', v.ciphertext, ct);
    if (v.metadata) {
      const { metadataKey } = await deriveKeys(v.fileKey, v.header);
      let meta;
      try {
        meta = await openMetadata(metadataKey, v.header, v.metadata.sealed);
      } catch (e) {
        throw fail(`metadata open failed (${describeError(e)}), expected success`);
      }
      if (meta.name !== v.metadata.name) throw fail(`metadata name: expected ${JSON.stringify(v.metadata.name)}, got ${JSON.stringify(meta.name)}`);
      if (meta.type !== v.metadata.type) throw fail(`metadata type: expected ${JSON.stringify(v.metadata.type)}, got ${JSON.stringify(meta.type)}`);
      const sealed = await sealMetadata(metadataKey, v.header, v.metadata, v.metadata.nonce);
      compareBytes(fail, 'sealed metadata', v.metadata.sealed, sealed);
    }
    return { name: v.name, ok: true };
  }

  if (!STREAM_CODES.includes(v.error) && !METADATA_CODES.includes(v.error)) {
    throw fail(`${v.error} is not an error a stream case can expect`);
  }
  return expectFailure(v, fail, async () => {
    const pt = v.sectionLength === undefined
      ? await openStream(v.fileKey, v.header, v.ciphertext)
      : await openStreamKnownLength(v.fileKey, v.header, v.sectionLength, v.ciphertext);
    if (!v.metadata) return `the stream opened to ${pt.length} bytes of plaintext`;
    const { metadataKey } = await deriveKeys(v.fileKey, v.header);
    const m = await openMetadata(metadataKey, v.header, v.metadata.sealed);
    return `everything opened, the metadata to ${JSON.stringify(m)}`;
  });
}

async function checkLinkVector(v, fail) {
  if (v.expect === 'failure') {
    return expectFailure(v, fail, async () => {
      parseLinkFragment(v.link);
      return 'the link parsed to a key';
    });
  }
  let key;
  try {
    key = parseLinkFragment(v.link);
  } catch (e) {
    throw fail(`parsing the link failed (${describeError(e)}), expected success`);
  }
  compareBytes(fail, 'key from the link', v.fileKey, key);
  const encoded = encodeLinkFragment(v.fileKey);
  const expected = v.link.startsWith('#') ? v.link.slice(1) : v.link;
  if (encoded !== expected) throw fail(`the key encodes to ${JSON.stringify(encoded)}`);
  return { name: v.name, ok: true };
}

// Runs `attempt` (which returns a description of what opened) and requires the exact
// error of the vector: its code, and its record (none when the vector has none).
async function expectFailure(v, fail, attempt) {
  let got;
  try {
    got = await attempt();
  } catch (e) {
    if (typeof e?.code !== 'string') throw fail(`expected ${v.error}, got an exception without a code: ${describeError(e)}`);
    if (e.code !== v.error || e.record !== v.record) {
      throw fail(`expected ${describeCode(v.error, v.record)}, got ${describeCode(e.code, e.record)}`);
    }
    return { name: v.name, ok: true };
  }
  throw fail(`expected ${describeCode(v.error, v.record)}, but ${got}`);
}

// ---------------------------------------------------------------------------
// Helpers

function describeCode(code, record) {
  return record === undefined ? code : `${code} at record ${record}`;
}

function describeError(e) {
  if (e && typeof e.code === 'string') return describeCode(e.code, e.record);
  return String(e && e.message ? e.message : e);
}

function compareBytes(fail, what, expected, actual) {
  if (bytesEqual(expected, actual)) return;
  const n = Math.min(expected.length, actual.length);
  let i = 0;
  while (i < n && expected[i] === actual[i]) i++;
  const at = i < n
    ? `first difference at byte ${i}: expected ${hexByte(expected[i])}, got ${hexByte(actual[i])}`
    : `identical over the first ${n} bytes`;
  throw fail(`${what} differs: expected ${expected.length} bytes, got ${actual.length}; ${at}`);
}

function hexByte(b) { return `0x${b.toString(16).padStart(2, '0')}`; }

function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function randomBytes(n) { return globalThis.crypto.getRandomValues(new Uint8Array(n)); }

function isWellFormed(s) {
  if (typeof s.isWellFormed === 'function') return s.isWellFormed();
  return !/\p{Surrogate}/u.test(s); // a valid pair is one code point under the u flag
}

function asBytes(x, what) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError(`${what} must be bytes (Uint8Array)`);
}
