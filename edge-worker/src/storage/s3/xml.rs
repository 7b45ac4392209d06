//! What an S3 server answers, read: every XML body the provider receives, error bodies
//! included, as plain functions of (HTTP status, body text).
//!
//! rusty-s3 parses the answers it has actions for (CreateMultipartUpload, ListParts,
//! CompleteMultipartUpload); ListMultipartUploads and the `<Error>` body are read here
//! with the same XML crate (instant-xml). Two rules hold for every call:
//!
//! - What happened is decided by the error's `<Code>` (e.g. `NoSuchUpload`), never by its
//!   `<Message>`, which servers word as they like.
//! - Namespaces do not matter: AWS sends `<Error>` bare but ListMultipartUploads in S3's
//!   namespace, other servers either way, so the documents read here lose their default
//!   namespace first ([`without_default_namespace`]) and are matched on names alone.
//! - A `200` can still be a failure: S3 may answer CompleteMultipartUpload with `200 OK`
//!   and an `<Error>` body (it keeps the connection alive while it assembles the parts),
//!   so a body is checked for `<Error>` before it is read as a success.

use std::borrow::Cow;

use instant_xml::FromXml;
use jiff::Timestamp;
use rusty_s3::actions::{
    CompleteMultipartUploadResponse, CreateMultipartUpload, ListParts, ListPartsResponse,
};

/// Why an S3 call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum S3Error {
    /// Storage answered with an error: its status and, if the body named one, its code.
    #[error("S3 answered {status} {}", code.as_deref().unwrap_or("(no error code)"))]
    Refused {
        /// The HTTP status (may be 200: see the module doc).
        status: u16,
        /// The `<Code>` of the `<Error>` body, if there was one.
        code: Option<String>,
    },
    /// Storage answered something that is neither the expected answer nor an error.
    #[error("S3 answered {status} with an unexpected body: {detail}")]
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What did not parse.
        detail: String,
    },
    /// No answer arrived (network, DNS, TLS).
    #[error("S3 could not be reached: {0}")]
    Unreachable(String),
    /// The provider will not make this request (a bad setting, or a part list S3 cannot
    /// take): a bug or a misconfiguration, never storage's doing.
    #[error("no such S3 request: {0}")]
    Invalid(String),
}

impl S3Error {
    /// The S3 error code, if storage named one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether storage says the multipart upload does not exist (`NoSuchUpload`): it
    /// was completed, aborted, or expired by a lifecycle rule.
    pub fn is_no_such_upload(&self) -> bool {
        self.code() == Some("NoSuchUpload")
    }
}

/// `<Error><Code>…</Code>…</Error>`, the body of every S3 error.
#[derive(Debug, FromXml)]
#[xml(rename = "Error")]
struct ErrorBody {
    #[xml(rename = "Code")]
    code: Option<String>,
}

/// Reads an answer: an `<Error>` body (whatever the status) or a non-2xx status is
/// [`S3Error::Refused`]; otherwise `parse` reads the body, and a body it cannot read is
/// [`S3Error::Malformed`].
fn read<T, E: std::fmt::Display>(
    status: u16,
    body: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, S3Error> {
    if let Ok(error) = instant_xml::from_str::<ErrorBody>(&without_default_namespace(body)) {
        return Err(S3Error::Refused {
            status,
            code: error.code.filter(|code| !code.is_empty()),
        });
    }
    if !(200..300).contains(&status) {
        return Err(S3Error::Refused { status, code: None });
    }
    parse(body).map_err(|e| S3Error::Malformed {
        status,
        detail: e.to_string(),
    })
}

/// An answer whose body does not matter (AbortMultipartUpload's `204`): only errors.
pub(crate) fn empty(status: u16, body: &str) -> Result<(), S3Error> {
    read(status, body, |_| Ok::<_, S3Error>(()))
}

/// CreateMultipartUpload: the new upload's id.
pub(crate) fn created(status: u16, body: &str) -> Result<String, S3Error> {
    read(status, body, |body| {
        let created = CreateMultipartUpload::parse_response(body)?;
        match created.upload_id() {
            "" => Err(instant_xml::Error::MissingValue("UploadId")),
            id => Ok(id.to_owned()),
        }
    })
}

/// CompleteMultipartUpload: the object's ETag.
pub(crate) fn completed(status: u16, body: &str) -> Result<String, S3Error> {
    read(status, body, |body| {
        CompleteMultipartUploadResponse::parse(body).map(|done| done.etag().to_owned())
    })
}

/// One page of ListParts. rusty-s3 keeps `next_part_number_marker` only while the
/// listing is truncated, so `None` means this was the last page.
pub(crate) fn parts_page(status: u16, body: &str) -> Result<ListPartsResponse, S3Error> {
    read(status, body, ListParts::parse_response)
}

/// One multipart upload in progress, as ListMultipartUploads lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedUpload {
    /// The object key the upload will create.
    pub key: String,
    /// Storage's id of the upload.
    pub upload_id: String,
    /// When storage began the upload (ms since the Unix epoch).
    pub initiated_ms: u64,
}

