//! `checkVector`: the format's test vectors (docs/FORMAT.md §9) run through this wasm
//! build, with the protocol's own runner and its native subject, so the browser test
//! proves the code the client ships (compiled to wasm32) agrees with the vectors.
//!
//! Compiled only with the `conformance` feature, into the separate build
//! `scripts/build.sh` writes to `tests/pages/conformance/`: the published package
//! carries no test hook.

use sealdrop_protocol::testkit::{self, Native, Vector};
use thiserror::Error;

/// Why a vector did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VectorError {
    /// The text is not a vector file (code `invalid_vector`).
    #[error("not a test vector: {0}")]
    Parse(#[from] testkit::ParseError),
    /// The implementation disagreed with the vector (code `vector_mismatch`).
    #[error("{0}")]
    Mismatch(#[from] testkit::Mismatch),
}

impl VectorError {
    /// The stable code for `.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Parse(_) => "invalid_vector",
            Self::Mismatch(_) => "vector_mismatch",
        }
    }
}

/// Checks one vector file's text and returns the case name.
pub(crate) fn check_vector(text: &str) -> Result<String, VectorError> {
    let vector = Vector::parse(text)?;
    testkit::check(&vector, &Native::new())?;
    Ok(vector.name)
}
