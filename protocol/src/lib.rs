//! sealdrop's rules as pure code, shared by the browser client (`client-wasm`) and the
//! Cloudflare Worker (`edge-worker`).
//!
//! Nothing here performs I/O, reads a clock or draws random bytes: callers pass time
//! (milliseconds since the Unix epoch) and randomness in. That keeps every rule
//! deterministic and testable natively, and lets two very different shells (a browser
//! and a Durable Object) agree byte for byte.

pub mod format;
/// The test-vector runner: a conformance hook, compiled only with the `conformance`
/// feature so the product (the worker, the npm package) does not carry it.
#[cfg(feature = "conformance")]
pub mod testkit;

pub mod account;
pub mod api_error;
pub mod backoff;
pub mod concurrency;
#[cfg(test)]
mod explore;
pub mod fingerprint;
pub mod ids;
pub mod jwt;
pub mod lifecycle;
pub mod link_history;
pub mod plan;
pub mod progress;
pub mod range;
pub mod records;
pub mod room;
pub mod scheduler;
pub mod session;
pub mod share;
pub mod sweep;
#[cfg(test)]
mod test_rng;
pub mod token;
pub mod wire;
