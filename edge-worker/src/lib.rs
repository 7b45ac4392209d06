//! placeholder (being built)