/// One page of ListMultipartUploads, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadsPage {
    /// The uploads on this page.
    pub uploads: Vec<ListedUpload>,
    /// `(key-marker, upload-id-marker)` of the next page; `None` on the last one.
    pub next: Option<(String, String)>,
}

#[derive(Debug, FromXml)]
#[xml(rename = "ListMultipartUploadsResult")]
struct UploadsResult {
    #[xml(rename = "IsTruncated")]
    is_truncated: Option<bool>,
    #[xml(rename = "NextKeyMarker")]
    next_key_marker: Option<String>,
    #[xml(rename = "NextUploadIdMarker")]
    next_upload_id_marker: Option<String>,
    uploads: Vec<UploadEntry>,
}

#[derive(Debug, FromXml)]
#[xml(rename = "Upload")]
struct UploadEntry {
    #[xml(rename = "Key")]
    key: String,
    #[xml(rename = "UploadId")]
    upload_id: String,
    #[xml(rename = "Initiated")]
    initiated: String,
}

/// One page of ListMultipartUploads (rusty-s3 has no action for it). A truncated page
/// must say where the next one starts, or the listing could never finish.
pub(crate) fn uploads_page(status: u16, body: &str) -> Result<UploadsPage, S3Error> {
    read(status, body, |body| {
        let page: UploadsResult =
            instant_xml::from_str(&without_default_namespace(body)).map_err(|e| e.to_string())?;
        let uploads = page
            .uploads
            .into_iter()
            .map(|u| {
                Ok(ListedUpload {
                    initiated_ms: timestamp_ms(&u.initiated)?,
                    key: u.key,
                    upload_id: u.upload_id,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let next = if page.is_truncated == Some(true) {
            let key = page.next_key_marker.filter(|k| !k.is_empty());
            let key = key.ok_or("a truncated page without NextKeyMarker")?;
            let upload_id = page.next_upload_id_marker.unwrap_or_default();
            Some((key, upload_id))
        } else {
            None
        };
        Ok::<_, String>(UploadsPage { uploads, next })
    })
}

/// `body` without the default namespace its root element declares (`xmlns="..."`), so
/// its elements match by name whichever namespace the server put them in.
fn without_default_namespace(body: &str) -> Cow<'_, str> {
    // The root's start tag: the first `<` that opens neither a declaration (`<?`) nor a
    // comment or doctype (`<!`).
    let mut from = 0;
    let start = loop {
        let Some(at) = body[from..].find('<').map(|i| i + from) else {
            return Cow::Borrowed(body);
        };
        if !body[at + 1..].starts_with(['?', '!']) {
            break at;
        }
        from = at + 1;
    };
    let Some(end) = body[start..].find('>').map(|i| i + start) else {
        return Cow::Borrowed(body);
    };
    let tag = &body[start..end];
    let Some(attr) = tag
        .match_indices("xmlns=")
        .map(|(i, _)| i)
        .find(|&i| tag[..i].ends_with(char::is_whitespace))
    else {
        return Cow::Borrowed(body);
    };
    let value = &tag[attr + "xmlns=".len()..];
    let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Cow::Borrowed(body);
    };
    let Some(close) = value[1..].find(quote) else {
        return Cow::Borrowed(body);
    };
    let cut_from = start + tag[..attr].trim_end().len();
    let cut_to = start + attr + "xmlns=".len() + 1 + close + 1;
    Cow::Owned(format!("{}{}", &body[..cut_from], &body[cut_to..]))
}

/// An S3 timestamp (`2010-11-10T20:48:33.000Z`) in ms since the Unix epoch; times
/// before 1970 (which no upload has) are refused.
fn timestamp_ms(text: &str) -> Result<u64, String> {
    let at: Timestamp = text
        .trim()
        .parse()
        .map_err(|e| format!("bad timestamp {text:?}: {e}"))?;
    u64::try_from(at.as_millisecond()).map_err(|_| format!("timestamp {text:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Answers captured from nanio 0.1.7 (the server the end-to-end tests run), and
    /// answers in the shapes AWS S3 and MinIO document that nanio never sends
    /// (truncated pages, errors inside a 200).
    fn data(name: &str) -> String {
        let path = format!(
            "{}/src/storage/s3/testdata/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn refused(status: u16, code: &str) -> S3Error {
        S3Error::Refused {
            status,
            code: Some(code.into()),
        }
    }

    #[test]
    fn create_answers_the_upload_id() {
        assert_eq!(
            created(200, &data("nanio-create.xml")).unwrap(),
            "D3BMS72T9MFCiOCEpGwLlo4fjQq001C2"
        );
        let empty_id = data("nanio-create.xml").replace("D3BMS72T9MFCiOCEpGwLlo4fjQq001C2", "");
        assert!(matches!(
            created(200, &empty_id),
            Err(S3Error::Malformed { status: 200, .. })
        ));
    }

    #[test]
    fn list_parts_reads_every_part_and_where_the_next_page_starts() {
        let page = parts_page(200, &data("nanio-list-parts.xml")).unwrap();
        let parts: Vec<_> = page
            .parts
            .iter()
            .map(|p| (p.number, p.etag.as_str(), p.size))
            .collect();
        assert_eq!(
            parts,
            [
                (1, "\"79b281060d337b9b2b84ccf390adcf74\"", 5_242_880),
                (2, "\"d84a935724eac27d7c9676679b6cdbaf\"", 100)
            ]
        );
        assert_eq!(page.next_part_number_marker, None);

        let page = parts_page(200, &data("aws-list-parts-truncated.xml")).unwrap();
        assert_eq!(page.parts.len(), 2);
        assert_eq!(page.next_part_number_marker, Some(3));
        // MinIO ends with NextPartNumberMarker 0 on a page that is not truncated.
        let page = parts_page(200, &data("minio-list-parts-last-page.xml")).unwrap();
        assert_eq!(page.parts[0].number, 3);
        assert_eq!(page.next_part_number_marker, None);
    }

    #[test]
    fn list_uploads_reads_every_upload_and_where_the_next_page_starts() {
        let page = uploads_page(200, &data("nanio-list-uploads.xml")).unwrap();
        assert_eq!(
            page.uploads,
            [
                ListedUpload {
                    key: "other/key".into(),
                    upload_id: "oZ17NC95QBd5gGBhLed874Acngnjplgt".into(),
                    initiated_ms: 1_795_909_240_000,
                },
                ListedUpload {
                    key: "files/AAAAAAAAAAAAAAAAAAAAAA".into(),
                    upload_id: "D3BMS72T9MFCiOCEpGwLlo4fjQq001C2".into(),
                    initiated_ms: 1_795_909_240_000,
                },
            ]
        );
        assert_eq!(page.next, None);

        let page = uploads_page(200, &data("aws-list-uploads-truncated.xml")).unwrap();
        assert_eq!(page.uploads.len(), 3);
        assert_eq!(page.uploads[2].key, "files/my-movie.m2ts");
        assert_eq!(page.uploads[0].initiated_ms, 1_289_422_113_000);
        assert_eq!(
            page.next,
            Some((
                "files/my-movie.m2ts".into(),
                "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ".into()
            ))
        );
        let empty = uploads_page(200, &data("aws-list-uploads-empty.xml")).unwrap();
        assert_eq!(
            empty,
            UploadsPage {
                uploads: vec![],
                next: None
            }
        );
    }

    #[test]
    fn a_list_that_cannot_continue_or_be_read_is_malformed() {
        let truncated = data("aws-list-uploads-truncated.xml");
        for broken in [
            truncated.replace("<NextKeyMarker>files/my-movie.m2ts</NextKeyMarker>", ""),
            truncated.replace(
                "<NextKeyMarker>files/my-movie.m2ts</NextKeyMarker>",
                "<NextKeyMarker></NextKeyMarker>",
            ),
            truncated.replace("2010-11-10T20:48:33.000Z", "yesterday"),
            truncated.replace("2010-11-10T20:48:33.000Z", "1969-12-31T23:59:59.000Z"),
            truncated.replace("<UploadId>", "<UploadIdentifier>"),
            "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated></ListMultipartUploadsResult>"
                .into(),
            "not xml".into(),
            String::new(),
        ] {
            assert!(
                matches!(uploads_page(200, &broken), Err(S3Error::Malformed { status: 200, .. })),
                "{broken}"
            );
        }
    }

    #[test]
    fn namespaces_do_not_matter() {
        // A listing without S3's namespace (some servers send it bare)...
        let bare = data("aws-list-uploads-truncated.xml")
            .replace(" xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"", "");
        assert_ne!(bare, data("aws-list-uploads-truncated.xml"));
        assert_eq!(uploads_page(200, &bare).unwrap().uploads.len(), 3);
        let empty = "<?xml version=\"1.0\"?>\n<ListMultipartUploadsResult>\
                     <IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
        assert_eq!(uploads_page(200, empty).unwrap().uploads, []);
        // ...and an error in it (some servers namespace `<Error>`): its code counts.
        let namespaced = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
            <Error xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Code>NoSuchUpload</Code>\
            <Message>gone</Message></Error>";
        assert!(empty_answer_is_no_such_upload(namespaced));
        assert_eq!(
            without_default_namespace("<!-- x --><a\n  xmlns=\"n\" b=\"1\"><c/></a>"),
            "<!-- x --><a b=\"1\"><c/></a>"
        );
        // Only the default namespace of the root goes; nothing else changes.
        for kept in [
            "<a xmlns:s3=\"n\"/>",
            "<a/>",
            "<a data-xmlns=\"n\"/>",
            "",
            "no xml",
        ] {
            assert_eq!(without_default_namespace(kept), kept);
        }
    }

    fn empty_answer_is_no_such_upload(body: &str) -> bool {
        empty(404, body).unwrap_err().is_no_such_upload()
    }

    #[test]
    fn complete_answers_the_object_etag() {
        assert_eq!(
            completed(200, &data("nanio-complete.xml")).unwrap(),
            "\"16cafe8d6b8c1c55c3d339c8d69326c6-2\""
        );
    }

    #[test]
    fn an_error_inside_a_200_is_an_error() {
        let error = completed(200, &data("aws-complete-error-in-200.xml")).unwrap_err();
        assert_eq!(error, refused(200, "InternalError"));
        assert!(!error.is_no_such_upload());
    }

    #[test]
    fn errors_are_told_apart_by_their_code() {
        let no_such_upload = refused(404, "NoSuchUpload");
        assert_eq!(
            empty(404, &data("nanio-abort-no-such-upload.xml")).unwrap_err(),
            no_such_upload
        );
        assert!(no_such_upload.is_no_such_upload());
        assert_eq!(
            parts_page(404, &data("nanio-list-parts-no-such-upload.xml")).unwrap_err(),
            no_such_upload
        );
        assert_eq!(
            completed(400, &data("nanio-complete-invalid-part.xml")).unwrap_err(),
            refused(400, "InvalidPart")
        );
        let no_such_key = empty(404, &data("nanio-get-no-such-key.xml")).unwrap_err();
        assert_eq!(no_such_key, refused(404, "NoSuchKey"));
        assert!(!no_such_key.is_no_such_upload());
        // A message that says "does not exist" is not a code.
        let worded = "<Error><Code>InternalError</Code>\
                      <Message>NoSuchUpload: The specified upload does not exist</Message></Error>";
        assert!(!empty(500, worded).unwrap_err().is_no_such_upload());
    }

    #[test]
    fn an_error_status_without_an_error_body_has_no_code() {
        for body in [
            "",
            "<html>Bad Gateway</html>",
            "<Error></Error>",
            "<Error><Code></Code></Error>",
        ] {
            for status in [403, 404, 500, 502, 503] {
                let error = empty(status, body).unwrap_err();
                assert_eq!(error, S3Error::Refused { status, code: None }, "{body}");
                assert!(!error.is_no_such_upload());
            }
        }
        assert_eq!(empty(204, ""), Ok(()));
        assert_eq!(empty(200, "<Deleted/>"), Ok(()));
    }

    #[test]
    fn a_success_status_with_the_wrong_body_is_malformed() {
        for body in ["", "<Foo/>", "<InitiateMultipartUploadResult/>", "\u{0}"] {
            assert!(
                matches!(created(200, body), Err(S3Error::Malformed { .. })),
                "{body:?}"
            );
            assert!(
                matches!(completed(200, body), Err(S3Error::Malformed { .. })),
                "{body:?}"
            );
            assert!(
                matches!(parts_page(200, body), Err(S3Error::Malformed { .. })),
                "{body:?}"
            );
        }
    }
}
