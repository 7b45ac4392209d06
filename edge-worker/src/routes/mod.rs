//! The routes of docs/API.md: which (method, path) is which call, with every path
//! parameter parsed strictly before anything is addressed.
//!
//! A file id that is not exactly a [`FileId`] answers `404` (`upload_not_found` under
//! `/api/uploads`, `file_not_found` under `/api/files` and `/blob`), and so does a share
//! token (`share_not_found`) or a download id (`download_not_found`), so no Durable
//! Object is ever addressed with a malformed name. [`Route::check_signed`] then refuses
//! ids this server did not sign, with the same `404`s, before anything is addressed. A path that exists with another
//! method answers `405 method_not_allowed` with `Allow`; any other path under `/api/`
//! or `/blob/` answers `404 not_found`. `OPTIONS` anywhere there is a CORS preflight.
//! `HEAD` is allowed wherever `GET` is, and answers what `GET` would without the body.

pub(crate) mod blob;
pub(crate) mod dev;
pub(crate) mod files;
pub(crate) mod processing;
pub(crate) mod rooms;
pub(crate) mod shares;
pub(crate) mod uploads;

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::{FileId, ShareToken, is_random_id};
use sealdrop_protocol::room::ids::valid_room_id;
use sealdrop_protocol::token::BlobSigner;
use worker::Method;

/// One call of the API, its path parameters parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `OPTIONS` under `/api/` or `/blob/`.
    Preflight,
    /// `GET /api/health`.
    Health,
    /// `GET /api/limits`.
    Limits,
    /// `POST /api/uploads`.
    CreateUpload,
    /// `GET /api/uploads/{fileId}`.
    UploadStatus(FileId),
    /// `POST /api/uploads/{fileId}/part-urls`.
    PartUrls(FileId),
    /// `POST /api/uploads/{fileId}/complete`.
    Complete(FileId),
    /// `PUT /api/uploads/{fileId}/thumbnail` (owner).
    PutThumbnail(FileId),
    /// `DELETE /api/uploads/{fileId}`.
    Abort(FileId),
    /// `GET /api/files/{fileId}` (owner).
    FileRecord(FileId),
    /// `POST /api/files/{fileId}/processing` (a processor's report).
    Processing(FileId),
    /// `GET /api/rooms/{roomId}/files/{fileId}` (a member, with the room JWT).
    RoomFile(String, FileId),
    /// `GET /api/rooms/{roomId}/files/{fileId}/thumbnail` (a member).
    RoomThumbnail(String, FileId),
    /// `DELETE /api/files/{fileId}` (owner).
    DeleteFile(FileId),
    /// `GET /api/files/{fileId}/shares` (owner).
    ListShares(FileId),
    /// `POST /api/files/{fileId}/shares` (owner).
    CreateShare(FileId),
    /// `PATCH /api/files/{fileId}/shares/{token}` (owner).
    UpdateShare(FileId, ShareToken),
    /// `DELETE /api/files/{fileId}/shares/{token}` (owner).
    RevokeShare(FileId, ShareToken),
    /// `GET /api/shares/{token}`.
    ShareInfo(ShareToken),
    /// `POST /api/shares/{token}/downloads`.
    OpenDownload(ShareToken),
    /// `POST /api/shares/{token}/downloads/{downloadId}/url`.
    DownloadUrl(ShareToken, String),
    /// `POST /api/shares/{token}/downloads/{downloadId}/complete`.
    CompleteDownload(ShareToken, String),
    /// `DELETE /api/shares/{token}/downloads/{downloadId}`.
    AbandonDownload(ShareToken, String),
    /// `PUT /blob/{fileId}/{part}` (a signed part URL).
    PutPart(FileId, u32),
    /// `GET` or `HEAD /blob/{fileId}` (a signed download URL).
    GetBlob(FileId),
}

/// A path that is not a route: the error to answer, plus `Allow` for a 405.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoRoute {
    /// `405 method_not_allowed`, or a `404`.
    pub error: ApiError,
    /// The methods the path allows (for the `Allow` header of a 405).
    pub allow: Option<&'static str>,
}

