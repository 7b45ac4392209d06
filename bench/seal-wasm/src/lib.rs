//! Bench only: the client crate built with its `bench` feature (client-wasm/src/bench.rs:
//! `BenchCipher`, `benchPipeline` and the `benchFixedConcurrency` / `benchPlain`
//! switches), so `npm run bench` times the client's own code without a bench hook in the
//! product package. Every export of the client comes with it (the Uploader, the
//! download, the cipher workers' entry point).

pub use sealdrop_client::BenchCipher;
