//! Share links from the owner's side (create, list with access records, change,
//! revoke: docs/API.md, Shares), and the password step of a download.
//!
//! A link is built here, in the browser, because only the browser has the file key:
//! `k1.<key>`, or for a password share `p1.<salt>.<wrapped key>` (FORMAT.md §8.1). For
//! a password share the browser draws a salt, stretches the password with Argon2id
//! (about 130 ms of wasm, on the calling thread), sends the server only the verifier,
//! and wraps the key for the token the server answers: neither the password nor any
//! key leaves the page.

use sealdrop_protocol::backoff::Backoff;
use sealdrop_protocol::format::{FileKey, LinkSecret, PASSWORD_SALT_LEN, PasswordKeys, WrappedKey};
use sealdrop_protocol::ids::{IdempotencyKey, ShareToken};
use sealdrop_protocol::share::{CreateShareRequest, PublicShare, ShareView, UpdateShareRequest};
use serde::Deserialize;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ClientError;
use crate::http::Http;
use crate::link::{self, Link};
use crate::platform;
use crate::stall::DEFAULT_STALL_MS;
use crate::transfer::retrying;

/// The file a share call is about: its id, and the API endpoint and key from a link
/// to it (the upload's own, or any `k1.` link of the file).
pub(crate) struct FileRef {
    pub endpoint: String,
    pub file_id: String,
    /// The file key, when the link carried it in the clear (`k1.`).
    pub key: Option<FileKey>,
}

impl FileRef {
    /// Reads `{ fileId, link }`: the link gives the endpoint and the key.
    pub fn new(file_id: String, link: &str) -> Result<Self, ClientError> {
        if sealdrop_protocol::ids::FileId::parse(&file_id).is_err() {
            return Err(ClientError::InvalidOption(
                "fileId must be a file id (32 characters of base64url)".into(),
            ));
        }
        let Link {
            endpoint, secret, ..
        } = link::parse(link)?;
        let key = match secret {
            LinkSecret::Key(key) => Some(key),
            LinkSecret::Password(_) => None,
        };
        Ok(Self {
            endpoint,
            file_id,
            key,
        })
    }

    fn shares_url(&self) -> String {
        format!("{}/api/files/{}/shares", self.endpoint, self.file_id)
    }
}

/// What `createShare` asks for.
pub(crate) struct NewShare {
    pub password: Option<String>,
    pub expires_in: Option<u64>,
    pub download_limit: Option<u32>,
}

/// Owner calls, with the owner token or the owner's JWT.
pub(crate) struct Owner {
    pub auth: String,
    http: Http,
    backoff: Backoff,
}

impl Owner {
    pub fn new(auth: String) -> Self {
        Self {
            auth,
            http: Http {
                stall_ms: DEFAULT_STALL_MS,
            },
            backoff: Backoff::default(),
        }
    }

    /// Creates a share and builds its link. Returns the share and the link. One
    /// idempotency key per call, reused by its retries, so a create whose answer was
    /// lost makes no second share.
    pub async fn create(
        &self,
        file: &FileRef,
        share: NewShare,
    ) -> Result<(ShareView, String), ClientError> {
        let key = file.key.as_ref().ok_or_else(|| {
            ClientError::InvalidOption(
                "link must carry the file key (a k1. link, such as the upload's)".into(),
            )
        })?;
        let keys = match &share.password {
            Some(password) => {
                let mut salt = [0u8; PASSWORD_SALT_LEN];
                platform::random_bytes(&mut salt)?;
                Some(PasswordKeys::derive(&normalized(password), salt)?)
            }
            None => None,
        };
        let mut key_bytes = [0u8; 16];
        platform::random_bytes(&mut key_bytes)?;
        let body = CreateShareRequest {
            expires_in: share.expires_in,
            download_limit: share.download_limit,
            verifier: keys.as_ref().map(|k| URL_SAFE_NO_PAD.encode(k.verifier())),
            idempotency_key: Some(IdempotencyKey::from_random(key_bytes)),
        };
        let url = file.shares_url();
        let view: ShareView = retrying(self.backoff, || {
            self.http
                .json("POST shares", "POST", &url, Some(&self.auth), Some(&body))
        })
        .await?;
        let token = ShareToken::parse(&view.token)
            .map_err(|_| ClientError::InvalidResponse("the share token is malformed".into()))?;
        let secret = match &keys {
            Some(keys) => LinkSecret::Password(keys.wrap(&token, key)),
            None => LinkSecret::Key(key.clone()),
        };
        let link = link::build_with(&file.endpoint, &token, &secret);
        Ok((view, link))
    }

