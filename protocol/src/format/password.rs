//! Password links (FORMAT.md, "Password links"): the fragment `p1.<salt>.<wrapped key>`,
//! where the file key is wrapped under a key stretched from a password with Argon2id, and
//! the verifier the share's server checks before it hands out a download.
//!
//! Argon2id (m = 64 MiB, t = 3, p = 1) runs once per share and per opening, in the
//! browser: about 130 ms in wasm here, so a guesser pays that per guess offline, and
//! online the share rate-limits guesses. From its 32-byte output `S`, HKDF-SHA256 derives
//! two independent keys:
//!
//! - the **verifier**, which the share stores only as a salted hash: the server can refuse
//!   a wrong password but cannot test a guess against the file (it never sees `S` nor the
//!   wrapped key, which stays in the fragment);
//! - the **wrap key**, bound to the share token, which seals the file key with
//!   AES-256-GCM under an AAD naming the token too: a wrapped key cannot be moved to
//!   another share.
//!
//! The salt is drawn fresh for every wrapping, so every wrap key seals exactly one file
//! key once, and the fixed all-zero nonce is never reused under a key.

use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInOut, Aes256Gcm, Key, KeyInit, Nonce, Tag};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{FILE_KEY_LEN, FileKey, FormatError, TAG_LEN, encode_fragment, parse_fragment};
use crate::ids::ShareToken;

/// Prefix of the fragment form that carries a password-wrapped key.
pub const PASSWORD_FRAGMENT_PREFIX: &str = "p1.";
/// Length of the Argon2id salt, drawn fresh for every wrapping.
pub const PASSWORD_SALT_LEN: usize = 16;
/// Length of the wrapped key: the sealed 32-byte file key and its tag.
pub const WRAPPED_KEY_LEN: usize = FILE_KEY_LEN + TAG_LEN;
/// Length of the verifier a downloader sends to open a download.
pub const VERIFIER_LEN: usize = 32;
/// Argon2id memory, in KiB (64 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 65_536;
/// Argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 3;
/// Argon2id lanes.
pub const ARGON2_LANES: u32 = 1;

/// HKDF `info` of the verifier.
const VERIFIER_INFO: &[u8] = b"sealdrop/p1/verifier";
/// HKDF `info` of the wrap key, followed by the share token; also the AAD's prefix.
const WRAP_LABEL: &[u8] = b"sealdrop/p1/wrap\0";
/// The wrapping's nonce: every wrap key is used once (a fresh salt per wrapping).
const WRAP_NONCE: [u8; 12] = [0; 12];
/// Base64url lengths of the salt and the wrapped key.
const ENCODED_SALT_LEN: usize = 22;
const ENCODED_WRAPPED_LEN: usize = 64;

/// What a link's fragment holds: the key itself (`k1.`) or a password-wrapped key (`p1.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSecret {
    /// `k1.`: the file key.
    Key(FileKey),
    /// `p1.`: the file key wrapped under a password.
    Password(WrappedKey),
}

impl LinkSecret {
    /// Reads a fragment of either form, with or without its leading `#`; anything else
    /// is `invalid_link`.
    pub fn parse(fragment: &str) -> Result<Self, FormatError> {
        let bare = fragment.strip_prefix('#').unwrap_or(fragment);
        match bare.strip_prefix(PASSWORD_FRAGMENT_PREFIX) {
            Some(rest) => WrappedKey::parse_body(rest).map(Self::Password),
            None => parse_fragment(bare).map(Self::Key),
        }
    }

    /// The fragment, without `#`.
    pub fn encode(&self) -> String {
        match self {
            Self::Key(key) => encode_fragment(key),
            Self::Password(wrapped) => wrapped.encode(),
        }
    }
}

/// A password-wrapped file key, as a `p1.` fragment carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The Argon2id salt.
    pub salt: [u8; PASSWORD_SALT_LEN],
    /// The sealed file key and its tag.
    pub sealed: [u8; WRAPPED_KEY_LEN],
}

impl WrappedKey {
    /// `p1.<salt>.<sealed>`, both in canonical base64url without padding.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(3 + ENCODED_SALT_LEN + 1 + ENCODED_WRAPPED_LEN);
        out.push_str(PASSWORD_FRAGMENT_PREFIX);
        URL_SAFE_NO_PAD.encode_string(self.salt, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(self.sealed, &mut out);
        out
    }

