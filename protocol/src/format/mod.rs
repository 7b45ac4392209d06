//! The v1 encrypted stream format (docs/FORMAT.md).
