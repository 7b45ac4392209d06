//! The routes of docs/API.md: which (method, path) is which call, with every path
//! parameter parsed strictly before anything is addressed.
//!
//! A file id that is not exactly a [`FileId`] answers `404` (`upload_not_found` under
//! `/api/uploads`, `file_not_found` under `/api/files` and `/blob`), so no Durable
//! Object is ever addressed with a malformed name. A path that exists with another
//! method answers `405 method_not_allowed` with `Allow`; any other path under `/api/`
//! or `/blob/` answers `404 not_found`. `OPTIONS` anywhere there is a CORS preflight.
//! `HEAD` is allowed wherever `GET` is, and answers what `GET` would without the body.

pub(crate) mod blob;
pub(crate) mod dev;
pub(crate) mod files;
pub(crate) mod processing;
pub(crate) mod rooms;
pub(crate) mod uploads;

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::room::ids::valid_room_id;
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
    /// `DELETE /api/uploads/{fileId}`.
    Abort(FileId),
    /// `GET /api/files/{fileId}`.
    FileRecord(FileId),
    /// `POST /api/files/{fileId}/processing` (a processor's report).
    Processing(FileId),
    /// `GET /api/rooms/{roomId}/files/{fileId}` (a member, with the room JWT).
    RoomFile(String, FileId),
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
            ["api", "files", id] => ("GET, HEAD", file_id(id).map(Self::FileRecord)),
            ["api", "files", id, "processing"] => ("POST", file_id(id).map(Self::Processing)),
            ["api", "rooms", room, "files", id] => (
                "GET, HEAD",
                room_id(room).and_then(|room| Ok(Self::RoomFile(room, file_id(id)?))),
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

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

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