    /// Every share of the file, with its access records.
    pub async fn list(&self, file: &FileRef) -> Result<Vec<ShareView>, ClientError> {
        #[derive(Deserialize)]
        struct Listed {
            shares: Vec<ShareView>,
        }
        let url = file.shares_url();
        let listed: Listed = retrying(self.backoff, || {
            self.http
                .json("GET shares", "GET", &url, Some(&self.auth), None::<&()>)
        })
        .await?;
        Ok(listed.shares)
    }

    /// Changes a share's expiry or limit.
    pub async fn update(
        &self,
        file: &FileRef,
        token: &ShareToken,
        changes: &UpdateShareRequest,
    ) -> Result<ShareView, ClientError> {
        let url = format!("{}/{token}", file.shares_url());
        retrying(self.backoff, || {
            self.http.json(
                "PATCH share",
                "PATCH",
                &url,
                Some(&self.auth),
                Some(changes),
            )
        })
        .await
    }

    /// Revokes a share at once (final).
    pub async fn revoke(
        &self,
        file: &FileRef,
        token: &ShareToken,
    ) -> Result<ShareView, ClientError> {
        let url = format!("{}/{token}", file.shares_url());
        retrying(self.backoff, || {
            self.http.json(
                "DELETE share",
                "DELETE",
                &url,
                Some(&self.auth),
                None::<&()>,
            )
        })
        .await
    }

    /// Deletes the file at once: its object, its shares, everything.
    pub async fn delete_file(&self, file: &FileRef) -> Result<(), ClientError> {
        let url = format!("{}/api/files/{}", file.endpoint, file.file_id);
        retrying(self.backoff, || {
            self.http
                .empty("DELETE file", "DELETE", &url, Some(&self.auth))
        })
        .await
    }
}

/// `GET /api/shares/{token}`: what a receive page needs before it asks for a password
/// (the share's refusal, if it is expired, used up, revoked or its file gone).
pub(crate) async fn status(link: &Link) -> Result<PublicShare, ClientError> {
    let http = Http {
        stall_ms: DEFAULT_STALL_MS,
    };
    let url = format!("{}/api/shares/{}", link.endpoint, link.token);
    retrying(Backoff::default(), || {
        http.json("GET share", "GET", &url, None, None::<&()>)
    })
    .await
}

/// The password step of a download: for a `p1.` link, the verifier to open the
/// download with, and the key once the server has let it open.
pub(crate) enum Unlock {
    Key(FileKey),
    Password {
        keys: PasswordKeys,
        wrapped: WrappedKey,
    },
}

impl Unlock {
    /// Stretches the password for a `p1.` link (`password_required` without one).
    pub fn new(link: &Link, password: Option<&str>) -> Result<Self, ClientError> {
        match (&link.secret, password) {
            (LinkSecret::Key(key), _) => Ok(Self::Key(key.clone())),
            (LinkSecret::Password(_), None) => Err(ClientError::PasswordRequired),
            (LinkSecret::Password(wrapped), Some(password)) => Ok(Self::Password {
                keys: PasswordKeys::derive(&normalized(password), wrapped.salt)?,
                wrapped: wrapped.clone(),
            }),
        }
    }

    /// The verifier to send when opening the download (base64url).
    pub fn verifier(&self) -> Option<String> {
        match self {
            Self::Key(_) => None,
            Self::Password { keys, .. } => Some(URL_SAFE_NO_PAD.encode(keys.verifier())),
        }
    }

    /// The file key: a wrapped key that does not open for `token` is `wrong_password`.
    pub fn key(&self, token: &ShareToken) -> Result<FileKey, ClientError> {
        match self {
            Self::Key(key) => Ok(key.clone()),
            Self::Password { keys, wrapped } => Ok(keys.unwrap(token, wrapped)?),
        }
    }
}

/// The password's bytes: its NFC form in UTF-8 (FORMAT.md §8.1), normalized by the
/// JS engine's own Unicode tables.
fn normalized(password: &str) -> Vec<u8> {
    let nfc: String = js_sys::JsString::from(password).normalize("NFC").into();
    nfc.into_bytes()
}
