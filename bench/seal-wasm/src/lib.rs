//! Bench only: the client crate built with its `bench` feature, which adds `BenchCipher`
//! (client-wasm/src/bench.rs), so `npm run bench` times the client's own record cipher,
//! on its WebCrypto and aes-gcm backends, without a bench hook in the product package.

pub use sealdrop_client::BenchCipher;
