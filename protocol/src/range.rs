//! The `Range` header of a download (docs/API.md, `GET <download url>`), as RFC 9110
//! §14 defines it, reduced to what a single-object download needs.
//!
//! - `bytes=a-b`, `bytes=a-` and `bytes=-n` select one range; a last position past the
//!   end is clamped to the end, a suffix longer than the object selects all of it.
//! - A range that starts at or past the end, or a zero-length suffix, cannot be
//!   satisfied: `416 range_not_satisfiable` (with `Content-Range: bytes */<size>`).
//! - A header the server may ignore is ignored, and the whole object is answered (`200`):
//!   another unit, a malformed set, a range whose last position is before its first,
//!   and several ranges (a `multipart/byteranges` answer is not offered).

use crate::api_error::ApiError;

/// One satisfiable range: bytes `start..=end` of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// The last byte (inclusive, as in `Content-Range`).
    pub end: u64,
    /// The whole object's size.
    pub size: u64,
}

impl ByteRange {
    /// Reads a `Range` header (or its absence) against an object of `size` bytes:
    /// `Ok(None)` to answer the whole object, `Ok(Some(range))` to answer `206`, and
    /// `416 range_not_satisfiable` for a range outside the object.
    pub fn parse(header: Option<&str>, size: u64) -> Result<Option<Self>, ApiError> {
        let Some(spec) = header.and_then(single_range_spec) else {
            return Ok(None);
        };
        let range = match spec {
            Spec::From { first, last } => {
                if first >= size {
                    return Err(ApiError::range_not_satisfiable());
                }
                let end = last.map_or(size - 1, |last| last.min(size - 1));
                Self {
                    start: first,
                    end,
                    size,
                }
            }
            Spec::Suffix(0) => return Err(ApiError::range_not_satisfiable()),
            Spec::Suffix(_) if size == 0 => return Err(ApiError::range_not_satisfiable()),
            Spec::Suffix(n) => Self {
                start: size - n.min(size),
                end: size - 1,
                size,
            },
        };
        Ok(Some(range))
    }

    /// How many bytes the range holds.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a satisfiable range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value of a `206` answer: `bytes <start>-<end>/<size>`.
    pub fn content_range(&self) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, self.size)
    }

    /// The `Content-Range` value of a `416` answer: `bytes */<size>`.
    pub fn unsatisfied_content_range(size: u64) -> String {
        format!("bytes */{size}")
    }
}

/// One `range-spec` of a `bytes=` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// The single range-spec of a well-formed `bytes=` header, or `None` when the header
/// is to be ignored (another unit, malformed, or more than one range).
fn single_range_spec(header: &str) -> Option<Spec> {
    let (unit, set) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let set = set.trim();
    if set.contains(',') {
        return None;
    }
    let (first, last) = set.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    match (digits(first), digits(last)) {
        (Some(first), Some(last)) if last >= first => Some(Spec::From {
            first,
            last: Some(last),
        }),
        (Some(first), None) if last.is_empty() => Some(Spec::From { first, last: None }),
        (None, Some(n)) if first.is_empty() => Some(Spec::Suffix(n)),
        _ => None,
    }
}

/// A decimal number of ASCII digits only; `None` for anything else (or an overflow).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::api_error::ApiErrorCode;

    fn r(header: &str, size: u64) -> Option<(u64, u64)> {
        ByteRange::parse(Some(header), size)
            .unwrap()
            .map(|r| (r.start, r.end))
    }

    fn unsatisfiable(header: &str, size: u64) -> bool {
        ByteRange::parse(Some(header), size).map_err(|e| e.code)
            == Err(ApiErrorCode::RangeNotSatisfiable)
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(r("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(r("bytes=10-", 100), Some((10, 99)));
        assert_eq!(r("bytes=-10", 100), Some((90, 99)));
        assert_eq!(r("bytes=99-99", 100), Some((99, 99)));
        // Clamped to the end; a suffix longer than the object is all of it.
        assert_eq!(r("bytes=50-1000", 100), Some((50, 99)));
        assert_eq!(r("bytes=-1000", 100), Some((0, 99)));
        // Case and spaces as RFC 9110 allows them.
        assert_eq!(r("Bytes = 1-2 ", 100), Some((1, 2)));
        let range = ByteRange::parse(Some("bytes=5-9"), 100).unwrap().unwrap();
        assert_eq!(range.len(), 5);
        assert!(!range.is_empty());
        assert_eq!(range.content_range(), "bytes 5-9/100");
        assert_eq!(ByteRange::unsatisfied_content_range(100), "bytes */100");
    }

    #[test]
    fn past_the_end_is_not_satisfiable() {
        assert!(unsatisfiable("bytes=100-", 100));
        assert!(unsatisfiable("bytes=100-200", 100));
        assert!(unsatisfiable("bytes=-0", 100));
        assert!(unsatisfiable("bytes=0-", 0));
        assert!(unsatisfiable("bytes=-5", 0));
        assert!(unsatisfiable(&format!("bytes={}-", u64::MAX), 100));
        assert_eq!(
            ByteRange::parse(Some("bytes=100-"), 100)
                .unwrap_err()
                .status(),
            416
        );
    }

    #[test]
    fn ignorable_headers_answer_the_whole_object() {
        assert_eq!(ByteRange::parse(None, 100).unwrap(), None);
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=9-5",
            "bytes=+1-5",
            "bytes=0-1,5-6",
            "items=0-5",
            "bytes=0x10-",
            "bytes=1-2-3",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(r(header, 100), None, "{header:?}");
        }
    }
}