    /// Parses what follows `p1.`: exactly 22 and 64 canonical base64url characters
    /// around one `.`.
    fn parse_body(body: &str) -> Result<Self, FormatError> {
        let (salt_text, sealed_text) = body.split_once('.').ok_or(FormatError::InvalidLink(
            "a p1 link is p1.<salt>.<wrapped key>",
        ))?;
        if salt_text.len() != ENCODED_SALT_LEN || sealed_text.len() != ENCODED_WRAPPED_LEN {
            return Err(FormatError::InvalidLink(
                "a p1 salt is 22 base64url characters and its wrapped key 64",
            ));
        }
        let mut salt = [0u8; PASSWORD_SALT_LEN];
        let mut sealed = [0u8; WRAPPED_KEY_LEN];
        match (
            URL_SAFE_NO_PAD.decode_slice(salt_text, &mut salt),
            URL_SAFE_NO_PAD.decode_slice(sealed_text, &mut sealed),
        ) {
            (Ok(PASSWORD_SALT_LEN), Ok(WRAPPED_KEY_LEN)) => Ok(Self { salt, sealed }),
            _ => Err(FormatError::InvalidLink(
                "the p1 salt or wrapped key is not canonical base64url",
            )),
        }
    }
}

/// The keys stretched from a password and a salt. The wrap key is wiped on drop.
pub struct PasswordKeys {
    salt: [u8; PASSWORD_SALT_LEN],
    /// Argon2id's output `S`, kept to derive the token-bound wrap key.
    stretched: Zeroizing<[u8; 32]>,
    verifier: [u8; VERIFIER_LEN],
}

impl std::fmt::Debug for PasswordKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordKeys(<redacted>)")
    }
}

impl PasswordKeys {
    /// Runs Argon2id over `password` (the UTF-8 bytes of its NFC form: callers
    /// normalize) and `salt`, then HKDF. The costly step: about 130 ms in wasm.
    /// An empty password is `invalid_password`.
    pub fn derive(password: &[u8], salt: [u8; PASSWORD_SALT_LEN]) -> Result<Self, FormatError> {
        if password.is_empty() {
            return Err(FormatError::InvalidPassword("the password is empty"));
        }
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, Some(32))
            .map_err(|_| FormatError::InvalidPassword("Argon2id parameters"))?;
        let mut stretched = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password, &salt, stretched.as_mut())
            .map_err(|_| FormatError::InvalidPassword("the password is too long"))?;
        let mut verifier = [0u8; VERIFIER_LEN];
        expand(&stretched, &[VERIFIER_INFO], &mut verifier);
        Ok(Self {
            salt,
            stretched,
            verifier,
        })
    }

    /// Argon2id's output `S`, for test vectors.
    pub fn stretched(&self) -> &[u8; 32] {
        &self.stretched
    }

    /// The verifier, sent (base64url) to create a password share and to open a download.
    pub fn verifier(&self) -> &[u8; VERIFIER_LEN] {
        &self.verifier
    }

    /// The wrap key for `token`'s share, for test vectors.
    pub fn wrap_key(&self, token: &ShareToken) -> Zeroizing<[u8; 32]> {
        let mut key = Zeroizing::new([0u8; 32]);
        expand(
            &self.stretched,
            &[WRAP_LABEL, token.as_str().as_bytes()],
            key.as_mut(),
        );
        key
    }

    /// Wraps `key` for `token`'s share: the `p1.` fragment's content.
    pub fn wrap(&self, token: &ShareToken, key: &FileKey) -> WrappedKey {
        let mut sealed = [0u8; WRAPPED_KEY_LEN];
        let (body, tag_out) = sealed.split_at_mut(FILE_KEY_LEN);
        body.copy_from_slice(key.as_bytes());
        // AES-GCM over 32 bytes cannot fail.
        if let Ok(tag) = self.cipher(token).encrypt_inout_detached(
            &Nonce::<U12>::from(WRAP_NONCE),
            &wrap_aad(token),
            body.into(),
        ) {
            tag_out.copy_from_slice(&tag);
        }
        WrappedKey {
            salt: self.salt,
            sealed,
        }
    }

    /// Opens a wrapped key for `token`'s share: `wrong_password` if it does not
    /// authenticate (a wrong password, another share's link, or an altered fragment).
    pub fn unwrap(&self, token: &ShareToken, wrapped: &WrappedKey) -> Result<FileKey, FormatError> {
        if wrapped.salt != self.salt {
            return Err(FormatError::WrongPassword);
        }
        let mut body = Zeroizing::new([0u8; FILE_KEY_LEN]);
        body.copy_from_slice(&wrapped.sealed[..FILE_KEY_LEN]);
        let tag = Tag::try_from(&wrapped.sealed[FILE_KEY_LEN..])
            .map_err(|_| FormatError::WrongPassword)?;
        self.cipher(token)
            .decrypt_inout_detached(
                &Nonce::<U12>::from(WRAP_NONCE),
                &wrap_aad(token),
                body.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| FormatError::WrongPassword)?;
        Ok(FileKey::from_bytes(*body))
    }

    fn cipher(&self, token: &ShareToken) -> Aes256Gcm {
        let okm = self.wrap_key(token);
        let key: &Key<Aes256Gcm> = (&*okm).into();
        Aes256Gcm::new(key)
    }
}

