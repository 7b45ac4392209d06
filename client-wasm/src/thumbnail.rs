//! Thumbnails (docs/FORMAT.md §10): a small image the page made (an image's, or a
//! video's first frame), sealed here under a key derived from the file key, stored
//! beside the file (`PUT /api/uploads/{fileId}/thumbnail`), and opened by the room's
//! members (`GET /api/rooms/{roomId}/files/{fileId}/thumbnail`: the file's header and
//! the sealed thumbnail). The server holds only the sealed bytes.

use js_sys::{Array, ArrayBuffer, Uint8Array};
use sealdrop_protocol::format::{
    FileKey, HEADER_LEN, Header, MAX_SEALED_THUMBNAIL, MAX_THUMBNAIL_LEN, THUMBNAIL_NONCE_LEN,
    open_thumbnail, seal_thumbnail,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag};

use crate::error::ClientError;
use crate::http::Http;
use crate::platform;

/// Checks a `thumbnail` option before the upload starts.
pub(crate) fn check(image: &Blob) -> Result<(), ClientError> {
    let size = image.size();
    if size < 1.0 || size > MAX_THUMBNAIL_LEN as f64 {
        return Err(ClientError::InvalidOption(format!(
            "the thumbnail is {size} bytes: 1 to {MAX_THUMBNAIL_LEN} (make it at most 256 px, WebP or JPEG)"
        )));
    }
    Ok(())
}

/// Seals `image` for the file and stores it beside the file (owner token).
pub(crate) async fn send(
    http: &Http,
    url: &str,
    owner_token: &str,
    key: &FileKey,
    header: &Header,
    image: &Blob,
) -> Result<(), ClientError> {
    let buffer: ArrayBuffer = JsFuture::from(image.array_buffer())
        .await
        .map_err(|e| ClientError::ReadFailed(platform::describe(&e)))?
        .unchecked_into();
    let bytes = Uint8Array::new(&buffer).to_vec();
    let mut nonce = [0u8; THUMBNAIL_NONCE_LEN];
    platform::random_bytes(&mut nonce)?;
    let sealed = seal_thumbnail(key, header, nonce, &bytes)?;
    http.bytes("PUT thumbnail", "PUT", url, owner_token, Some(&sealed), 0)
        .await
        .map(|_| ())
}

/// Fetches and opens a room file's thumbnail with the room JWT: a `Blob` of the image
/// (its type sniffed: WebP, JPEG, PNG), or `None` when the file has none.
pub(crate) async fn fetch(
    http: &Http,
    url: &str,
    jwt: &str,
    key: &FileKey,
) -> Result<Option<Blob>, ClientError> {
    let limit = (HEADER_LEN + MAX_SEALED_THUMBNAIL) as u64;
    let body = match http
        .bytes("GET thumbnail", "GET", url, jwt, None, limit)
        .await
    {
        Ok(body) => body,
        Err(ClientError::Api { code, .. }) if code == "thumbnail_not_found" => return Ok(None),
        Err(e) => return Err(e),
    };
    if body.len() < HEADER_LEN {
        return Err(ClientError::InvalidResponse(
            "a thumbnail answer is shorter than a header".into(),
        ));
    }
    let (header, sealed) = body.split_at(HEADER_LEN);
    let image = open_thumbnail(key, &Header::parse(header)?, sealed)?;
    let kind = match image.as_slice() {
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => "image/webp",
        [0xFF, 0xD8, ..] => "image/jpeg",
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        _ => "application/octet-stream",
    };
    let parts = Array::of1(&Uint8Array::from(image.as_slice()));
    let bag = BlobPropertyBag::new();
    bag.set_type(kind);
    Blob::new_with_u8_array_sequence_and_options(&parts, &bag)
        .map(Some)
        .map_err(|e| ClientError::Unsupported(platform::describe(&e)))
}
