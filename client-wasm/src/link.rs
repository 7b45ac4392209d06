//! Download links, `<endpoint>/s/<shareToken>#k1.<key>` or, for a password share,
//! `...#p1.<salt>.<wrapped key>` (docs/FORMAT.md §8), and the endpoint they start with.
//! Pure string work, tested natively.

use sealdrop_protocol::format::{FileKey, LinkSecret, encode_fragment};
use sealdrop_protocol::ids::ShareToken;

use crate::error::ClientError;

/// A parsed download link.
#[derive(Debug)]
pub(crate) struct Link {
    /// Where the API lives: the link up to `/s/<token>` (origin and any path prefix).
    pub endpoint: String,
    /// The share the link names.
    pub token: ShareToken,
    /// What the fragment holds: the file key, or the key wrapped under a password.
    pub secret: LinkSecret,
}

/// The link for a share of a file: `<endpoint>/s/<token>#k1.<base64url key>`.
pub(crate) fn build(endpoint: &str, token: &ShareToken, key: &FileKey) -> String {
    format!("{endpoint}/s/{token}#{}", encode_fragment(key))
}

/// The link for a share with `secret` in its fragment (`k1.` or `p1.`).
pub(crate) fn build_with(endpoint: &str, token: &ShareToken, secret: &LinkSecret) -> String {
    format!("{endpoint}/s/{token}#{}", secret.encode())
}

/// Reads a link: an absolute http(s) URL whose path ends in `/s/<token>`, with the
/// key in its fragment. A query string is ignored. Anything else is `invalid_link`
/// (a bad fragment keeps the format's own `invalid_link` error).
pub(crate) fn parse(link: &str) -> Result<Link, ClientError> {
    let link = link.trim();
    let (url, fragment) = link
        .split_once('#')
        .ok_or(ClientError::InvalidLink("the link has no #k1. or #p1. key"))?;
    let secret = LinkSecret::parse(fragment)?;
    let url = url.split_once('?').map_or(url, |(path, _query)| path);
    let (endpoint, token) = url.rsplit_once("/s/").ok_or(ClientError::InvalidLink(
        "the link's path does not end in /s/<token>",
    ))?;
    let token = ShareToken::parse(token)
        .map_err(|_| ClientError::InvalidLink("the share token is not 32 base64url characters"))?;
    let endpoint = endpoint_of(endpoint).ok_or(ClientError::InvalidLink(
        "the link is not an absolute http(s) URL",
    ))?;
    Ok(Link {
        endpoint,
        token,
        secret,
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

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn key() -> FileKey {
        FileKey::from_bytes([7; 32])
    }

    #[test]
    fn round_trip() {
        let id = ShareToken::parse(ID).unwrap();
        for endpoint in ["http://127.0.0.1:8787", "https://drop.example/sub/path"] {
            let link = build(endpoint, &id, &key());
            assert!(link.starts_with(&format!("{endpoint}/s/{ID}#k1.")));
            let parsed = parse(&link).unwrap();
            assert_eq!(parsed.endpoint, endpoint);
            assert_eq!(parsed.token, id);
            assert_eq!(parsed.secret, LinkSecret::Key(key()));
            // Whitespace around a pasted link, and a query, are ignored.
            let (head, tail) = link.split_once('#').unwrap();
            let parsed = parse(&format!("  {head}?x=1#{tail}\n")).unwrap();
            assert_eq!(parsed.endpoint, endpoint);
        }
    }

    #[test]
    fn rejects_everything_else() {
        let good = build("http://h", &ShareToken::parse(ID).unwrap(), &key());
        let fragment = good.split_once('#').unwrap().1;
        for bad in [
            String::new(),
            "not a link".into(),
            format!("http://h/s/{ID}"),
            format!("http://h/s/{ID}#"),
            format!("http://h/s/{ID}#k2.{}", &fragment[3..]),
            format!("http://h/s/{ID}#{}", &fragment[..45]),
            format!("http://h/s/{ID}x#{fragment}"),
            format!("http://h/f/{ID}#{fragment}"),
            format!("http://h/s/#{fragment}"),
            format!("ftp://h/s/{ID}#{fragment}"),
            format!("/s/{ID}#{fragment}"),
            format!("http:///s/{ID}#{fragment}"),
            format!("http://u@h/s/{ID}#{fragment}"),
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
