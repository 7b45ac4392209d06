// Opening a sealed thumbnail (docs/FORMAT.md §10) with Node's own HKDF, HMAC and
// AES-GCM, written from the document: the independent implementation the thumbnail
// vectors and the room page's thumbnails are checked with.
import { createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/** Opens a sealed thumbnail as §10 says, or throws an Error whose message is the code. */
export function openThumbnail(fileKey, header, sealed) {
  const salt = header.subarray(12, 44);
  const derive = (info) => Buffer.from(hkdfSync("sha256", fileKey, salt, Buffer.from(info), 32));
  const commitment = createHmac("sha256", derive("sealdrop/v2/commit")).update(header.subarray(0, 44)).digest();
  if (!timingSafeEqual(commitment, header.subarray(44, 76))) throw new Error("key_commitment_failed");
  if (sealed.length < 29 || sealed.length > 12 + 65536 + 16) throw new Error("invalid_thumbnail");
  const decipher = createDecipheriv("aes-256-gcm", derive("sealdrop/v2/thumbnail"), sealed.subarray(0, 12));
  decipher.setAAD(header);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
  } catch {
    throw new Error("thumbnail_auth_failed");
  }
}