/// `"sealdrop/p1/wrap" || 0x00 || token`, the token as its 32 ASCII characters.
fn wrap_aad(token: &ShareToken) -> Vec<u8> {
    [WRAP_LABEL, token.as_str().as_bytes()].concat()
}

/// HKDF-SHA256 with no salt over `S`, `info` the concatenation of `info`.
fn expand(stretched: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
    let hkdf = Hkdf::<Sha256>::new(None, stretched);
    // 32 bytes are always within HKDF-SHA256's output limit.
    let _ = hkdf.expand_multi_info(info, out);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const OTHER: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    #[test]
    fn wraps_opens_and_binds_password_salt_and_token() {
        let token = ShareToken::parse(TOKEN).unwrap();
        let key = FileKey::from_bytes([9; 32]);
        let keys = PasswordKeys::derive(b"hunter2", [1; 16]).unwrap();
        let wrapped = keys.wrap(&token, &key);
        let fragment = wrapped.encode();
        assert_eq!(fragment.len(), 90);
        let LinkSecret::Password(parsed) = LinkSecret::parse(&format!("#{fragment}")).unwrap()
        else {
            panic!("not a p1 link")
        };
        assert_eq!(parsed, wrapped);
        assert_eq!(keys.unwrap(&token, &parsed).unwrap(), key);
        let other = ShareToken::parse(OTHER).unwrap();
        assert_eq!(
            keys.unwrap(&other, &parsed),
            Err(FormatError::WrongPassword)
        );
        let wrong = PasswordKeys::derive(b"hunter3", [1; 16]).unwrap();
        assert_eq!(
            wrong.unwrap(&token, &parsed),
            Err(FormatError::WrongPassword)
        );
        assert_ne!(wrong.verifier(), keys.verifier());
        let resalted = PasswordKeys::derive(b"hunter2", [2; 16]).unwrap();
        assert_ne!(resalted.verifier(), keys.verifier());
        assert_eq!(
            PasswordKeys::derive(b"", [1; 16]).unwrap_err().code(),
            "invalid_password"
        );
    }

    #[test]
    fn parses_only_exact_fragments() {
        let good = WrappedKey {
            salt: [0xff; 16],
            sealed: [0xff; 48],
        }
        .encode();
        assert!(LinkSecret::parse(&good).is_ok());
        let (salt, sealed) = good[3..].split_once('.').unwrap();
        for bad in [
            "p1.".to_owned(),
            format!("p1.{salt}"),
            format!("p1.{salt}.{}", &sealed[..63]),
            format!("p1.{salt}.{sealed}A"),
            format!("p1.{salt}.{sealed}."),
            format!("p1.{salt}A.{sealed}"),
            format!("p1.{}_.{sealed}", &salt[..21]),
            format!("p2.{salt}.{sealed}"),
            format!("P1.{salt}.{sealed}"),
            format!("p1.{salt}={sealed}"),
            format!("p1.{salt}.{}", sealed.replace('_', "/")),
        ] {
            assert_eq!(
                LinkSecret::parse(&bad).unwrap_err().code(),
                "invalid_link",
                "{bad}"
            );
        }
    }
}