impl Route {
    /// The route for `method` and `path` (a path under `/api/` or `/blob/`).
    pub fn parse(method: &Method, path: &str) -> Result<Self, NoRoute> {
        if *method == Method::Options {
            return Ok(Self::Preflight);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // The methods each path shape allows, and the route if the method is one of them.
        let (allow, route) = match segments.as_slice() {
            ["api", "health"] => ("GET, HEAD", Ok(Self::Health)),
            ["api", "limits"] => ("GET, HEAD", Ok(Self::Limits)),
            ["api", "uploads"] => ("POST", Ok(Self::CreateUpload)),
            ["api", "uploads", id] => (
                "GET, HEAD, DELETE",
                upload_id(id).map(|id| match method {
                    Method::Delete => Self::Abort(id),
                    _ => Self::UploadStatus(id),
                }),
            ),
            ["api", "uploads", id, "part-urls"] => ("POST", upload_id(id).map(Self::PartUrls)),
            ["api", "uploads", id, "complete"] => ("POST", upload_id(id).map(Self::Complete)),
            ["api", "uploads", id, "thumbnail"] => ("PUT", upload_id(id).map(Self::PutThumbnail)),
            ["api", "files", id] => (
                "GET, HEAD, DELETE",
                file_id(id).map(|id| match method {
                    Method::Delete => Self::DeleteFile(id),
                    _ => Self::FileRecord(id),
                }),
            ),
            ["api", "files", id, "shares"] => (
                "GET, HEAD, POST",
                file_id(id).map(|id| match method {
                    Method::Post => Self::CreateShare(id),
                    _ => Self::ListShares(id),
                }),
            ),
            ["api", "files", id, "shares", token] => (
                "PATCH, DELETE",
                file_id(id).and_then(|id| {
                    let token = share_token(token)?;
                    Ok(match method {
                        Method::Delete => Self::RevokeShare(id, token),
                        _ => Self::UpdateShare(id, token),
                    })
                }),
            ),
            ["api", "shares", token] => ("GET, HEAD", share_token(token).map(Self::ShareInfo)),
            ["api", "shares", token, "downloads"] => {
                ("POST", share_token(token).map(Self::OpenDownload))
            }
            ["api", "shares", token, "downloads", download] => (
                "DELETE",
                share_token(token)
                    .and_then(|t| Ok(Self::AbandonDownload(t, download_id(download)?))),
            ),
            ["api", "shares", token, "downloads", download, "url"] => (
                "POST",
                share_token(token).and_then(|t| Ok(Self::DownloadUrl(t, download_id(download)?))),
            ),
            ["api", "shares", token, "downloads", download, "complete"] => (
                "POST",
                share_token(token)
                    .and_then(|t| Ok(Self::CompleteDownload(t, download_id(download)?))),
            ),
            ["api", "files", id, "processing"] => ("POST", file_id(id).map(Self::Processing)),
            ["api", "rooms", room, "files", id] => (
                "GET, HEAD",
                room_id(room).and_then(|room| Ok(Self::RoomFile(room, file_id(id)?))),
            ),
            ["api", "rooms", room, "files", id, "thumbnail"] => (
                "GET, HEAD",
                room_id(room).and_then(|room| Ok(Self::RoomThumbnail(room, file_id(id)?))),
            ),
            ["blob", id] => ("GET, HEAD", file_id(id).map(Self::GetBlob)),
            ["blob", id, part] => (
                "PUT",
                file_id(id).and_then(|id| Ok(Self::PutPart(id, part_number(part)?))),
            ),
            _ => {
                return Err(NoRoute {
                    error: ApiError::not_found(),
                    allow: None,
                });
            }
        };
        if !allow.split(", ").any(|m| m == method.as_ref()) {
            return Err(NoRoute {
                error: ApiError::method_not_allowed(),
                allow: Some(allow),
            });
        }
        route.map_err(|error| NoRoute { error, allow: None })
    }

    /// `404` (the route's own not-found code) unless every file id and share token in
    /// the route carries this server's MAC: an id nobody was given reaches no object.
    pub fn check_signed(&self, signer: &BlobSigner) -> Result<(), ApiError> {
        let (file, share) = match self {
            Self::UploadStatus(id)
            | Self::PartUrls(id)
            | Self::Complete(id)
            | Self::Abort(id)
            | Self::FileRecord(id)
            | Self::DeleteFile(id)
            | Self::ListShares(id)
            | Self::CreateShare(id)
            | Self::Processing(id)
            | Self::RoomFile(_, id)
            | Self::RoomThumbnail(_, id)
            | Self::PutThumbnail(id)
            | Self::PutPart(id, _)
            | Self::GetBlob(id) => (Some(id), None),
            Self::UpdateShare(id, token) | Self::RevokeShare(id, token) => (Some(id), Some(token)),
            Self::ShareInfo(token)
            | Self::OpenDownload(token)
            | Self::DownloadUrl(token, _)
            | Self::CompleteDownload(token, _)
            | Self::AbandonDownload(token, _) => (None, Some(token)),
            Self::Preflight | Self::Health | Self::Limits | Self::CreateUpload => (None, None),
        };
        if file.is_some_and(|id| !signer.signs(id)) {
            return Err(match self {
                Self::UploadStatus(_) | Self::PartUrls(_) | Self::Complete(_) | Self::Abort(_) => {
                    ApiError::upload_not_found()
                }
                _ => ApiError::file_not_found(),
            });
        }
        if share.is_some_and(|token| !signer.signs(token)) {
            return Err(ApiError::share_not_found());
        }
        Ok(())
    }
}

fn room_id(text: &str) -> Result<String, ApiError> {
    match valid_room_id(text) {
        true => Ok(text.to_owned()),
        false => Err(ApiError::not_found()),
    }
}

fn upload_id(text: &str) -> Result<FileId, ApiError> {
    FileId::parse(text).map_err(|_| ApiError::upload_not_found())
}

fn file_id(text: &str) -> Result<FileId, ApiError> {
    FileId::parse(text).map_err(|_| ApiError::file_not_found())
}

fn share_token(text: &str) -> Result<ShareToken, ApiError> {
    ShareToken::parse(text).map_err(|_| ApiError::share_not_found())
}

/// A download id: 22 characters of base64url, else no such download.
fn download_id(text: &str) -> Result<String, ApiError> {
    match is_random_id(text) {
        true => Ok(text.to_owned()),
        false => Err(ApiError::new(
            ApiErrorCode::DownloadNotFound,
            "no such download on this share",
        )),
    }
}

/// A part number in a blob path: canonical decimal digits only, else no such route.
fn part_number(text: &str) -> Result<u32, ApiError> {
    let canonical = !text.is_empty() && (text == "0" || !text.starts_with('0'));
    if !canonical || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::not_found());
    }
    text.parse().map_err(|_| ApiError::not_found())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sealdrop_protocol::api_error::ApiErrorCode;

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const TOKEN: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    const DL: &str = "CCCCCCCCCCCCCCCCCCCCCA";

    fn token() -> ShareToken {
        ShareToken::parse(TOKEN).unwrap()
    }

    fn id() -> FileId {
        FileId::parse(ID).unwrap()
    }

    fn refused(method: Method, path: &str) -> (ApiErrorCode, Option<&'static str>) {
        let no = Route::parse(&method, path).unwrap_err();
        (no.error.code, no.allow)
    }

    #[test]
    fn every_route_parses() {
        let cases = [
            (Method::Get, "/api/health".to_owned(), Route::Health),
            (Method::Get, "/api/limits".into(), Route::Limits),
            (Method::Post, "/api/uploads".into(), Route::CreateUpload),
            (
                Method::Get,
                format!("/api/uploads/{ID}"),
                Route::UploadStatus(id()),
            ),
            (
                Method::Delete,
                format!("/api/uploads/{ID}"),
                Route::Abort(id()),
            ),
            (
                Method::Post,
                format!("/api/uploads/{ID}/part-urls"),
                Route::PartUrls(id()),
            ),
            (
                Method::Post,
                format!("/api/uploads/{ID}/complete"),
                Route::Complete(id()),
            ),
            (
                Method::Get,
                format!("/api/files/{ID}"),
                Route::FileRecord(id()),
            ),
            (
                Method::Delete,
                format!("/api/files/{ID}"),
                Route::DeleteFile(id()),
            ),
            (
                Method::Get,
                format!("/api/files/{ID}/shares"),
                Route::ListShares(id()),
            ),
            (
                Method::Post,
                format!("/api/files/{ID}/shares"),
                Route::CreateShare(id()),
            ),
            (
                Method::Patch,
                format!("/api/files/{ID}/shares/{TOKEN}"),
                Route::UpdateShare(id(), token()),
            ),
            (
                Method::Delete,
                format!("/api/files/{ID}/shares/{TOKEN}"),
                Route::RevokeShare(id(), token()),
            ),
            (
                Method::Get,
                format!("/api/shares/{TOKEN}"),
                Route::ShareInfo(token()),
            ),
            (
                Method::Post,
                format!("/api/shares/{TOKEN}/downloads"),
                Route::OpenDownload(token()),
            ),
            (
                Method::Post,
                format!("/api/shares/{TOKEN}/downloads/{DL}/url"),
                Route::DownloadUrl(token(), DL.into()),
            ),
            (
                Method::Post,
                format!("/api/shares/{TOKEN}/downloads/{DL}/complete"),
                Route::CompleteDownload(token(), DL.into()),
            ),
            (
                Method::Delete,
                format!("/api/shares/{TOKEN}/downloads/{DL}"),
                Route::AbandonDownload(token(), DL.into()),
            ),
            (
                Method::Put,
                format!("/blob/{ID}/7"),
                Route::PutPart(id(), 7),
            ),
            (Method::Get, format!("/blob/{ID}"), Route::GetBlob(id())),
            (
                Method::Post,
                format!("/api/files/{ID}/processing"),
                Route::Processing(id()),
            ),
            (
                Method::Get,
                format!("/api/rooms/r1/files/{ID}"),
                Route::RoomFile("r1".into(), id()),
            ),
            (
                Method::Get,
                format!("/api/rooms/r1/files/{ID}/thumbnail"),
                Route::RoomThumbnail("r1".into(), id()),
            ),
            (
                Method::Put,
                format!("/api/uploads/{ID}/thumbnail"),
                Route::PutThumbnail(id()),
            ),
            (
                Method::Options,
                "/api/anything/at/all".into(),
                Route::Preflight,
            ),
        ];
        for (method, path, route) in cases {
            assert_eq!(Route::parse(&method, &path), Ok(route), "{method:?} {path}");
        }
    }

    #[test]
    fn head_goes_wherever_get_goes() {
        for path in [
            "/api/health".to_owned(),
            "/api/limits".into(),
            format!("/api/uploads/{ID}"),
            format!("/api/files/{ID}"),
            format!("/api/files/{ID}/shares"),
            format!("/api/shares/{TOKEN}"),
            format!("/blob/{ID}"),
        ] {
            let get = Route::parse(&Method::Get, &path).unwrap();
            assert_eq!(Route::parse(&Method::Head, &path), Ok(get), "{path}");
        }
        assert_eq!(
            refused(Method::Head, "/api/uploads"),
            (ApiErrorCode::MethodNotAllowed, Some("POST"))
        );
    }

    #[test]
    fn wrong_methods_paths_and_ids() {
        assert_eq!(
            refused(Method::Put, &format!("/api/uploads/{ID}")),
            (ApiErrorCode::MethodNotAllowed, Some("GET, HEAD, DELETE"))
        );
        assert_eq!(
            refused(Method::Get, &format!("/blob/{ID}/1")),
            (ApiErrorCode::MethodNotAllowed, Some("PUT"))
        );
        assert_eq!(refused(Method::Get, "/api/nope").0, ApiErrorCode::NotFound);
        assert_eq!(
            refused(Method::Get, "/api/uploads/..").0,
            ApiErrorCode::UploadNotFound
        );
        assert_eq!(
            refused(Method::Get, "/api/files/not-an-id").0,
            ApiErrorCode::FileNotFound
        );
        assert_eq!(
            refused(Method::Get, &format!("/api/rooms/a.b/files/{ID}")).0,
            ApiErrorCode::NotFound
        );
        assert_eq!(
            refused(Method::Get, &format!("/api/files/{ID}/processing")),
            (ApiErrorCode::MethodNotAllowed, Some("POST"))
        );
        assert_eq!(
            refused(Method::Get, &format!("/api/shares/{ID}x")).0,
            ApiErrorCode::ShareNotFound
        );
        assert_eq!(
            refused(
                Method::Post,
                &format!("/api/shares/{TOKEN}/downloads/x/url")
            )
            .0,
            ApiErrorCode::DownloadNotFound
        );
        assert_eq!(
            refused(Method::Put, &format!("/api/files/{ID}/shares/{TOKEN}")),
            (ApiErrorCode::MethodNotAllowed, Some("PATCH, DELETE"))
        );
        for part in ["x", "01", "-1", "", "99999999999"] {
            let path = format!("/blob/{ID}/{part}");
            assert_eq!(
                refused(Method::Put, &path).0,
                ApiErrorCode::NotFound,
                "{path}"
            );
        }
        assert_eq!(
            Route::parse(&Method::Put, &format!("/blob/{ID}/0")),
            Ok(Route::PutPart(id(), 0))
        );
    }
}

