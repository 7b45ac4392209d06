//! Download links, `<endpoint>/f/<fileId>#k1.<key>` (docs/FORMAT.md §8), and the
//! endpoint they start with. Pure string work, tested natively.

use sealdrop_protocol::format::{FileKey, encode_fragment, parse_fragment};
use sealdrop_protocol::ids::FileId;

use crate::error::ClientError;

/// A parsed download link.
#[derive(Debug)]
pub(crate) struct Link {
    /// Where the API lives: the link up to `/f/<fileId>` (origin and any path prefix).
    pub endpoint: String,
    /// The file's public id.
    pub file_id: FileId,
    /// The file key from the fragment.
    pub key: FileKey,
}

/// The link for a file: `<endpoint>/f/<fileId>#k1.<base64url key>`.
pub(crate) fn build(endpoint: &str, file_id: &FileId, key: &FileKey) -> String {
    format!("{endpoint}/f/{file_id}#{}", encode_fragment(key))
}

/// Reads a link: an absolute http(s) URL whose path ends in `/f/<fileId>`, with the
/// key in its fragment. A query string is ignored. Anything else is `invalid_link`
/// (a bad fragment keeps the format's own `invalid_link` error).
pub(crate) fn parse(link: &str) -> Result<Link, ClientError> {
    let link = link.trim();
    let (url, fragment) = link
        .split_once('#')
        .ok_or(ClientError::InvalidLink("the link has no #k1. key"))?;
    let key = parse_fragment(fragment)?;
    let url = url.split_once('?').map_or(url, |(path, _query)| path);
    let (endpoint, id) = url.rsplit_once("/f/").ok_or(ClientError::InvalidLink(
        "the link's path does not end in /f/<fileId>",
    ))?;
    let file_id = FileId::parse(id)
        .map_err(|_| ClientError::InvalidLink("the file id is not 22 base64url characters"))?;
    let endpoint = endpoint_of(endpoint).ok_or(ClientError::InvalidLink(
        "the link is not an absolute http(s) URL",
    ))?;
    Ok(Link {
        endpoint,
        file_id,
        key,
    })
}

/// Checks and normalizes an endpoint: `http(s)://host[:port][/prefix]`, without a
/// trailing slash, query or fragment. `None` if it is not one.
pub(crate) fn endpoint_of(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/');
    let (scheme, rest) = text.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let bad = |c: char| c.is_whitespace() || matches!(c, '?' | '#' | '\\');
    if authority.is_empty() || authority.contains('@') || rest.contains(bad) {
        return None;
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    fn key() -> FileKey {
        FileKey::from_bytes([7; 32])
    }

    #[test]
    fn round_trip() {
        let id = FileId::parse(ID).unwrap();
        for endpoint in ["http://127.0.0.1:8787", "https://drop.example/sub/path"] {
            let link = build(endpoint, &id, &key());
            assert!(link.starts_with(&format!("{endpoint}/f/{ID}#k1.")));
            let parsed = parse(&link).unwrap();
            assert_eq!(parsed.endpoint, endpoint);
            assert_eq!(parsed.file_id, id);
            assert_eq!(parsed.key, key());
            // Whitespace around a pasted link, and a query, are ignored.
            let (head, tail) = link.split_once('#').unwrap();
            let parsed = parse(&format!("  {head}?x=1#{tail}\n")).unwrap();
            assert_eq!(parsed.endpoint, endpoint);
        }
    }

    #[test]
    fn rejects_everything_else() {
        let good = build("http://h", &FileId::parse(ID).unwrap(), &key());
        let fragment = good.split_once('#').unwrap().1;
        for bad in [
            String::new(),
            "not a link".into(),
            format!("http://h/f/{ID}"),
            format!("http://h/f/{ID}#"),
            format!("http://h/f/{ID}#k2.{}", &fragment[3..]),
            format!("http://h/f/{ID}#{}", &fragment[..45]),
            format!("http://h/f/{ID}x#{fragment}"),
            format!("http://h/g/{ID}#{fragment}"),
            format!("http://h/f/#{fragment}"),
            format!("ftp://h/f/{ID}#{fragment}"),
            format!("/f/{ID}#{fragment}"),
            format!("http:///f/{ID}#{fragment}"),
            format!("http://u@h/f/{ID}#{fragment}"),
        ] {
            let err = parse(&bad).unwrap_err();
            assert_eq!(err.code(), "invalid_link", "{bad:?}");
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_of("http://127.0.0.1:8787/").as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert_eq!(endpoint_of("HTTPS://a/b").as_deref(), Some("HTTPS://a/b"));
        for bad in [
            "",
            "127.0.0.1:8787",
            "file:///x",
            "http://",
            "http://a?b",
            "http://a b",
        ] {
            assert_eq!(endpoint_of(bad), None, "{bad:?}");
        }
    }
}
