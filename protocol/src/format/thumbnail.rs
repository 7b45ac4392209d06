//! Thumbnails (docs/FORMAT.md §10): a small image of the file (an image's, or a video's
//! first frame) that the uploader's browser makes and seals, so members see a preview
//! without the server ever seeing it. Sealed like the metadata, under a key of its own.

use aes_gcm::{AeadInOut, Nonce, Tag, aead::consts::U12};

use super::{FileKey, FormatError, Header, TAG_LEN};

/// Length of the nonce that starts a sealed thumbnail.
pub const THUMBNAIL_NONCE_LEN: usize = 12;
/// Most bytes of a thumbnail image (a WebP or JPEG of at most 256 px a side fits).
pub const MAX_THUMBNAIL_LEN: usize = 65_536;
/// Most bytes of a sealed thumbnail: nonce, image, tag.
pub const MAX_SEALED_THUMBNAIL: usize = THUMBNAIL_NONCE_LEN + MAX_THUMBNAIL_LEN + TAG_LEN;
/// Fewest bytes of a sealed thumbnail: nonce, one image byte, tag.
pub const MIN_SEALED_THUMBNAIL: usize = THUMBNAIL_NONCE_LEN + 1 + TAG_LEN;

/// Seals `image` for the file of `key` and `header`: `nonce || AES-256-GCM(thumbnail key,
/// nonce, image, aad = header)`. The key is checked against the header's commitment
/// first (`key_commitment_failed`); an empty image or one over [`MAX_THUMBNAIL_LEN`] is
/// `invalid_thumbnail`.
pub fn seal_thumbnail(
    key: &FileKey,
    header: &Header,
    nonce: [u8; THUMBNAIL_NONCE_LEN],
    image: &[u8],
) -> Result<Vec<u8>, FormatError> {
    if image.is_empty() || image.len() > MAX_THUMBNAIL_LEN {
        return Err(FormatError::InvalidThumbnail(
            "a thumbnail is 1 to 65,536 bytes",
        ));
    }
    let cipher = key.thumbnail_key(header)?;
    let mut buffer = image.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::<U12>::from(nonce),
            &header.encode(),
            buffer.as_mut_slice().into(),
        )
        .map_err(|_| FormatError::InvalidThumbnail("too long for AES-GCM"))?;
    let mut out = Vec::with_capacity(THUMBNAIL_NONCE_LEN + buffer.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buffer);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a sealed thumbnail, checking in the order of §10: the key against the header
/// (`key_commitment_failed`), the length (`invalid_thumbnail`), the tag
/// (`thumbnail_auth_failed`).
pub fn open_thumbnail(
    key: &FileKey,
    header: &Header,
    sealed: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let cipher = key.thumbnail_key(header)?;
    if !(MIN_SEALED_THUMBNAIL..=MAX_SEALED_THUMBNAIL).contains(&sealed.len()) {
        return Err(FormatError::InvalidThumbnail(
            "a sealed thumbnail is 29 to 65,564 bytes",
        ));
    }
    let (nonce, rest) = sealed.split_at(THUMBNAIL_NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: [u8; THUMBNAIL_NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| FormatError::InvalidThumbnail("no nonce"))?;
    let tag = Tag::try_from(tag).map_err(|_| FormatError::ThumbnailAuthFailed)?;
    let mut buffer = ciphertext.to_vec();
    cipher
        .decrypt_inout_detached(
            &Nonce::<U12>::from(nonce),
            &header.encode(),
            buffer.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| FormatError::ThumbnailAuthFailed)?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Every case of `tests/vectors/thumbnail/` (also checked by the independent JS
    /// implementation in tests/thumbnail-vectors.test.mjs).
    #[test]
    fn the_vectors_open_as_they_say() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/thumbnail");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let case: BTreeMap<&str, &str> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(": "))
                .collect();
            let key = FileKey::from_bytes(unhex(case["file_key"]).try_into().unwrap());
            let header = Header::parse(&unhex(case["header"])).unwrap();
            let opened = open_thumbnail(&key, &header, &unhex(case["sealed"]));
            match case["expect"] {
                "success" => assert_eq!(
                    opened.unwrap(),
                    unhex(case["thumbnail"]),
                    "{}",
                    case["name"]
                ),
                _ => assert_eq!(
                    opened.unwrap_err().code(),
                    case["error"],
                    "{}",
                    case["name"]
                ),
            }
            seen += 1;
        }
        assert!(seen >= 4, "the vectors were found");
    }

    #[test]
    fn a_thumbnail_opens_only_with_its_file_and_keeps_its_limits() {
        let key = FileKey::from_bytes([7; 32]);
        let header = Header::new(&key, 1 << 20, [9; 32]).unwrap();
        let image = vec![0xAB; 1000];
        let sealed = seal_thumbnail(&key, &header, [1; 12], &image).unwrap();
        assert_eq!(sealed.len(), 12 + 1000 + 16);
        assert_eq!(open_thumbnail(&key, &header, &sealed).unwrap(), image);
        // Another file of the same key (another salt): its header commits elsewhere.
        let other = Header::new(&key, 1 << 20, [8; 32]).unwrap();
        assert_eq!(
            open_thumbnail(&key, &other, &sealed).unwrap_err().code(),
            "thumbnail_auth_failed"
        );
        assert_eq!(
            seal_thumbnail(&key, &header, [1; 12], &[])
                .unwrap_err()
                .code(),
            "invalid_thumbnail"
        );
        let largest = vec![1; MAX_THUMBNAIL_LEN];
        let sealed = seal_thumbnail(&key, &header, [1; 12], &largest).unwrap();
        assert_eq!(sealed.len(), MAX_SEALED_THUMBNAIL);
        assert_eq!(open_thumbnail(&key, &header, &sealed).unwrap(), largest);
        assert_eq!(
            seal_thumbnail(&key, &header, [1; 12], &vec![1; MAX_THUMBNAIL_LEN + 1])
                .unwrap_err()
                .code(),
            "invalid_thumbnail"
        );
        // The thumbnail key is not the metadata key: sealed metadata does not open here.
        let metadata = crate::format::FileMetadata {
            name: "x".repeat(40),
            mime: String::new(),
        };
        let keys = key.derive(&header).unwrap();
        let sealed_metadata =
            crate::format::seal_metadata(&keys.metadata, &header, [2; 12], &metadata).unwrap();
        assert_eq!(
            open_thumbnail(&key, &header, &sealed_metadata)
                .unwrap_err()
                .code(),
            "thumbnail_auth_failed"
        );
    }
}
