//! AWS Signature Version 4 in an `Authorization` header, for the worker's own S3 calls.
//!
//! Browsers get presigned query URLs (rusty-s3), since they cannot be given a key. The
//! worker's control calls (create, list parts, complete, abort, head, delete, list
//! uploads) are signed in headers instead, as every S3 SDK sends them: Cloudflare
//! documents R2's presigned URLs for `GET`, `HEAD`, `PUT` and `DELETE` only, not for the
//! `POST`s of CreateMultipartUpload and CompleteMultipartUpload. rusty-s3 0.11 signs
//! query strings only, so this module computes the same SigV4 over headers with the
//! workspace's RustCrypto `hmac` and `sha2` (the algorithm is the one rusty-s3 and AWS
//! document; the tests check AWS's published examples, and the end-to-end tests nanio's
//! verification).
//!
//! The payload is signed too (`x-amz-content-sha256` is its SHA-256): the worker's
//! bodies are small (CompleteMultipartUpload's part list), so a body changed on the way
//! fails the signature.

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rusty_s3::{Credentials, Method};
use sha2::{Digest, Sha256};
use url::Url;

/// What SigV4 leaves unencoded in a query: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request signed in its headers: the URL to send it to (its query built from the
/// signed parameters) and the headers to send with it (`host` aside, which the
/// platform sets from the URL, to the value signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// The URL, with its query.
    pub url: Url,
    /// `authorization`, `x-amz-date`, `x-amz-content-sha256`, any token, and the extra
    /// headers given, lowercase names, sorted.
    pub headers: Vec<(String, String)>,
}

/// What to sign: one request to storage.
pub(crate) struct Unsigned<'a> {
    /// The method.
    pub method: Method,
    /// The URL without a query; its path already percent-encoded (rusty-s3's
    /// `Bucket::object_url` and `base_url` are).
    pub url: Url,
    /// The query parameters, unencoded, in any order (`("uploads", "")` for `?uploads`).
    pub query: &'a [(&'a str, &'a str)],
    /// Further headers to send and sign (lowercase names), e.g. `content-type`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body (empty for none).
    pub body: &'a [u8],
}

/// Signs `request` at `at` for `region` with `credentials`.
pub(crate) fn sign(
    request: &Unsigned<'_>,
    credentials: &Credentials,
    region: &str,
    at: &Timestamp,
) -> Signed {
    let date_time = at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let date = &date_time[..8];
    let payload = hex(&Sha256::digest(request.body));

    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.push(("x-amz-content-sha256".into(), payload.clone()));
    headers.push(("x-amz-date".into(), date_time.clone()));
    if let Some(token) = credentials.token().filter(|t| !t.is_empty()) {
        headers.push(("x-amz-security-token".into(), token.to_owned()));
    }
    let mut signed_headers = headers.clone();
    signed_headers.push(("host".into(), host(&request.url)));
    signed_headers.sort();
    let names = signed_headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");

    let mut canonical = format!(
        "{}\n{}\n{query}\n",
        request.method.to_str(),
        request.url.path()
    );
    for (k, v) in &signed_headers {
        let _ = writeln!(canonical, "{k}:{v}");
    }
    let _ = write!(canonical, "\n{names}\n{payload}");

    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    // The signing key: HMAC chained from `AWS4<secret>` through the scope's parts.
    let key = [date, region, "s3", "aws4_request"].iter().fold(
        format!("AWS4{}", credentials.secret()).into_bytes(),
        |key, part| hmac(&key, part.as_bytes()),
    );
    let signature = hex(&hmac(&key, to_sign.as_bytes()));

    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
            credentials.key()
        ),
    ));
    headers.sort();
    let mut url = request.url.clone();
    url.set_query((!query.is_empty()).then_some(query.as_str()));
    Signed { url, headers }
}

/// The `host` header fetch sends for `url` (the port only when not the scheme's).
fn host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// AWS's examples of header-based SigV4 for S3 ("Examples: Signature Calculations
    /// in AWS Signature Version 4", the examplebucket requests of 24 May 2013).
    fn example(
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Signed {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        let url = format!("https://examplebucket.s3.amazonaws.com{path}")
            .parse()
            .unwrap();
        let at = Timestamp::from_second(1_369_353_600).unwrap();
        let request = Unsigned {
            method,
            url,
            query,
            headers,
            body: b"",
        };
        sign(&request, &credentials, "us-east-1", &at)
    }

    fn header<'a>(signed: &'a Signed, name: &str) -> &'a str {
        signed
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn awss_get_object_example() {
        let signed = example(Method::Get, "/test.txt", &[], &[("range", "bytes=0-9")]);
        assert_eq!(
            header(&signed, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(header(&signed, "x-amz-date"), "20130524T000000Z");
        assert_eq!(
            header(&signed, "x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            signed.url.as_str(),
            "https://examplebucket.s3.amazonaws.com/test.txt"
        );
    }

    #[test]
    fn awss_bucket_examples_with_a_query() {
        let lifecycle = example(Method::Get, "/", &[("lifecycle", "")], &[]);
        assert!(
            header(&lifecycle, "authorization").ends_with(
                "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            ),
            "{lifecycle:?}"
        );
        assert_eq!(lifecycle.url.query(), Some("lifecycle="));
        // Parameters are signed sorted and encoded, whatever order they come in.
        let list = example(Method::Get, "/", &[("prefix", "J"), ("max-keys", "2")], &[]);
        assert!(
            header(&list, "authorization").ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{list:?}"
        );
        assert_eq!(list.url.query(), Some("max-keys=2&prefix=J"));
    }

    #[test]
    fn the_body_the_port_and_a_token_are_signed() {
        let credentials = Credentials::new_with_token("AKID", "secret", "token-1");
        let at = Timestamp::from_second(1_369_353_600).unwrap();
        let sign_body = |body: &[u8], url: &str| {
            let request = Unsigned {
                method: Method::Post,
                url: url.parse().unwrap(),
                query: &[("uploadId", "a b+c/")],
                headers: &[("content-type", "application/xml")],
                body,
            };
            sign(&request, &credentials, "auto", &at)
        };
        let a = sign_body(b"<a/>", "http://127.0.0.1:9000/bucket/files/x");
        assert_eq!(a.url.query(), Some("uploadId=a%20b%2Bc%2F"));
        assert_eq!(header(&a, "x-amz-security-token"), "token-1");
        assert!(header(&a, "authorization").contains(
            "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
        ));
        let names: Vec<_> = a.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "authorization",
                "content-type",
                "x-amz-content-sha256",
                "x-amz-date",
                "x-amz-security-token"
            ]
        );
        for other in [
            sign_body(b"<b/>", "http://127.0.0.1:9000/bucket/files/x"),
            sign_body(b"<a/>", "http://127.0.0.1:9001/bucket/files/x"),
            sign_body(b"<a/>", "http://127.0.0.1:9000/bucket/files/y"),
        ] {
            assert_ne!(header(&other, "authorization"), header(&a, "authorization"));
        }
        assert!(
            !format!("{a:?}").contains("secret"),
            "the secret never leaves"
        );
    }
}