#[cfg(test)]
mod signed {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_ids_this_server_signed_pass() {
        let signer = BlobSigner::new(&[3; 32]).unwrap();
        let other = BlobSigner::new(&[4; 32]).unwrap();
        let file: FileId = signer.new_id([1; 16]);
        let token: ShareToken = signer.new_id([2; 16]);
        let ok = [
            Route::FileRecord(file.clone()),
            Route::UpdateShare(file.clone(), token.clone()),
            Route::AbandonDownload(token.clone(), "x".into()),
            Route::Health,
        ];
        for route in &ok {
            assert_eq!(route.check_signed(&signer), Ok(()), "{route:?}");
        }
        let code = |r: Route| r.check_signed(&other).unwrap_err().code;
        assert_eq!(
            code(Route::UploadStatus(file.clone())),
            ApiErrorCode::UploadNotFound
        );
        assert_eq!(
            code(Route::GetBlob(file.clone())),
            ApiErrorCode::FileNotFound
        );
        assert_eq!(
            code(Route::ShareInfo(token.clone())),
            ApiErrorCode::ShareNotFound
        );
        // A signed file with a forged token: the token is refused.
        let forged: ShareToken = other.new_id([2; 16]);
        assert_eq!(
            Route::RevokeShare(file, forged)
                .check_signed(&signer)
                .unwrap_err()
                .code,
            ApiErrorCode::ShareNotFound
        );
    }
}
