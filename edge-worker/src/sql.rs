//! Reading and writing SQLite values of Durable Object storage: typed, with the
//! failure as text for the caller's log.

use worker::SqlStorageValue;

/// An INTEGER.
pub(crate) fn int(v: SqlStorageValue) -> Result<i64, String> {
    match v {
        SqlStorageValue::Integer(i) => Ok(i),
        other => Err(format!("expected an integer, found {other:?}")),
    }
}

/// A non-negative INTEGER.
pub(crate) fn uint(v: SqlStorageValue) -> Result<u64, String> {
    to_u64(int(v)?)
}

/// A TEXT.
pub(crate) fn text(v: SqlStorageValue) -> Result<String, String> {
    match v {
        SqlStorageValue::String(s) => Ok(s),
        other => Err(format!("expected text, found {other:?}")),
    }
}

/// A BLOB.
pub(crate) fn blob(v: SqlStorageValue) -> Result<Vec<u8>, String> {
    match v {
        SqlStorageValue::Blob(b) => Ok(b),
        other => Err(format!("expected a blob, found {other:?}")),
    }
}

/// A `u64` as SQLite's signed integer.
pub(crate) fn to_i64(n: u64) -> Result<i64, String> {
    i64::try_from(n).map_err(|_| format!("{n} does not fit SQLite's integers"))
}

/// A SQLite integer as a `u64`.
pub(crate) fn to_u64(n: i64) -> Result<u64, String> {
    u64::try_from(n).map_err(|_| format!("{n} is negative"))
}

/// A non-negative INTEGER or NULL.
pub(crate) fn opt_uint(v: SqlStorageValue) -> Result<Option<u64>, String> {
    match v {
        SqlStorageValue::Null => Ok(None),
        v => uint(v).map(Some),
    }
}

/// A TEXT or NULL.
pub(crate) fn opt_text(v: SqlStorageValue) -> Result<Option<String>, String> {
    match v {
        SqlStorageValue::Null => Ok(None),
        v => text(v).map(Some),
    }
}

/// An optional `u64` as an INTEGER or NULL.
pub(crate) fn nullable(n: Option<u64>) -> Result<SqlStorageValue, String> {
    Ok(match n {
        Some(n) => to_i64(n)?.into(),
        None => SqlStorageValue::Null,
    })
}
